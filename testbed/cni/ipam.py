"""Host-local style IPAM: pure allocation over an :class:`IpamStore`.

On-disk layout of :class:`FileIpamStore` (``<dataDir>/<network name>/``):

* one file per reserved IP, named by the dotted address, holding ``containerID\\nifname``;
* ``last_reserved_ip`` -- the most recently handed-out address (round-robin cursor);
* ``lock`` -- ``fcntl.flock``-ed for every read-modify-write, so concurrent plugin
  processes never hand out one address twice.

Addresses are plain ints (see :mod:`testbed.cni.ip4`).
"""

from __future__ import annotations

import fcntl
import os

from testbed.cni import ip4
from testbed.cni.errors import TRY_AGAIN_LATER, CniError

# typing costs ~15 ms of plugin start-up: give checkers a real Protocol, runtime a plain base.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object

LAST_RESERVED = "last_reserved_ip"
LOCK = "lock"


class IpamExhausted(CniError):
    """No free address left in the range (code 11: retry once something is released)."""

    def __init__(self, details: str = "") -> None:
        super().__init__(TRY_AGAIN_LATER, "no IP addresses available in range", details)


class IpRange:
    """An allocatable range inside ``network/prefix``; never yields network, gateway or
    broadcast addresses."""

    __slots__ = ("network", "prefix", "start", "end", "gateway")

    def __init__(
        self,
        network: int,
        prefix: int,
        start: int | None = None,
        end: int | None = None,
        gateway: int | None = None,
    ) -> None:
        self.network = network
        self.prefix = prefix
        self.start = network + 1 if start is None else start
        self.end = ip4.broadcast(network, prefix) - 1 if end is None else end
        self.gateway = gateway

    @classmethod
    def from_cidr(
        cls, cidr: str, start: str | None = None, end: str | None = None, gateway: str | None = None
    ) -> IpRange:
        """Build from text (convenience for callers and tests)."""
        net, prefix = ip4.parse_cidr(cidr)

        def conv(text: str | None) -> int | None:
            return None if text is None else ip4.parse_ip(text)

        return cls(net, prefix, conv(start), conv(end), conv(gateway))

    def excluded(self) -> tuple[int, ...]:
        """Addresses never handed out."""
        return (self.network, ip4.broadcast(self.network, self.prefix), self.gateway or -1)

    def __contains__(self, ip: int) -> bool:
        return self.start <= ip <= self.end and ip not in self.excluded()

    def free_count(self, used: set[int]) -> int:
        """How many addresses are still allocatable."""
        usable = self.end - self.start + 1
        usable -= sum(1 for ip in self.excluded() if self.start <= ip <= self.end)
        return usable - sum(1 for ip in used if ip in self)


def allocate(rng: IpRange, used: set[int], last: int | None = None) -> int:
    """Pick the next free address round-robin after ``last`` (wrapping); pure.

    Raises :class:`IpamExhausted` when every allocatable address is in ``used``.
    """
    span = rng.end - rng.start + 1
    first = last + 1 if last is not None and rng.start <= last <= rng.end else rng.start
    skip = rng.excluded()
    for i in range(span):
        ip = first + i
        if ip > rng.end:
            ip -= span
        if ip not in used and ip not in skip:
            return ip
    raise IpamExhausted(
        f"range {ip4.format_ip(rng.start)}-{ip4.format_ip(rng.end)} is full ({len(used)} used)"
    )


class IpamStore(Protocol):
    """Storage behind the allocator (structural protocol)."""

    def lock(self):  # -> context manager
        """Exclusive lock held around every read-modify-write."""
        ...

    def reserved(self) -> set[int]:
        """All reserved addresses (cheap: no owner lookups)."""
        ...

    def owners(self) -> dict[int, tuple[str, str]]:
        """Reserved address -> ``(containerID, ifname)``."""
        ...

    def owner(self, ip: int) -> tuple[str, str] | None:
        """Owner of one address, or None if free."""
        ...

    def reserve(self, ip: int, container_id: str, ifname: str) -> bool:
        """Record a reservation; False if the address was already taken."""
        ...

    def release(self, ip: int) -> None:
        """Drop a reservation (no error if absent)."""
        ...

    def last_reserved(self) -> int | None:
        """The round-robin cursor."""
        ...

    def set_last_reserved(self, ip: int) -> None:
        """Move the round-robin cursor."""
        ...

    def writable(self) -> bool:
        """Whether reservations can currently be recorded."""
        ...


def assign(
    store: IpamStore, rng: IpRange, container_id: str, ifname: str, reuse: bool = False
) -> tuple[int, bool]:
    """Reserve an address for the attachment; returns ``(ip, newly_reserved)``.

    With ``reuse`` an attachment already holding an address in ``rng`` gets it back
    instead of a second one; that needs every owner read, so the plugin's ADD (which
    the spec forbids repeating) skips it and DEL releases all of an attachment's
    addresses instead.
    """
    with store.lock():
        if reuse:
            for ip, owner in store.owners().items():
                if owner == (container_id, ifname) and ip in rng:
                    return ip, False
        used = store.reserved()
        while True:
            ip = allocate(rng, used, store.last_reserved())
            if store.reserve(ip, container_id, ifname):
                store.set_last_reserved(ip)
                return ip, True
            used.add(ip)  # taken behind our back (cannot happen under the lock)


def release(store: IpamStore, container_id: str, ifname: str) -> list[int]:
    """Release every address held by the attachment; idempotent."""
    with store.lock():
        mine = [ip for ip, o in store.owners().items() if o == (container_id, ifname)]
        for ip in mine:
            store.release(ip)
    return mine


def release_ip(store: IpamStore, ip: int, container_id: str, ifname: str) -> bool:
    """Release ``ip`` only if the attachment owns it (rollback path)."""
    with store.lock():
        if store.owner(ip) != (container_id, ifname):
            return False
        store.release(ip)
        return True


def gc(store: IpamStore, valid: set[tuple[str, str]]) -> list[int]:
    """Release every reservation whose owner is not in ``valid``."""
    with store.lock():
        stale = [ip for ip, owner in store.owners().items() if owner not in valid]
        for ip in stale:
            store.release(ip)
    return stale


class _ThreadLock:
    def __init__(self, lock: object) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class MemoryIpamStore:
    """In-memory :class:`IpamStore` for tests (thread-safe)."""

    def __init__(self, writable: bool = True) -> None:
        import threading

        self._lock = threading.RLock()
        self.entries: dict[int, tuple[str, str]] = {}
        self.last: int | None = None
        self._writable = writable

    def lock(self) -> _ThreadLock:
        """See :meth:`IpamStore.lock`."""
        return _ThreadLock(self._lock)

    def reserved(self) -> set[int]:
        """See :meth:`IpamStore.reserved`."""
        return set(self.entries)

    def owners(self) -> dict[int, tuple[str, str]]:
        """See :meth:`IpamStore.owners`."""
        return dict(self.entries)

    def owner(self, ip: int) -> tuple[str, str] | None:
        """See :meth:`IpamStore.owner`."""
        return self.entries.get(ip)

    def reserve(self, ip: int, container_id: str, ifname: str) -> bool:
        """See :meth:`IpamStore.reserve`."""
        if ip in self.entries:
            return False
        self.entries[ip] = (container_id, ifname)
        return True

    def release(self, ip: int) -> None:
        """See :meth:`IpamStore.release`."""
        self.entries.pop(ip, None)

    def last_reserved(self) -> int | None:
        """See :meth:`IpamStore.last_reserved`."""
        return self.last

    def set_last_reserved(self, ip: int) -> None:
        """See :meth:`IpamStore.set_last_reserved`."""
        self.last = ip

    def writable(self) -> bool:
        """See :meth:`IpamStore.writable`."""
        return self._writable


class _FileLock:
    def __init__(self, path: str) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def _read(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return os.read(fd, 4096).decode("utf-8", "replace")
    finally:
        os.close(fd)


class FileIpamStore:
    """:class:`IpamStore` persisted under ``<data_dir>/<network>/`` (layout: module doc)."""

    def __init__(self, data_dir: str, network: str) -> None:
        self.dir = os.path.join(data_dir, network)

    def _ensure_dir(self) -> None:
        os.makedirs(self.dir, mode=0o755, exist_ok=True)

    def lock(self) -> _FileLock:
        """``flock`` on ``<dir>/lock`` (creates the directory)."""
        self._ensure_dir()
        return _FileLock(os.path.join(self.dir, LOCK))

    def reserved(self) -> set[int]:
        """Addresses from the file names (no reads)."""
        out = set()
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return out
        for name in names:
            if name[0].isdigit():
                try:
                    out.add(ip4.parse_ip(name))
                except ValueError:
                    continue
        return out

    def owners(self) -> dict[int, tuple[str, str]]:
        """Reads every reservation file."""
        out = {}
        for ip in self.reserved():
            owner = self.owner(ip)
            if owner is not None:
                out[ip] = owner
        return out

    def owner(self, ip: int) -> tuple[str, str] | None:
        """Reads one reservation file."""
        text = _read(os.path.join(self.dir, ip4.format_ip(ip)))
        if text is None:
            return None
        cid, _, ifname = text.strip().partition("\n")
        return cid.strip(), ifname.strip()

    def reserve(self, ip: int, container_id: str, ifname: str) -> bool:
        """``O_EXCL`` create of the address file."""
        self._ensure_dir()
        path = os.path.join(self.dir, ip4.format_ip(ip))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, f"{container_id}\n{ifname}".encode())
        finally:
            os.close(fd)
        return True

    def release(self, ip: int) -> None:
        """Unlink the address file."""
        try:
            os.unlink(os.path.join(self.dir, ip4.format_ip(ip)))
        except FileNotFoundError:
            return

    def last_reserved(self) -> int | None:
        """Content of ``last_reserved_ip``."""
        text = _read(os.path.join(self.dir, LAST_RESERVED))
        try:
            return None if text is None else ip4.parse_ip(text.strip())
        except ValueError:
            return None

    def set_last_reserved(self, ip: int) -> None:
        """Atomically replace ``last_reserved_ip``."""
        path = os.path.join(self.dir, LAST_RESERVED)
        tmp = f"{path}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, ip4.format_ip(ip).encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def writable(self) -> bool:
        """The directory can be created and written."""
        try:
            self._ensure_dir()
        except OSError:
            return False
        return os.access(self.dir, os.W_OK | os.X_OK)
