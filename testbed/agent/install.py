"""Image-build step: put node files where a container runtime expects them (CNI binary dir)."""

from __future__ import annotations

import os
import shutil
from importlib import resources

CNI_BIN_DIR = "/opt/cni/bin"
REFERENCE_PLUGINS = "/usr/lib/cni"


def install(root: str = "/") -> None:
    """Install the testbed-cni executable and expose Debian's reference plugins beside it."""
    bin_dir = os.path.join(root, CNI_BIN_DIR.lstrip("/"))
    os.makedirs(bin_dir, exist_ok=True)
    target = os.path.join(bin_dir, "testbed-cni")
    with resources.as_file(resources.files("testbed.cni") / "testbed-cni") as src:
        shutil.copy(src, target)
    os.chmod(target, 0o755)
    ref = os.path.join(root, REFERENCE_PLUGINS.lstrip("/"))
    if os.path.isdir(ref):
        for name in os.listdir(ref):
            link = os.path.join(bin_dir, name)
            if not os.path.exists(link):
                os.symlink(os.path.join(REFERENCE_PLUGINS, name), link)


if __name__ == "__main__":
    install()
