"""The `bpf()` system call through ctypes: open pinned maps, batch updates/deletes, reads.

Map programming goes through here (one syscall per batch of thousands of entries), never
through one bpftool process per entry. `MapIO` is the small interface the backend needs;
`tests/proxy_ebpf` substitute a dict-backed fake for it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from typing import Protocol

SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine(), 321)
BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM = 1, 2, 3
BPF_MAP_GET_NEXT_KEY, BPF_OBJ_GET = 4, 7
BPF_MAP_LOOKUP_BATCH, BPF_MAP_UPDATE_BATCH, BPF_MAP_DELETE_BATCH = 24, 26, 27
ATTR_SIZE = 128
CHUNK = 8192


class BpfError(OSError):
    """A failed bpf() command, naming the command."""


class MapIO(Protocol):
    """What the backend needs from the kernel's map interface."""

    def open(self, path: str) -> int:
        """An fd for the map pinned at `path`."""

    def close(self, fd: int) -> None:
        """Close a map fd."""

    def update(self, fd: int, pairs: list[tuple[bytes, bytes]]) -> None:
        """Write (key, value) pairs in order."""

    def delete(self, fd: int, keys: list[bytes]) -> None:
        """Delete keys in order, ignoring missing ones."""

    def items(self, fd: int, key_size: int, value_size: int) -> list[tuple[bytes, bytes]]:
        """Every (key, value) of the map."""


class _Buf:
    """A ctypes buffer whose address goes into a bpf_attr field."""

    def __init__(self, data: bytes | int) -> None:
        self.buf = ctypes.create_string_buffer(data, len(data)) if isinstance(
            data, bytes) else ctypes.create_string_buffer(data)
        self.addr = ctypes.addressof(self.buf)

    @property
    def raw(self) -> bytes:
        """The buffer's bytes."""
        return self.buf.raw


class KernelMapIO:
    """MapIO over the real bpf() syscall."""

    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long
        self.batch_ok = True

    def _call(self, cmd: int, attr: bytes) -> tuple[int, bytes]:
        buf = ctypes.create_string_buffer(attr.ljust(ATTR_SIZE, b"\0"), ATTR_SIZE)
        ret = self.libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_long(cmd), buf,
                                ctypes.c_long(ATTR_SIZE))
        if ret < 0:
            err = ctypes.get_errno()
            exc = BpfError(err, f"bpf(cmd={cmd}): {os.strerror(err)}")
            exc.attr = buf.raw  # type: ignore[attr-defined]
            raise exc
        return ret, buf.raw

    def open(self, path: str) -> int:
        """BPF_OBJ_GET: an fd for a pinned map."""
        p = _Buf(path.encode() + b"\0")
        fd, _ = self._call(BPF_OBJ_GET, struct.pack("<QII", p.addr, 0, 0))
        return fd

    def close(self, fd: int) -> None:
        """Close a map fd."""
        os.close(fd)

    def _elem(self, cmd: int, fd: int, key: bytes, value: _Buf | None, flags: int = 0) -> None:
        k = _Buf(key)
        self._call(cmd, struct.pack("<IIQQQ", fd, 0, k.addr, value.addr if value else 0, flags))

    def _batch(self, cmd: int, fd: int, keys: bytes, values: bytes | None, count: int) -> int:
        """Run one batch command; returns how many elements the kernel processed."""
        kb = _Buf(keys)
        vb = _Buf(values) if values is not None else None
        attr = struct.pack("<QQQQIIQQ", 0, 0, kb.addr, vb.addr if vb else 0, count, fd, 0, 0)
        try:
            self._call(cmd, attr)
        except BpfError as exc:
            done = struct.unpack_from("<I", exc.attr, 32)[0]  # type: ignore[attr-defined]
            exc.done = done  # type: ignore[attr-defined]
            raise
        return count

    def update(self, fd: int, pairs: list[tuple[bytes, bytes]]) -> None:
        """Write entries in order (BPF_MAP_UPDATE_BATCH, chunked; per element as fallback)."""
        for i in range(0, len(pairs), CHUNK):
            chunk = pairs[i:i + CHUNK]
            if self.batch_ok:
                try:
                    self._batch(BPF_MAP_UPDATE_BATCH, fd, b"".join(k for k, _ in chunk),
                                b"".join(v for _, v in chunk), len(chunk))
                    continue
                except BpfError as exc:
                    if exc.errno not in (errno.EINVAL, errno.ENOTSUP, 524):
                        raise
                    self.batch_ok = False
            for k, v in chunk:
                self._elem(BPF_MAP_UPDATE_ELEM, fd, k, _Buf(v))

    def delete(self, fd: int, keys: list[bytes]) -> None:
        """Delete keys in order; keys already gone are skipped."""
        pending = list(keys)
        while pending:
            chunk = pending[:CHUNK]
            try:
                self._batch(BPF_MAP_DELETE_BATCH, fd, b"".join(chunk), None, len(chunk))
                pending = pending[len(chunk):]
            except BpfError as exc:
                if exc.errno != errno.ENOENT and exc.errno not in (errno.EINVAL, 524):
                    raise
                done = getattr(exc, "done", 0)
                if exc.errno != errno.ENOENT:  # no batch support: one by one
                    for k in chunk:
                        self._delete_one(fd, k)
                    done = len(chunk) - 1
                pending = pending[done + 1:]  # skip the missing key

    def _delete_one(self, fd: int, key: bytes) -> None:
        try:
            self._elem(BPF_MAP_DELETE_ELEM, fd, key, None)
        except BpfError as exc:
            if exc.errno != errno.ENOENT:
                raise

    def items(self, fd: int, key_size: int, value_size: int) -> list[tuple[bytes, bytes]]:
        """All entries (BPF_MAP_LOOKUP_BATCH; GET_NEXT_KEY + LOOKUP as fallback)."""
        try:
            return self._items_batch(fd, key_size, value_size)
        except BpfError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOTSUP, 524):
                raise
        out, key = [], None
        while True:
            nxt = _Buf(key_size)
            try:
                self._elem(BPF_MAP_GET_NEXT_KEY, fd, key or b"\0" * key_size, nxt)
            except BpfError as exc:
                if exc.errno == errno.ENOENT:
                    return out
                raise
            key = nxt.raw
            val = _Buf(value_size)
            try:
                self._elem(BPF_MAP_LOOKUP_ELEM, fd, key, val)
            except BpfError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                continue
            out.append((key, val.raw))

    def _items_batch(self, fd: int, key_size: int, value_size: int) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        token_in, token_out = _Buf(max(key_size, 8)), _Buf(max(key_size, 8))
        first = True
        while True:
            kb, vb = _Buf(key_size * CHUNK), _Buf(value_size * CHUNK)
            attr = struct.pack("<QQQQIIQQ", 0 if first else token_in.addr, token_out.addr,
                               kb.addr, vb.addr, CHUNK, fd, 0, 0)
            last = False
            try:
                _, raw = self._call(BPF_MAP_LOOKUP_BATCH, attr)
            except BpfError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                raw, last = exc.attr, True  # type: ignore[attr-defined]
            count = struct.unpack_from("<I", raw, 32)[0]
            keys, vals = kb.raw, vb.raw
            out.extend((keys[i * key_size:(i + 1) * key_size],
                        vals[i * value_size:(i + 1) * value_size]) for i in range(count))
            if last:
                return out
            ctypes.memmove(token_in.addr, token_out.addr, max(key_size, 8))
            first = False


def bpf_syscall_works() -> str | None:
    """None if bpf() is callable here, else why not (EPERM without CAP_BPF, ENOSYS...)."""
    io = KernelMapIO()
    try:
        io.open("/nonexistent-testbed-probe")
    except BpfError as exc:
        if exc.errno in (errno.ENOENT, errno.EINVAL):
            return None
        return f"bpf() syscall fails: {os.strerror(exc.errno)}"
    return None
