"""CNI error type and the spec's well-known error codes (shared by plugin and invoker)."""

from __future__ import annotations

# Well-known error codes (CNI spec 1.1.0, section 5 "Error").
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
NOT_AVAILABLE_LIMITED = 51
# Plugin-specific: ADD for an attachment whose interface already exists (the spec
# requires an error but defines no code for it).
ATTACHMENT_EXISTS = 100
# Plugin-specific catch-all (same value libcni's skel uses for unexpected errors).
INTERNAL = 999


class CniError(Exception):
    """A CNI error result: ``{"cniVersion","code","msg","details"}``.

    Raised by the plugin internals (and turned into the error JSON on stdout) and by
    :class:`testbed.cni.invoke.CniInvoker` when a plugin fails; on the invoker side
    ``plugin`` names the failing plugin type and ``stdout``/``stderr`` carry its output.
    """

    def __init__(
        self,
        code: int,
        msg: str,
        details: str = "",
        plugin: str | None = None,
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        super().__init__(code, msg, details)
        self.code = code
        self.msg = msg
        self.details = details
        self.plugin = plugin
        self.stdout = stdout
        self.stderr = stderr

    def __str__(self) -> str:
        who = f"{self.plugin}: " if self.plugin else ""
        tail = f" ({self.details})" if self.details else ""
        return f"{who}CNI error {self.code}: {self.msg}{tail}"

    def to_dict(self, cni_version: str) -> dict:
        """Return the spec's error structure for ``cni_version``."""
        return {
            "cniVersion": cni_version,
            "code": self.code,
            "msg": self.msg,
            "details": self.details,
        }
