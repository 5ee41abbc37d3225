"""End-to-end tests of the agnhost-compatible netexec server, on loopback only."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from netexec_helpers import NetexecProcess, free_port

from testbed.workloads.netexec import UsageError, parse_args
from testbed.workloads.netexec_core import go_json, parse_go_duration
from testbed.workloads.netexec_http import clean_path

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = NetexecProcess(tmp_path_factory.mktemp("netexec"), "--some-unknown-flag=1")
    yield srv
    srv.stop()


@pytest.fixture
def fresh(tmp_path):
    started: list[NetexecProcess] = []

    def start(*extra: str, udp: bool = True) -> NetexecProcess:
        started.append(NetexecProcess(tmp_path, *extra, udp=udp))
        return started[-1]

    yield start
    for srv in started:
        srv.stop()


def q(**params: str) -> str:
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


# --- HTTP endpoints -----------------------------------------------------------------------


def test_root_and_unknown_paths(server):
    assert server.get("/").startswith("NOW: ")
    assert server.get("/no/such/path").startswith("NOW: ")


def test_echo(server):
    assert server.get("/echo?msg=hello%20world") == "hello world"
    status, _, body = server.request("/echo?msg=gone&code=404")
    assert (status, body) == (404, b"gone")
    assert "must be an integer" in server.get("/echo?msg=x&code=abc")
    form = server.request("/echo", "POST", b"msg=from+form",
                          {"Content-Type": "application/x-www-form-urlencoded"})
    assert form[2] == b"from form"


def test_echo_64k_body_round_trips(server):
    payload = os.urandom(64 * 1024)
    status, headers, body = server.request("/echo", "POST", payload,
                                           {"Content-Type": "application/octet-stream"})
    assert status == 200 and body == payload
    assert headers["content-length"] == str(len(payload))
    # urllib posts as x-www-form-urlencoded: still echoed when it carries no msg field.
    text = b"a" * 65536
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/echo", data=text) as r:
        assert r.read() == text


def test_echo_large_and_chunked_bodies(server):
    payload = os.urandom(4 * 1024 * 1024)
    assert server.request("/echo", "POST", payload)[2] == payload
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    conn.request("POST", "/echo", body=iter([b"abc", b"x" * 70000, b"def"]),
                 encode_chunked=True)
    assert conn.getresponse().read() == b"abc" + b"x" * 70000 + b"def"
    conn.close()


def test_expect_100_continue(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"hello")
        data = b"".join(iter(lambda: s.recv(4096), b""))
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"\r\n\r\nhello")


def test_hostname(server):
    assert server.get("/hostname") == socket.gethostname()
    assert server.get("/hostName") == socket.gethostname()


def test_clientip_is_peer_ip_and_port(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=5)
    conn.request("GET", "/clientip")
    body = conn.getresponse().read().decode()
    assert body == f"127.0.0.1:{conn.sock.getsockname()[1]}"
    conn.close()


def test_header(server):
    _, _, body = server.request("/header?key=x-forwarded-for",
                                headers={"X-Forwarded-For": "1.2.3.4"})
    assert body == b"1.2.3.4"
    _, _, body = server.request("/header", headers={"x-test-thing": "v"})
    data = json.loads(body)
    assert data["X-Test-Thing"] == ["v"] and "Host" not in data
    assert server.get("/header?key=X-Absent") == ""


def test_healthz_and_readyz(server):
    assert server.request("/healthz")[0] == 200
    assert server.request("/readyz")[::2] == (200, b"ok")


def test_shell(server):
    assert json.loads(server.get("/shell?" + q(cmd="echo hi; echo err >&2"))) == {
        "output": "hi\nerr\n"}
    assert json.loads(server.get("/shell?" + q(shellCommand="exit 3"))) == {
        "error": "exit status 3"}
    assert json.loads(server.get("/shell?" + q(cmd="kill -9 $$"))) == {"error": "signal: killed"}


def test_redirect(server):
    status, headers, _ = server.request("/redirect?" + q(location="/echo?msg=foo"))
    assert status == 302 and headers["location"] == "/echo?msg=foo"
    status, headers, _ = server.request("/redirect?" + q(location="http://x/", code="307"))
    assert status == 307 and headers["location"] == "http://x/"
    # urllib follows it back to /echo.
    url = f"http://127.0.0.1:{server.http_port}/redirect?" + q(location="/echo?msg=bar")
    with urllib.request.urlopen(url) as r:
        assert r.read() == b"bar"


def test_head_has_no_body(server):
    status, headers, body = server.request("/echo?msg=abc", "HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == "3"


def test_bad_request_line(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as s:
        s.sendall(b"garbage\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400 ")


# --- /dial ------------------------------------------------------------------------------------


def test_dial_http_to_itself(server):
    path = "/dial?" + q(host="127.0.0.1", port=str(server.http_port), request="hostname",
                        protocol="http", tries="3")
    assert json.loads(server.get(path)) == {"responses": [socket.gethostname()] * 3}
    path = "/dial?" + q(host="localhost", port=str(server.http_port), request="echo?msg=a b")
    assert json.loads(server.get(path)) == {"responses": ["a b"]}


def test_dial_udp_to_itself(server):
    path = "/dial?" + q(host="127.0.0.1", port=str(server.udp_port), request="hostname",
                        protocol="udp", tries="2")
    assert json.loads(server.get(path)) == {"responses": [socket.gethostname()] * 2}
    path = "/dial?" + q(host="127.0.0.1", port=str(server.udp_port), request="echo Hello",
                        protocol="udp")
    assert json.loads(server.get(path)) == {"responses": ["hello"]}


def test_dial_errors(server):
    closed = free_port()
    out = json.loads(server.get("/dial?" + q(host="127.0.0.1", port=str(closed),
                                             request="hostname", tries="2")))
    assert list(out) == ["errors"] and len(out["errors"]) == 2
    assert "connection refused" in out["errors"][0]
    assert out["errors"][0].startswith(f'Get "http://127.0.0.1:{closed}/hostname": ')
    out = json.loads(server.get("/dial?" + q(host="127.0.0.1", port=str(closed),
                                             request="hostname", protocol="udp")))
    assert out["errors"][0].startswith("reading from udp connection failed.")
    # The UDP server ignores unknown commands: the dial times out (agnhost: 5 s).
    t0 = time.monotonic()
    out = json.loads(server.get("/dial?" + q(host="127.0.0.1", port=str(server.udp_port),
                                             request="nonsense", protocol="udp")))
    assert "i/o timeout" in out["errors"][0] and 4 < time.monotonic() - t0 < 8


@pytest.mark.parametrize(("params", "text"), [
    ({"host": "127.0.0.1", "port": "1"}, "request parameter not specified"),
    ({"host": "127.0.0.1", "port": "1", "request": "x", "tries": "z"}, "tries parameter"),
    ({"host": "127.0.0.1", "port": "1", "request": "x", "protocol": "ftp"}, "unsupported"),
    ({"host": "no-such-host.invalid", "port": "1", "request": "x"}, "host and/or port"),
])
def test_dial_bad_parameters(server, params, text):
    status, _, body = server.request("/dial?" + q(**params))
    assert status == 400 and text in body.decode()


# --- UDP ----------------------------------------------------------------------------------


def test_udp_commands(server):
    assert server.udp(b"hostname") == socket.gethostname().encode()
    assert server.udp(b"  ECHO Mixed Case \n") == b"mixed case"  # agnhost trims + lowercases
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(b"clientip", ("127.0.0.1", server.udp_port))
        assert s.recv(100).decode() == f"127.0.0.1:{s.getsockname()[1]}"
    assert server.udp(b"what", timeout=0.5) is None


def test_udp_1472_byte_echo(server):
    msg = bytes(97 + i % 26 for i in range(1472 - 5))
    reply = server.udp(b"echo " + msg)
    assert reply == msg and len(b"echo " + msg) == 1472


# --- connections ---------------------------------------------------------------------------


def test_keep_alive_reuses_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=5)
    ports = set()
    for i in range(5):
        conn.request("GET", f"/echo?msg={i}")
        resp = conn.getresponse()
        assert resp.read() == str(i).encode() and resp.getheader("Connection") is None
        ports.add(conn.sock.getsockname()[1])
    conn.request("POST", "/echo", body=b"x" * 100000)
    assert conn.getresponse().read() == b"x" * 100000
    ports.add(conn.sock.getsockname()[1])
    assert len(ports) == 1
    conn.close()


def test_connection_close_and_http10(server):
    for request in (b"GET /echo?msg=a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    b"GET /echo?msg=a HTTP/1.0\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as s:
            s.sendall(request)
            data = b"".join(iter(lambda s=s: s.recv(4096), b""))  # server closes
        assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data
        assert data.endswith(b"\r\n\r\na")


def test_pipelined_requests(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as s:
        s.sendall(b"GET /echo?msg=one HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /echo?msg=two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b"".join(iter(lambda: s.recv(4096), b""))
    assert data.count(b"HTTP/1.1 200 OK") == 2 and data.endswith(b"two")


def test_concurrent_clients(server):
    slow = "/shell?" + q(cmd="sleep 2; echo slow")
    with ThreadPoolExecutor(20) as pool:
        t0 = time.monotonic()
        slow_future = pool.submit(server.get, slow)
        results = list(pool.map(lambda i: server.get(f"/echo?msg={i}"), range(60)))
        fast = time.monotonic() - t0
        assert json.loads(slow_future.result()) == {"output": "slow\n"}
    assert results == [str(i) for i in range(60)]
    assert fast < 1.8  # not serialised behind the slow shell command


def test_requests_are_logged(server):
    server.get("/echo?msg=logged-marker")
    assert "GET /echo?msg=logged-marker" in server.stdout()
    assert "some-unknown-flag" in server.stderr()


# --- variants and process lifecycle ----------------------------------------------------------


def test_http_override(fresh):
    srv = fresh("--http-override=/echo?msg=overridden")
    assert srv.get("/anything") == "overridden"
    assert srv.get("/hostname") == "overridden"


def test_udp_disabled(fresh):
    srv = fresh(udp=False)
    # agnhost semantics: without a UDP/SCTP server the process never reports ready.
    assert srv.request("/healthz")[0] == 412
    assert srv.request("/readyz")[0] == 412
    assert "Started UDP server" not in srv.stdout()


def test_sigterm_exits_zero(fresh):
    srv = fresh()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.wait_exit(5) == 0


def test_sigterm_with_delay_shutdown(fresh):
    srv = fresh("--delay-shutdown", "1")
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    assert srv.request("/readyz")[::2] == (503, b"shutting down")
    assert srv.request("/healthz")[0] == 200
    assert srv.wait_exit(10) == 0
    assert time.monotonic() - t0 >= 0.9


def test_exit_endpoint(fresh):
    srv = fresh()
    status, headers, _ = srv.request("/exit?code=3")
    assert status == 200 and headers.get("connection") == "close"
    assert srv.wait_exit(5) == 3
    srv2 = fresh()
    assert srv2.request("/exit?code=4&timeout=2s&wait=100ms")[0] == 200
    assert srv2.wait_exit(5) == 4
    srv3 = fresh()
    assert "golang duration" in srv3.get("/exit?timeout=banana")
    assert srv3.proc.poll() is None


def test_startup_time_and_memory(fresh):
    srv = fresh()
    rss = srv.rss_kib()
    print(f"netexec startup {srv.startup_seconds * 1000:.0f} ms, RSS {rss / 1024:.1f} MiB")
    assert srv.startup_seconds < 5
    assert rss < 64 * 1024


def test_bad_flag_value_exits_nonzero(tmp_path):
    srv = NetexecProcess(tmp_path, "--delay-shutdown=soon", wait=False)
    assert srv.wait_exit(10) == 1
    assert "delay-shutdown" in srv.stderr()


def test_sctp_server_if_supported(fresh):
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
    except OSError:
        pytest.skip("no SCTP support in this kernel")
    port = free_port()
    srv = fresh(f"--sctp-port={port}")
    out = json.loads(srv.get("/dial?" + q(host="127.0.0.1", port=str(port),
                                          request="echo Sctp", protocol="sctp")))
    assert out == {"responses": ["sctp"]}


# --- pure helpers ------------------------------------------------------------------------------


def test_parse_args():
    opts = parse_args(["netexec", "--http-port", "9000", "--udp-port=-1", "--sctp-port=7",
                       "--delay-shutdown=3", "--http-override=/hostname", "--mystery", "x",
                       "--flag-only"])
    assert (opts.http_port, opts.udp_port, opts.sctp_port) == (9000, -1, 7)
    assert (opts.delay_shutdown, opts.http_override) == (3, "/hostname")
    assert parse_args([]).http_port == 8080 and parse_args([]).udp_port == 8081
    with pytest.raises(UsageError):
        parse_args(["--http-port=eighty"])
    with pytest.raises(UsageError):
        parse_args(["--http-port"])


def test_go_helpers():
    assert parse_go_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_go_duration("250ms") == pytest.approx(0.25)
    assert parse_go_duration("0") == 0
    for bad in ("5", "1x", "", "s"):
        with pytest.raises(ValueError):
            parse_go_duration(bad)
    assert go_json({"b": ["<&>"], "a": []}) == '{"a":[],"b":["\\u003c\\u0026\\u003e"]}'
    assert clean_path("//hostname") == "/hostname"
    assert clean_path("/a/../echo/") == "/echo/"
