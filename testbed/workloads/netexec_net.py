"""UDP/SCTP command servers and the ``/dial`` clients of the ``netexec`` server.

The UDP and SCTP servers answer agnhost's datagram commands: ``hostname``,
``echo <msg>`` and ``clientip``; the input is trimmed and lower-cased first, exactly
as agnhost does, so ``echo Hi`` answers ``hi``. The dial clients reproduce agnhost's
``dialHTTP``/``dialUDP``/``dialSCTP`` results and (approximately) Go's error texts.
"""

from __future__ import annotations

import asyncio
import os
import socket
from urllib.parse import quote, urljoin, urlsplit

from testbed.workloads.netexec_core import App, fmt_addr, log, warn

UDP_BUF = 2048  # agnhost's UDP read buffer: longer datagrams are truncated
SCTP_BUF = 1024
DIAL_TIMEOUT = 5.0  # agnhost: http.Client.Timeout and UDP/SCTP read deadlines
MAX_REDIRECTS = 10  # Go's http.Client default
_REDIRECT_CODES = (301, 302, 303, 307, 308)
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"


def command_reply(app: App, data: bytes, peer: str, proto: str) -> bytes | None:
    """Answer one UDP/SCTP command datagram; ``None`` means "send nothing"."""
    text = data.decode("utf-8", "replace").strip().lower()
    if text == "hostname":
        log(f"Sending {proto} hostName response to {peer}")
        return app.hostname.encode()
    if text.startswith("echo "):
        resp = text.split(" ", 1)[1]
        log(f"Echoing {len(resp)} bytes to {proto} client {peer}")
        return resp.encode("utf-8")
    if text == "clientip":
        log(f"Sending clientip back to {proto} client {peer}")
        return peer.encode()
    if text:
        log(f"Unknown {proto} command received from {peer}: {text[:100]}")
    return None


class _UDPServer(asyncio.DatagramProtocol):
    def __init__(self, app: App) -> None:
        self.app = app
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        reply = command_reply(self.app, data[:UDP_BUF], fmt_addr(addr), "UDP")
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors for earlier replies: nothing to do


def _wildcard_sockets(port: int, kind: int, proto: int = 0) -> list[socket.socket]:
    """Bound sockets for "every address": IPv4 ``0.0.0.0`` plus IPv6 ``::`` when available."""
    socks = []
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            s = socket.socket(family, kind, proto)
        except OSError:
            if family == socket.AF_INET6:
                continue  # no IPv6 in this network namespace / kernel
            raise
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((host, port))
        except OSError:
            s.close()
            if family == socket.AF_INET6 and socks:
                continue
            raise
        socks.append(s)
    return socks


def _bound_socket(host: str, port: int, kind: int, proto: int = 0) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, kind, proto)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
    except OSError:
        s.close()
        raise
    return s


async def start_udp(app: App) -> None:
    """Start the UDP command server(s) on ``--udp-port`` (raises ``OSError`` on bind failure)."""
    loop = asyncio.get_running_loop()
    port = app.opts.udp_port
    if app.opts.udp_listen_addresses:
        addrs = sorted({a.strip() for a in app.opts.udp_listen_addresses.split(",")})
        socks = [_bound_socket(a, port, socket.SOCK_DGRAM) for a in addrs]
    elif app.opts.listen_address:
        socks = [_bound_socket(app.opts.listen_address, port, socket.SOCK_DGRAM)]
    else:
        socks = _wildcard_sockets(port, socket.SOCK_DGRAM)
    for s in socks:
        transport, _ = await loop.create_datagram_endpoint(lambda: _UDPServer(app), sock=s)
        app.servers.append(transport)
        log(f"Started UDP server on {fmt_addr(s.getsockname())}")
    app.server_ready = True


async def start_sctp(app: App) -> None:
    """Start the SCTP command server; warns (instead of dying) if SCTP is unavailable."""
    try:
        if app.opts.listen_address:
            socks = [_bound_socket(app.opts.listen_address, app.opts.sctp_port,
                                   socket.SOCK_STREAM, socket.IPPROTO_SCTP)]
        else:
            socks = _wildcard_sockets(app.opts.sctp_port, socket.SOCK_STREAM,
                                      socket.IPPROTO_SCTP)
    except OSError as exc:
        warn(f"SCTP server not started on port {app.opts.sctp_port}: {exc}")
        return

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = fmt_addr(writer.get_extra_info("peername"))
        try:
            data = await reader.read(SCTP_BUF)
            reply = command_reply(app, data, peer, "SCTP")
            if reply is not None:
                writer.write(reply)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    for s in socks:
        s.listen(128)
        app.servers.append(await asyncio.start_server(handle, sock=s))
    log(f"Started SCTP server on port {app.opts.sctp_port}")
    app.server_ready = True


def _errno_text(exc: OSError) -> str:
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


async def _http_once(url: str) -> tuple[int, dict[str, str], bytes | None]:
    """One ``GET url`` (HTTP/1.1, ``Connection: close``). Body is ``None`` if it broke off."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise RuntimeError(f"unsupported protocol scheme {parts.scheme!r}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        raise RuntimeError(f"dial tcp {parts.netloc}: connect: {_errno_text(exc)}") from None
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                     "User-Agent: Go-http-client/1.1\r\nConnection: close\r\n\r\n".encode())
        try:
            status_line = await reader.readline()
            if not status_line:
                raise RuntimeError("EOF")
            fields = status_line.decode("latin-1").split(None, 2)
            if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
                raise RuntimeError("net/http: HTTP/1.x transport connection broken: "
                                   f"malformed HTTP response {status_line[:60]!r}")
            headers: dict[str, str] = {}
            while True:
                line = await reader.readline()
                if not line:
                    raise RuntimeError("unexpected EOF")
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
        except OSError as exc:
            local = fmt_addr(writer.get_extra_info("sockname"))
            raise RuntimeError(f"read tcp {local}->{parts.netloc}: read: {_errno_text(exc)}") \
                from None
        status = int(fields[1])
        try:
            body = await _read_body(reader, headers)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            body = None
        return status, headers, body
    finally:
        writer.close()


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"x", 16)
            if size == 0:
                break
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        return b"".join(chunks)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read()


async def dial_http(hostport: str, request: str) -> str:
    """agnhost ``dialHTTP``: ``GET http://hostport/request`` (5 s timeout, follows redirects).

    Returns the body (any status code); raises ``RuntimeError`` with a Go-like message.
    """
    url = f"http://{hostport}/{request}".split("#", 1)[0]
    url = quote(url, safe=_URL_SAFE)
    try:
        async with asyncio.timeout(DIAL_TIMEOUT):
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    status, headers, body = await _http_once(url)
                except RuntimeError as exc:
                    raise RuntimeError(f'Get "{url}": {exc}') from None
                location = headers.get("location")
                if status in _REDIRECT_CODES and location:
                    url = urljoin(url, location)
                    continue
                # agnhost quirk: a failed body read counts as a successful, empty response.
                return (body or b"").decode("utf-8", "replace")
            raise RuntimeError(f'Get "{url}": stopped after {MAX_REDIRECTS} redirects')
    except TimeoutError:
        raise RuntimeError(f'Get "{url}": context deadline exceeded '
                           "(Client.Timeout exceeded while awaiting headers)") from None


async def dial_udp(addr: tuple, request: str) -> str:
    """agnhost ``dialUDP``: send ``request`` as one datagram, return the reply (5 s deadline)."""
    loop = asyncio.get_running_loop()
    remote = fmt_addr(addr)
    with socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET,
                       socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        try:
            s.connect(addr)
        except OSError as exc:
            raise RuntimeError(f"udp dial failed. err:dial udp {remote}: "
                               f"{_errno_text(exc)}") from None
        local = fmt_addr(s.getsockname())
        try:
            await loop.sock_sendall(s, request.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            raise RuntimeError(f"udp connection write failed. err:write udp {local}->{remote}: "
                               f"write: {_errno_text(exc)}") from None
        try:
            data = await asyncio.wait_for(loop.sock_recv(s, UDP_BUF), DIAL_TIMEOUT)
        except TimeoutError:
            err = f"read udp {local}->{remote}: i/o timeout"
        except OSError as exc:
            err = f"read udp {local}->{remote}: read: {_errno_text(exc)}"
        else:
            if data:
                return data.decode("utf-8", "replace")
            err = "<nil>"
    raise RuntimeError(f"reading from udp connection failed. err:'{err}'")


async def dial_sctp(addr: tuple, request: str) -> str:
    """agnhost ``dialSCTP``: connect, send ``request``, return the first reply (5 s deadline)."""
    loop = asyncio.get_running_loop()
    remote = fmt_addr(addr)
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    try:
        s = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    except OSError as exc:
        raise RuntimeError(f"sctp dial failed. err:{_errno_text(exc)}") from None
    with s:
        s.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(s, addr), 30)
            await loop.sock_sendall(s, request.encode("utf-8", "surrogateescape"))
        except (OSError, TimeoutError) as exc:
            text = _errno_text(exc) if isinstance(exc, OSError) else "i/o timeout"
            raise RuntimeError(f"sctp dial failed. err:dial sctp {remote}: {text}") from None
        try:
            data = await asyncio.wait_for(loop.sock_recv(s, SCTP_BUF), DIAL_TIMEOUT)
        except TimeoutError:
            err = "i/o timeout"
        except OSError as exc:
            err = _errno_text(exc)
        else:
            if data:
                return data.decode("utf-8", "replace")
            err = "EOF"
    raise RuntimeError(f"reading from sctp connection failed. err:'{err}'")


async def resolve(host: str, port: str, kind: int) -> tuple:
    """Resolve ``host``/``port`` to one socket address, preferring IPv4 like Go's resolver."""
    loop = asyncio.get_running_loop()
    if not port:
        port = "0"
    try:
        infos = await loop.getaddrinfo(host or None, port, type=kind)
    except socket.gaierror as exc:
        raise ValueError(f"lookup {host or port}: {exc.strerror or exc}") from None
    except UnicodeError:
        raise ValueError(f"lookup {host}: invalid host name") from None
    if not infos:
        raise ValueError(f"lookup {host}: no such host")
    for info in infos:
        if info[0] == socket.AF_INET:
            return info[4][:2]
    return infos[0][4][:2]
