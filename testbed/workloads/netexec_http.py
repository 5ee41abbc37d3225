"""A small asyncio HTTP/1.1 server for ``netexec``: keep-alive, pipelining, chunked bodies.

Requests are read fully (``Content-Length`` or chunked, with ``Expect: 100-continue``)
and handed to a route table of ``async handler(app, request) -> Response`` functions;
unknown paths go to the ``/`` handler, as with Go's ``http.ServeMux``.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from testbed.workloads.netexec_core import App, fmt_addr, log

MAX_BODY = 256 * 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024
READ_LIMIT = 256 * 1024  # longest single request/header line
TEXT = "text/plain; charset=utf-8"
REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 412: "Precondition Failed", 413: "Request Entity Too Large",
    417: "Expectation Failed", 418: "I'm a teapot", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}


class HTTPError(Exception):
    """A protocol error: answered with ``status`` and the connection is closed."""

    def __init__(self, status: int, text: str = "") -> None:
        super().__init__(text)
        self.status = status
        self.text = text or f"{status} {REASONS.get(status, '')}"


class Request:
    """A parsed HTTP request (body fully read)."""

    __slots__ = ("method", "target", "path", "query", "version", "headers", "body",
                 "remote", "_form")

    def __init__(self, method: str, target: str, version: str = "HTTP/1.1",
                 headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                 remote: str = "") -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers or []
        self.body = body
        self.remote = remote
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            raw_path, self.query = parts.path or "/", parts.query
        else:
            raw_path, _, self.query = target.partition("?")
        self.path = clean_path(unquote(raw_path))
        self._form: dict[str, list[str]] | None = None

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), or ``None``."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def query_value(self, key: str) -> str:
        """First URL query value of ``key`` (``""`` if absent), like Go's ``Query().Get``."""
        return parse_qs(self.query, keep_blank_values=True).get(key, [""])[0]

    def form(self) -> dict[str, list[str]]:
        """Go's ``r.Form``: url-encoded POST/PUT/PATCH body values first, then query values."""
        if self._form is None:
            form: dict[str, list[str]] = {}
            ctype = (self.header("content-type") or "").split(";")[0].strip().lower()
            if (self.method in ("POST", "PUT", "PATCH")
                    and ctype == "application/x-www-form-urlencoded" and self.body):
                form = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
            for key, values in parse_qs(self.query, keep_blank_values=True).items():
                form.setdefault(key, []).extend(values)
            self._form = form
        return self._form

    def form_value(self, key: str) -> str | None:
        """First form value of ``key`` or ``None`` when absent (Go returns ``""``)."""
        values = self.form().get(key)
        return values[0] if values else None

    @property
    def keep_alive(self) -> bool:
        """Whether the connection stays open after this request."""
        tokens = {t.strip().lower() for t in (self.header("connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


class Response:
    """A response to send; ``after`` runs once it was sent and the connection closed."""

    __slots__ = ("status", "body", "headers", "after")

    def __init__(self, status: int = 200, body: bytes | str = b"",
                 headers: list[tuple[str, str]] | None = None,
                 after: Callable[[], Awaitable[None]] | None = None) -> None:
        self.status = status
        self.body = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
        self.headers = headers if headers is not None else [("Content-Type", TEXT)]
        self.after = after


def http_error(text: str, status: int) -> Response:
    """Go's ``http.Error``: plain text ``text`` plus a newline."""
    return Response(status, text + "\n",
                    [("Content-Type", TEXT), ("X-Content-Type-Options", "nosniff")])


def clean_path(path: str) -> str:
    """Go's ``cleanPath``: absolute, ``.``/``..``/``//`` resolved, trailing slash kept."""
    if not path.startswith("/"):
        path = "/" + path
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


Handler = Callable[[App, Request], Awaitable[Response]]


async def _read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        remote: str) -> Request | None:
    try:
        line = await reader.readline()
        while line in (b"\r\n", b"\n"):  # tolerate stray CRLFs between requests
            line = await reader.readline()
        if not line:
            return None
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise HTTPError(400)
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise HTTPError(505) if version.startswith("HTTP/") else HTTPError(400)
        headers: list[tuple[str, str]] = []
        size = 0
        while True:
            hline = await reader.readline()
            if not hline:
                raise asyncio.IncompleteReadError(b"", None)
            if hline in (b"\r\n", b"\n"):
                break
            size += len(hline)
            if size > MAX_HEADER_BYTES:
                raise HTTPError(431)
            name, sep, value = hline.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise HTTPError(400, "400 Bad Request: malformed header line")
            headers.append((name, value.strip()))
    except ValueError:  # line longer than the reader limit
        raise HTTPError(431) from None
    req = Request(method, target, version, headers, b"", remote)
    req.body = await _read_body(req, reader, writer)
    return req


async def _read_body(req: Request, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> bytes:
    te = (req.header("transfer-encoding") or "").lower()
    clen = req.header("content-length")
    if not te and clen is None:
        return b""
    if clen is not None and not te:
        if not clen.isdigit():
            raise HTTPError(400, "400 Bad Request: bad Content-Length")
        length = int(clen)
        if length > MAX_BODY:
            raise HTTPError(413)
    elif "chunked" not in te:
        raise HTTPError(501, "unsupported transfer encoding")
    if (req.version == "HTTP/1.1"
            and (req.header("expect") or "").lower() == "100-continue"):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if not te:
        return await reader.readexactly(length)
    chunks, total = [], 0
    while True:
        try:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
        except ValueError:
            raise HTTPError(400, "400 Bad Request: bad chunk size") from None
        if size == 0:
            break
        total += size
        if total > MAX_BODY:
            raise HTTPError(413)
        chunks.append(await reader.readexactly(size))
        await reader.readline()
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass  # trailers
    return b"".join(chunks)


def _encode(resp: Response, keep_alive: bool, head: bool) -> bytes:
    status = resp.status
    reason = REASONS.get(status, f"status code {status}")
    lines = [f"HTTP/1.1 {status} {reason}",
             "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())]
    lines.extend(f"{k}: {v}" for k, v in resp.headers)
    body = resp.body
    if status in (204, 304) or status < 200:
        body = b""
    else:
        lines.append(f"Content-Length: {len(body)}")
    if not keep_alive:
        lines.append("Connection: close")
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head_bytes if head else head_bytes + body


class HTTPServer:
    """Serves one listening socket's connections with a route table."""

    def __init__(self, app: App, routes: dict[str, Handler], root: Handler,
                 override: str = "") -> None:
        self.app = app
        self.routes = routes
        self.root = root
        self.override = override

    async def dispatch(self, req: Request) -> Response:
        """Route ``req`` (after ``--http-override`` rewriting) and run its handler."""
        if self.override:
            # agnhost builds a fresh GET request: no headers, body or remote address.
            req = Request("GET", self.override)
        handler = self.routes.get(req.path, self.root)
        self.app.active_requests += 1
        try:
            return await handler(self.app, req)
        except Exception as exc:  # a handler bug must not kill the connection silently
            log(f"handler error for {req.path}: {exc!r}")
            return http_error(f"internal error: {exc!r}", 500)
        finally:
            self.app.active_requests -= 1

    async def handle_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        """Serve requests on one connection until it closes or asks to."""
        remote = fmt_addr(writer.get_extra_info("peername"))
        after = None
        try:
            while True:
                try:
                    req = await _read_request(reader, writer, remote)
                except HTTPError as exc:
                    log(f"{remote} bad request: {exc.status} {exc.text}")
                    writer.write(_encode(http_error(exc.text, exc.status), False, False))
                    await writer.drain()
                    break
                if req is None:
                    break
                log(f"{remote} {req.method} {req.target[:200]}")
                resp = await self.dispatch(req)
                if not 100 <= resp.status <= 999:
                    break  # Go panics on an invalid WriteHeader code: connection dropped
                keep = req.keep_alive and resp.after is None
                writer.write(_encode(resp, keep, req.method == "HEAD"))
                await writer.drain()
                if resp.after is not None:
                    after = resp.after
                if not keep:
                    break
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            if after is not None:
                with contextlib.suppress(OSError, TimeoutError):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)
                await after()


async def start_http(app: App, server: HTTPServer) -> None:
    """Listen on ``--http-port`` (TLS if ``--tls-cert-file``); raises ``OSError`` on failure."""
    ssl_ctx = None
    if app.opts.tls_cert_file:
        import ssl

        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(app.opts.tls_cert_file, app.opts.tls_private_key_file or None)
    srv = await asyncio.start_server(
        server.handle_connection, host=app.opts.listen_address or None,
        port=app.opts.http_port, ssl=ssl_ctx, limit=READ_LIMIT, backlog=1024)
    app.servers.append(srv)
