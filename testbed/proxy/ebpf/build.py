"""Compile the BPF C programs in `bpf/` to objects.

Run at image build (`python3 -m testbed.proxy.ebpf.build`, writes next to the sources in the
installed package) and lazily by the loader when objects are missing or stale (then into
`/var/lib/testbed/ebpf` if the package directory is read-only).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

SRC_DIR = Path(__file__).resolve().parent / "bpf"
FALLBACK_DIR = Path("/var/lib/testbed/ebpf")
OBJECTS = ("sock_lb", "nodeport")
CFLAGS = ("-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-Wall")


def compile_cmd(name: str, out_dir: Path, src_dir: Path = SRC_DIR) -> list[str]:
    """The clang command line for one object (pure)."""
    return ["clang", *CFLAGS, "-c", str(src_dir / f"{name}.c"), "-o", str(out_dir / f"{name}.o")]


def _fresh(obj: Path, src_dir: Path) -> bool:
    if not obj.exists():
        return False
    newest = max(p.stat().st_mtime for p in src_dir.glob("*.[ch]"))
    return obj.stat().st_mtime >= newest


def find_objects(src_dir: Path = SRC_DIR, fallback: Path = FALLBACK_DIR) -> dict[str, Path] | None:
    """Up-to-date objects from the package dir or the fallback dir, else None."""
    for d in (src_dir, fallback):
        objs = {n: d / f"{n}.o" for n in OBJECTS}
        if all(_fresh(p, src_dir) for p in objs.values()):
            return objs
    return None


def build(out_dir: Path | None = None, src_dir: Path = SRC_DIR) -> dict[str, Path]:
    """Compile every object into out_dir (default: the sources' dir, else the fallback)."""
    if out_dir is None:
        out_dir = src_dir if os.access(src_dir, os.W_OK) else FALLBACK_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in OBJECTS:
        cmd = compile_cmd(name, out_dir, src_dir)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()}")
        out[name] = out_dir / f"{name}.o"
    return out


def ensure_objects() -> dict[str, Path]:
    """Objects to load: prebuilt if fresh, else compiled now."""
    return find_objects() or build()


def main(argv: list[str] | None = None) -> int:
    """CLI: compile the objects (used by the node image build)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="output directory (default: next to sources)")
    args = parser.parse_args(argv)
    for name, path in build(args.out).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
