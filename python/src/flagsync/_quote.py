"""Go's %q for the names that appear in problem messages, so both readers print the
same lines."""

from __future__ import annotations

__all__ = ["go_quote"]

_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def go_quote(v: str) -> str:
    """Go's %q (strconv.Quote), so problem messages read the same from both readers:
    printable characters as they are, others escaped (\\x, \\u or \\U)."""
    if v.isprintable() and '"' not in v and "\\" not in v:
        return '"' + v + '"'
    out = ['"']
    for c in v:
        esc = _GO_ESCAPES.get(c)
        if esc is not None:
            out.append(esc)
        elif c.isprintable():
            out.append(c)
        elif c < " " or c == "\x7f":
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    out.append('"')
    return "".join(out)
