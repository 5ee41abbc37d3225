"""etcd-backed :class:`~testbed.store.base.Store` over etcd's v3 JSON gateway.

Unary calls (range, put, txn, deleterange, compaction) go through etcd3gw's
client (``post`` + ``get_url``, so its API-path discovery picks ``/v3/`` on
etcd >= 3.4). Keys and values are base64-encoded here as UTF-8 (etcd3gw's own
helpers encode ``str`` as latin-1). Watches do not use etcd3gw's ``Watcher``:
it ignores compaction/cancel responses (the stream then hangs silently),
swallows stream errors in its executor thread, its ``stop()`` closes the
*shared* session's connection pools, and ``watch_prefix_once`` double-encodes
``range_end`` (watching far more than the prefix). Instead each watch owns
an HTTP connection read by one thread; ``cancel()`` shuts the socket down
and joins that thread.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import threading
import weakref
from typing import Any

import etcd3gw
import requests
from etcd3gw import exceptions as gw_exc
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from testbed.store.base import (
    Compacted,
    Event,
    KeyValue,
    QueueWatch,
    StoreError,
    StoreUnavailable,
    WatchError,
    decode_value,
    encode_value,
)

DEFAULT_TIMEOUT = 5.0


def _b64(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def _unb64(data: str) -> bytes:
    return base64.b64decode(data)


def range_end(prefix: str) -> bytes:
    """etcd ``range_end`` covering every key that starts with ``prefix``."""
    raw = bytearray(prefix.encode("utf-8"))
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return b"\0"  # "all keys >= key"
    raw[-1] += 1
    return bytes(raw)


def _prefix_range(prefix: str) -> dict[str, str]:
    key = prefix.encode("utf-8") or b"\0"
    return {"key": _b64(key), "range_end": _b64(range_end(prefix))}


def _kv(item: dict[str, Any]) -> KeyValue:
    key = _unb64(item["key"]).decode("utf-8")
    return KeyValue(
        key=key,
        value=decode_value(_unb64(item.get("value", "")), key),
        mod_revision=int(item.get("mod_revision", 0)),
        create_revision=int(item.get("create_revision", 0)),
    )


def _revision(resp: dict[str, Any]) -> int:
    return int(resp.get("header", {}).get("revision", 0))


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """Split ``host:port`` / ``http://host:port`` / ``[v6]:port`` (port defaults to 2379)."""
    rest = endpoint.split("://", 1)[-1].rstrip("/")
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail.lstrip(":")
    elif rest.count(":") == 1:
        host, port = rest.split(":")
    else:
        host, port = rest, ""
    if not host:
        raise ValueError(f"bad etcd endpoint {endpoint!r}")
    return host, int(port) if port else 2379


class EtcdStore:
    """Store backed by etcd (v3 API through the grpc-gateway, via etcd3gw).

    ``timeout`` bounds each unary request and the set-up of a watch.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2379,
        timeout: float = DEFAULT_TIMEOUT,
        api_path: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._client = etcd3gw.client(host=host, port=port, timeout=timeout, api_path=api_path)
        self._watches: weakref.WeakSet[_EtcdWatch] = weakref.WeakSet()
        self._watches_lock = threading.Lock()

    @classmethod
    def from_endpoint(cls, endpoint: str, timeout: float = DEFAULT_TIMEOUT) -> EtcdStore:
        """Build from ``"172.30.0.2:2379"`` (an ``http://`` scheme is accepted)."""
        host, port = parse_endpoint(endpoint)
        return cls(host, port, timeout=timeout)

    def __repr__(self) -> str:
        return f"EtcdStore({self.host!r}, {self.port})"

    # -- plumbing ----------------------------------------------------------
    @property
    def api_path(self) -> str:
        """Gateway API prefix in use (``/v3/`` on etcd 3.4+)."""
        try:
            return self._client.api_path
        except gw_exc.Etcd3Exception as exc:
            raise StoreUnavailable(f"etcd at {self.host}:{self.port}: {exc!r}") from exc

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._client.post(self._client.get_url(path), json=payload)
        except (gw_exc.ConnectionFailedError, gw_exc.ConnectionTimeoutError) as exc:
            raise StoreUnavailable(f"etcd at {self.host}:{self.port}: {exc!r}") from exc
        except gw_exc.Etcd3Exception as exc:
            raise StoreError(f"etcd {path} failed: {exc.detail_text or exc!r}") from exc

    def _txn(self, compare: dict[str, Any], success: dict[str, Any]) -> dict[str, Any]:
        payload = {"compare": [compare], "success": [success], "failure": []}
        return self._post("/kv/txn", payload)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll ``/health`` until etcd answers healthy; raise StoreUnavailable on timeout."""
        url = f"{self._client.base_url}/health"

        def probe() -> None:
            try:
                resp = self._client.session.get(url, timeout=min(self.timeout, 2.0))
                healthy = resp.status_code == 200 and resp.json().get("health") == "true"
            except (requests.RequestException, ValueError) as exc:
                raise StoreUnavailable(f"etcd at {url} not answering: {exc!r}") from exc
            if not healthy:
                raise StoreUnavailable(f"etcd at {url} unhealthy: {resp.text.strip()}")
            _ = self.api_path  # discover /v3/ vs /v3beta/ while we are at it

        Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(0.1),
            retry=retry_if_exception_type(StoreUnavailable),
            reraise=True,
        )(probe)

    # -- reads -------------------------------------------------------------
    def get(self, key: str) -> KeyValue | None:
        """The key's current value, or None."""
        kvs = self._post("/kv/range", {"key": _b64(key)}).get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Items under ``prefix`` sorted by key, and the store revision of the read."""
        resp = self._post("/kv/range", {**_prefix_range(prefix), "sort_order": 1, "sort_target": 0})
        return [_kv(item) for item in resp.get("kvs", [])], _revision(resp)

    @property
    def revision(self) -> int:
        """Current store revision."""
        return _revision(self._post("/kv/range", {"key": _b64("\0"), "count_only": True}))

    # -- writes ------------------------------------------------------------
    def put(self, key: str, value: dict) -> int:
        """Unconditional write; returns the new revision."""
        return _revision(
            self._post("/kv/put", {"key": _b64(key), "value": _b64(encode_value(value))})
        )

    def create(self, key: str, value: dict) -> bool:
        """Write only if ``key`` is absent (txn on create_revision == 0)."""
        k = _b64(key)
        resp = self._txn(
            {"key": k, "result": "EQUAL", "target": "CREATE", "create_revision": 0},
            {"request_put": {"key": k, "value": _b64(encode_value(value))}},
        )
        return bool(resp.get("succeeded"))

    def update(self, key: str, value: dict, expected_mod_revision: int) -> bool:
        """Compare-and-swap on the key's mod_revision."""
        k = _b64(key)
        resp = self._txn(
            {"key": k, "result": "EQUAL", "target": "MOD", "mod_revision": expected_mod_revision},
            {"request_put": {"key": k, "value": _b64(encode_value(value))}},
        )
        return bool(resp.get("succeeded"))

    def delete(self, key: str, expected_mod_revision: int | None = None) -> bool:
        """Delete ``key`` (only at ``expected_mod_revision`` if given); True if deleted."""
        k = _b64(key)
        if expected_mod_revision is None:
            return int(self._post("/kv/deleterange", {"key": k}).get("deleted", 0)) > 0
        resp = self._txn(
            {"key": k, "result": "EQUAL", "target": "MOD", "mod_revision": expected_mod_revision},
            {"request_delete_range": {"key": k}},
        )
        if not resp.get("succeeded"):
            return False
        deleted = resp.get("responses", [{}])[0].get("response_delete_range", {}).get("deleted", 0)
        return int(deleted) > 0

    def delete_prefix(self, prefix: str) -> int:
        """Delete all keys under ``prefix`` (one revision); returns the count."""
        return int(self._post("/kv/deleterange", _prefix_range(prefix)).get("deleted", 0))

    def compact(self, revision: int) -> None:
        """Compact history before ``revision``; already-compacted revisions are ignored."""
        try:
            self._post("/kv/compaction", {"revision": revision, "physical": True})
        except StoreUnavailable:
            raise
        except StoreError as exc:
            if "compacted" not in str(exc):
                raise

    # -- watches -----------------------------------------------------------
    def watch(self, prefix: str, start_revision: int = 0) -> QueueWatch:
        """Watch ``prefix`` from ``start_revision`` (0: from the next write).

        Returns once etcd has confirmed the watch. A compacted start revision
        makes the watch raise :class:`Compacted` on read.
        """
        w = _EtcdWatch(self, prefix, start_revision)
        with self._watches_lock:
            self._watches.add(w)
        return w

    def close(self) -> None:
        """Cancel open watches and close the HTTP session."""
        with self._watches_lock:
            watches = list(self._watches)
        for w in watches:
            w.cancel()
        self._client.session.close()


class _EtcdWatch(QueueWatch):
    """One gateway watch stream, read by a dedicated thread."""

    def __init__(self, store: EtcdStore, prefix: str, start_revision: int) -> None:
        super().__init__(prefix, start_revision, on_cancel=self._shutdown)
        create: dict[str, Any] = _prefix_range(prefix)
        if start_revision > 0:
            create["start_revision"] = start_revision
        body = json.dumps({"create_request": create})
        conn = http.client.HTTPConnection(store.host, store.port, timeout=store.timeout)
        try:
            conn.request(
                "POST", store.api_path + "watch", body, {"Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            if resp.status != 200:
                raise StoreError(f"etcd watch: HTTP {resp.status} {resp.read(500)!r}")
            first = self._read(resp)
            if first is None or not first.get("created"):
                raise WatchError(f"etcd did not create the watch: {first!r}")
            self._handle(first)
            assert conn.sock is not None
            conn.sock.settimeout(None)  # idle watches may wait for ever
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise StoreUnavailable(f"etcd watch on {store.host}:{store.port}: {exc!r}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._resp = resp
        self._thread = threading.Thread(target=self._run, name=f"etcd-watch {prefix}", daemon=True)
        self._thread.start()

    @staticmethod
    def _read(resp: http.client.HTTPResponse) -> dict[str, Any] | None:
        """Next newline-delimited JSON message; None at end of stream."""
        while True:
            line = resp.readline()
            if not line:
                return None
            if line.strip():
                msg = json.loads(line)
                if "error" in msg:
                    raise WatchError(f"etcd watch stream error: {msg['error']}")
                return msg.get("result", {})

    def _handle(self, result: dict[str, Any]) -> None:
        compact = int(result.get("compact_revision", 0))
        if compact:
            raise Compacted(self.start_revision, compact)
        if result.get("canceled"):
            raise WatchError(f"etcd canceled the watch: {result.get('cancel_reason', '')}")
        for ev in result.get("events", []):
            kv = ev["kv"]
            key = _unb64(kv["key"]).decode("utf-8")
            if ev.get("type") == "DELETE":
                event = Event("DELETE", key, None, int(kv["mod_revision"]))
            else:
                value = decode_value(_unb64(kv.get("value", "")), key)
                event = Event("PUT", key, value, int(kv["mod_revision"]))
            self.deliver(event)

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            while not self.cancelled:
                result = self._read(self._resp)
                if result is None:
                    raise WatchError("etcd closed the watch stream")
                self._handle(result)
        except WatchError as exc:
            error = exc
        except Exception as exc:  # socket errors, non-JSON data, ...
            error = WatchError(f"etcd watch stream failed: {exc!r}")
        finally:
            self._conn.close()
            self.finish(None if self.cancelled else error)

    def _shutdown(self) -> None:
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
