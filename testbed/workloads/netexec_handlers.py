"""HTTP endpoint handlers of the ``netexec`` server, mirroring agnhost's semantics.

Deliberate differences from agnhost: ``/echo`` without ``msg`` echoes the request
body; ``/exit`` and ``/shutdown`` send their (empty) reply before exiting.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from urllib.parse import urljoin

from testbed.workloads import netexec_net as net
from testbed.workloads.netexec_core import (
    App,
    go_json,
    go_quote,
    go_time_now,
    log,
    parse_go_duration,
)
from testbed.workloads.netexec_http import REASONS, Handler, Request, Response, http_error

SHELL = "/bin/sh"
UPLOAD_DIR = "/uploads"


async def root(app: App, req: Request) -> Response:
    """``/`` (and every unknown path): the current time, ``NOW: <Go time>``."""
    return Response(200, "NOW: " + go_time_now(app.started))


async def echo(app: App, req: Request) -> Response:
    """``/echo?msg=X[&code=N]``: returns ``msg`` (or the request body if there is no msg)."""
    msg = req.form_value("msg")
    code_s = req.form_value("code") or ""
    status = 200
    if code_s:
        try:
            status = int(code_s)
        except ValueError:
            return Response(200, f"argument 'code' must be an integer or empty, "
                                 f"got {go_quote(code_s)}\n")
    if msg is None:
        return Response(status, req.body)
    return Response(status, msg)


async def clientip(app: App, req: Request) -> Response:
    """``/clientip``: the peer address as ``ip:port``."""
    return Response(200, req.remote)


async def header(app: App, req: Request) -> Response:
    """``/header?key=K``: that request header's value; without key all headers as JSON."""
    key = req.form_value("key") or ""
    if key:
        return Response(200, req.header(key) or "")
    merged: dict[str, list[str]] = {}
    for name, value in req.headers:
        canon = "-".join(p.capitalize() for p in name.split("-"))
        if canon != "Host":
            merged.setdefault(canon, []).append(value)
    return Response(200, go_json(merged))


async def hostname(app: App, req: Request) -> Response:
    """``/hostname`` and ``/hostName``: ``socket.gethostname()``."""
    return Response(200, socket.gethostname())


async def healthz(app: App, req: Request) -> Response:
    """``/healthz``: 200 once the UDP (or SCTP) server runs, else 412 (agnhost semantics)."""
    return Response(200 if app.server_ready else 412, b"")


async def readyz(app: App, req: Request) -> Response:
    """``/readyz``: 503 ``shutting down`` after SIGTERM, 200 ``ok`` if ready, else 412."""
    if app.sigterm_received:
        return Response(503, "shutting down")
    if app.server_ready:
        return Response(200, "ok")
    return Response(412, b"")


async def exit_(app: App, req: Request) -> Response:
    """``/exit?code=N&timeout=D&wait=D``: reply, then exit (gracefully if ``timeout`` > 0)."""
    values = {k: req.form_value(k) or "" for k in ("wait", "timeout", "code")}
    durations = {}
    for name in ("timeout", "wait"):
        try:
            durations[name] = parse_go_duration(values[name]) if values[name] else 0.0
        except ValueError:
            return Response(200, f"argument '{name}' must be a valid golang duration or empty, "
                                 f"got {go_quote(values[name])}\n")
    try:
        code = int(values["code"]) if values["code"] else 0
    except ValueError:
        return Response(200, f"argument 'code' must be an integer [0-127] or empty, "
                             f"got {go_quote(values['code'])}\n")
    timeout = durations["timeout"]
    log(f"Will begin shutdown in {durations['wait']}s, allowing {timeout}s for connections "
        f"to close, then will exit with {code}")
    if durations["wait"] > 0:
        await asyncio.sleep(durations["wait"])

    async def after() -> None:
        if timeout <= 0:
            app.exit(code)
        await app.graceful_exit(code, timeout)

    return Response(200, b"", after=after)


async def shutdown(app: App, req: Request) -> Response:
    """``/shutdown``: exit with code 0 (after replying)."""

    async def after() -> None:
        app.exit(0)

    return Response(200, b"", after=after)


async def redirect(app: App, req: Request) -> Response:
    """``/redirect?location=L[&code=N]``: a redirect (302 by default), like ``http.Redirect``."""
    location = req.form_value("location") or ""
    code_s = req.form_value("code") or ""
    status = 302
    if code_s:
        try:
            status = int(code_s)
        except ValueError:
            return Response(200, f"argument 'code' must be an integer or empty, "
                                 f"got {go_quote(code_s)}\n")
    if "://" not in location.split("?", 1)[0] and not location.startswith("/"):
        location = urljoin(req.path, location)
    headers = [("Location", location)]
    body = b""
    if req.method in ("GET", "HEAD"):
        headers.append(("Content-Type", "text/html; charset=utf-8"))
        escaped = (location.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                   .replace('"', "&#34;").replace("'", "&#39;"))
        body = f'<a href="{escaped}">{REASONS.get(status, "")}</a>.\n\n'.encode()
    return Response(status, body, headers)


async def shell(app: App, req: Request) -> Response:
    """``/shell?cmd=C`` (or ``shellCommand``): ``/bin/sh -c C``; JSON ``output``/``error``."""
    cmd = req.form_value("shellCommand") or req.form_value("cmd") or ""
    output: dict[str, str] = {}
    try:
        proc = await asyncio.create_subprocess_exec(
            SHELL, "-c", cmd, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
    except OSError as exc:
        output["error"] = f"fork/exec {SHELL}: {os.strerror(exc.errno or 0).lower()}"
    else:
        if out:
            output["output"] = out.decode("utf-8", "replace")
        rc = proc.returncode or 0
        if rc > 0:
            output["error"] = f"exit status {rc}"
        elif rc < 0:
            output["error"] = f"signal: {(signal.strsignal(-rc) or str(-rc)).lower()}"
    return Response(200, go_json(output))


async def dial(app: App, req: Request) -> Response:
    """``/dial?host=H&port=P&request=R&protocol=http|udp|sctp&tries=N``, as in agnhost.

    Tries run sequentially; returns JSON with ``responses`` (only if the last try
    produced a non-empty response, an agnhost quirk) and ``errors`` (if any).
    """
    q = req.query_value
    host, port, request = q("host"), q("port"), q("request")
    protocol, tries_s = q("protocol"), q("tries")
    tries = 1
    if tries_s:
        try:
            tries = int(tries_s)
        except ValueError:
            return http_error(f'tries parameter is invalid. strconv.Atoi: parsing '
                              f'{go_quote(tries_s)}: invalid syntax', 400)
    if not request:
        return http_error("request parameter not specified. <nil>", 400)
    proto = protocol.lower()
    if proto not in ("", "http", "udp", "sctp"):
        return http_error(f"unsupported protocol. {protocol}", 400)
    try:
        addr = await net.resolve(host, port, socket.SOCK_STREAM if proto != "udp"
                                 else socket.SOCK_DGRAM)
    except ValueError as exc:
        return http_error(f"host and/or port param are invalid. {exc}", 400)
    responses: list[str] = []
    errors: list[str] = []
    response = ""
    for _ in range(tries):
        try:
            if proto == "udp":
                response = await net.dial_udp(addr, request)
            elif proto == "sctp":
                response = await net.dial_sctp(addr, request)
            else:
                response = await net.dial_http(net.fmt_addr(addr), request)
        except RuntimeError as exc:
            response = ""
            errors.append(str(exc))
        else:
            responses.append(response)
    output: dict[str, list[str]] = {}
    if response:
        output["responses"] = responses
    if errors:
        output["errors"] = errors
    log(f"dial {proto or 'http'} {host}:{port} {request!r} x{tries}: "
        f"{len(responses)} ok, {len(errors)} errors")
    return Response(200, go_json(output))


async def upload(app: App, req: Request) -> Response:
    """``/upload``: store multipart field ``file`` under ``/uploads``; JSON ``output``."""
    ctype = req.header("content-type") or ""
    boundary = ""
    for part in ctype.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    data = None
    if ctype.lower().startswith("multipart/form-data") and boundary:
        for part in req.body.split(b"--" + boundary.encode("latin-1"))[1:]:
            head, sep, content = part.partition(b"\r\n\r\n")
            if sep and b'name="file"' in head:
                data = content[:-2] if content.endswith(b"\r\n") else content
                break
    if data is None:
        return Response(200, go_json({"error": "Unable to upload file."}))
    import tempfile

    try:
        fd, name = tempfile.mkstemp(prefix="upload", dir=UPLOAD_DIR)
    except OSError:
        return Response(200, go_json({"error": "Unable to open file for write"}))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(name, 0o700)
    except OSError:
        return Response(200, go_json({"error": "Unable to write file."}))
    log(f"Wrote upload to {name}")
    return Response(201, go_json({"output": name}))


ROUTES: dict[str, Handler] = {
    "/": root, "/clientip": clientip, "/header": header, "/dial": dial, "/echo": echo,
    "/exit": exit_, "/healthz": healthz, "/readyz": readyz, "/hostname": hostname,
    "/redirect": redirect, "/shell": shell, "/upload": upload, "/hostName": hostname,
    "/shutdown": shutdown,
}
