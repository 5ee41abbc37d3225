"""Node image: a Debian bookworm base (pulled, or built with debootstrap) plus the node layers.

Images are tagged by a content hash of their inputs, so a build is skipped when nothing changed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from testbed.runtime.base import RuntimeFailure

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NODE_IMAGE_DIR = PROJECT_ROOT / "images" / "node"
BUILD_DIR = PROJECT_ROOT / ".build"
BASE_REPO = "testbed-base"
NODE_REPO = "testbed-node"
BASE_RECIPE = "debian bookworm minbase v1"
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def _hash_files(paths: list[Path], root: Path, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def source_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """Every input of the node image: its build files, the package source and metadata."""
    files = [p for p in (root / "images" / "node").rglob("*") if p.is_file()]
    files += [
        p for p in (root / "testbed").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".o")
    ]
    files.append(root / "pyproject.toml")
    return files


def base_tag() -> str:
    return f"{BASE_REPO}:{hashlib.sha256(BASE_RECIPE.encode()).hexdigest()[:12]}"


def node_tag(root: Path = PROJECT_ROOT) -> str:
    """The node image tag for the current sources (content hash of all inputs)."""
    return f"{NODE_REPO}:{_hash_files(source_files(root), root, base_tag())}"


def debian_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str | None:
    """The Debian mirror this machine's apt uses (deb822 or one-line format), if any."""
    for path in sources:
        if path.exists():
            found = parse_debian_mirror(path.read_text())
            if found:
                return found
    return None


def parse_debian_mirror(text: str) -> str | None:
    """Pick the main Debian archive URI out of an apt sources file (pure)."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            continue
        words = line.split()
        if line.startswith("URIs:"):
            uris = words[1:]
        elif words and words[0] == "deb":
            uris = [w for w in words[1:] if "://" in w][:1]
        else:
            continue
        for uri in uris:
            if uri.rstrip("/").endswith("/debian"):
                return uri
    return None


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeFailure(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")


def project_requirements(root: Path = PROJECT_ROOT) -> list[str]:
    """Runtime dependencies from pyproject.toml."""
    import tomllib

    data = tomllib.loads((root / "pyproject.toml").read_text())
    return list(data["project"]["dependencies"])


class ImageBuilder:
    """Builds the base and node images through a runtime that can pull/import/build."""

    def __init__(self, runtime, log: Callable[[str], None] = lambda _line: None) -> None:
        self.runtime = runtime
        self.log = log

    def ensure_base(self, force: bool = False) -> str:
        tag = base_tag()
        if not force and self.runtime.image_exists(tag):
            return tag
        repo, version = tag.split(":")
        if self.runtime.pull("debian", "bookworm-slim"):
            self.log("pulled debian:bookworm-slim")
            self.runtime.tag("debian:bookworm-slim", repo, version)
            return tag
        self.log("no registry reachable: building the base with debootstrap")
        if not shutil.which("debootstrap"):
            raise RuntimeFailure("debootstrap is not installed (apt-get install debootstrap)")
        with tempfile.TemporaryDirectory(prefix="testbed-rootfs-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            mirror = debian_mirror()
            cmd = ["debootstrap", "--variant=minbase", "bookworm", str(rootfs)]
            cmd += [mirror] if mirror else []
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                output = proc.stdout[-2000:] + proc.stderr[-2000:]
                raise RuntimeFailure(f"debootstrap failed:\n{output}")
            tarball = Path(tmp) / "rootfs.tar"
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
            self.runtime.import_image(str(tarball), repo, version)
        return tag

    def _wheels(self, context: Path) -> None:
        reqs = project_requirements()
        key = hashlib.sha256("\n".join(reqs).encode()).hexdigest()[:12]
        cache = BUILD_DIR / "wheels" / key
        if not (cache / "requirements.txt").exists():
            self.log("building dependency wheels")
            tmp = cache.with_suffix(".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            _pip("wheel", "--wheel-dir", str(tmp), *reqs)
            (tmp / "requirements.txt").write_text("\n".join(reqs) + "\n")
            shutil.rmtree(cache, ignore_errors=True)
            tmp.rename(cache)
        shutil.copytree(cache, context / "wheels" / "deps")
        own = context / "wheels" / "testbed"
        own.mkdir(parents=True)
        _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(own),
             str(PROJECT_ROOT))

    def ensure_node(self, force: bool = False) -> str:
        """Build (if needed) and return the node image tag for the current sources."""
        tag = node_tag()
        if not force and self.runtime.image_exists(tag):
            return tag
        base = self.ensure_base(force=False)
        with tempfile.TemporaryDirectory(prefix="testbed-ctx-") as tmp:
            context = Path(tmp)
            for item in NODE_IMAGE_DIR.iterdir():
                if item.is_file():
                    shutil.copy(item, context / item.name)
            self._wheels(context)
            self.log(f"building {tag}")
            self.runtime.build(str(context), tag, {"BASE_IMAGE": base}, self.log)
        return tag
