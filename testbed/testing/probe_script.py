"""Runs inside a pod (via `ip netns exec`): many connection checks in parallel, JSON out.

Kept stdlib-only and small: it is passed to `python3 -c` in the source pod, so one exec gives
a whole row of a reachability matrix.
"""

import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor


def check(target: dict) -> dict:
    host, port, proto = target["host"], int(target["port"]), target.get("protocol", "tcp")
    timeout = float(target.get("timeout", 1.0))
    request = target.get("request", "hostname")
    try:
        if proto == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(timeout)
                s.sendto(request.encode(), (host, port))
                data, _ = s.recvfrom(65535)
                return {"ok": True, "reply": data.decode(errors="replace")}
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            path = "/" + request.lstrip("/")
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
            raw = b"".join(chunks).decode(errors="replace")
            body = raw.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in raw else raw
            return {"ok": True, "reply": body}
    except OSError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def main() -> None:
    targets = json.loads(sys.argv[1])
    with ThreadPoolExecutor(max_workers=min(32, max(1, len(targets)))) as pool:
        print(json.dumps(list(pool.map(check, targets))))


if __name__ == "__main__":
    main()
