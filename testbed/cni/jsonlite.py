"""Minimal JSON ``loads``/``dumps`` on top of the C accelerator ``_json``.

``import json`` drags in ``re``, ``enum`` and friends (~10 ms on a small VM), which is a
large share of a plugin exec; the C scanner/encoder give the same results without them.
Falls back to :mod:`json` where ``_json`` is unavailable.
"""

from __future__ import annotations

try:
    import _json
except ImportError:  # pragma: no cover - non-CPython
    _json = None


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))


_WS = " \t\n\r"


class JsonError(ValueError):
    """Input is not a single valid JSON document."""


def loads(data: str | bytes) -> object:
    """Parse one JSON document (bytes are decoded as UTF-8); raise :class:`JsonError`."""
    if isinstance(data, bytes | bytearray):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonError(f"invalid UTF-8: {exc}") from None
    if _json is None:  # pragma: no cover
        import json

        try:
            return json.loads(data)
        except ValueError as exc:
            raise JsonError(str(exc)) from None
    text = data.strip(_WS)
    if not text:
        raise JsonError("empty input")
    scan = _json.make_scanner(_ScanContext)
    try:
        obj, end = scan(text, 0)
    except StopIteration as exc:
        raise JsonError(f"Expecting value: char {exc.value}") from None
    except (ValueError, SystemError):
        # The C scanner reports errors via json.decoder.JSONDecodeError, which it only
        # finds if json.decoder is already imported; let the stdlib produce the message.
        _reraise(text)
    if end != len(text):
        raise JsonError(f"Extra data: char {end}")
    return obj


def _reraise(text: str) -> None:
    import json

    try:
        json.loads(text)
    except ValueError as exc:
        raise JsonError(str(exc)) from None
    raise JsonError("invalid JSON")  # pragma: no cover - scanner and stdlib disagree


def dumps(obj: object) -> str:
    """Serialise dicts/lists/str/int/float/bool/None compactly (ASCII-safe)."""
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(obj, separators=(",", ":"))
    return "".join(_encode(obj))


def _encode(obj: object) -> list[str]:
    out: list[str] = []
    _enc(obj, out)
    return out


def _enc(obj: object, out: list[str]) -> None:
    esc = _json.encode_basestring_ascii
    if isinstance(obj, str):
        out.append(esc(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise ValueError("out of range float values are not JSON compliant")
        out.append(float.__repr__(obj))
    elif isinstance(obj, dict):
        out.append("{")
        first = True
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            if not first:
                out.append(",")
            first = False
            out.append(esc(key))
            out.append(":")
            _enc(value, out)
        out.append("}")
    elif isinstance(obj, list | tuple):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _enc(value, out)
        out.append("]")
    else:
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def loads_many(text: str) -> list[object]:
    """Parse a stream of concatenated JSON documents (e.g. ``ip -j -batch`` output)."""
    if _json is None:  # pragma: no cover
        import json

        dec, out, pos = json.JSONDecoder(), [], 0
        while True:
            while pos < len(text) and text[pos] in _WS:
                pos += 1
            if pos >= len(text):
                return out
            obj, pos = dec.raw_decode(text, pos)
            out.append(obj)
    scan = _json.make_scanner(_ScanContext)
    out: list[object] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in _WS:
            pos += 1
        if pos >= len(text):
            return out
        try:
            obj, pos = scan(text, pos)
        except StopIteration as exc:
            raise JsonError(f"Expecting value: char {exc.value}") from None
        except (ValueError, SystemError):
            _reraise(text[pos:])
        out.append(obj)
