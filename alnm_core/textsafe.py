"""Text from outside shown on a terminal as text: control characters escaped.

A manifest value, a file name, a DICOM SeriesDescription or a message quoting them may hold
control characters: an escape sequence (``ESC [ 2 J`` clears the screen, ``ESC ] 8`` makes a
link, some terminals answer queries into the input), a carriage return that overwrites the line
before it, or a Unicode bidirectional override that shows text in another order than it is
stored. :func:`printable` writes each of them as a visible escape (``\\x1b``, ``\\r``,
``\\u202e``), so what the terminal shows is what the file holds.

Example:
    >>> printable("P001\\x1b[2J")
    'P001\\\\x1b[2J'
    >>> print(printable("line 1\\nline 2"))
    line 1
    line 2
"""
from __future__ import annotations

import unicodedata

#: Unicode format characters that reorder or hide text (bidi embeddings, overrides, isolates,
#: marks; zero-width characters; the byte order mark)
_INVISIBLE = frozenset("\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                       "\u2060\u2066\u2067\u2068\u2069\ufeff")


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return {"\r": "\\r", "\t": "\\t", "\n": "\\n"}.get(ch, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    return ch in _INVISIBLE or unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def printable(text: object, *, keep_newlines: bool = True) -> str:
    """``text`` with every control character written as an escape.

    Args:
        text: anything; ``str(text)`` is escaped.
        keep_newlines: keep ``\\n`` (a multi-line message stays multi-line); every other
            control character (C0, DEL, C1: ``ESC``, ``\\r``, ``\\t``, ``\\x9b``...), line and
            paragraph separators and bidirectional or zero-width format characters are escaped.

    Example:
        >>> printable("a\\rb\\u202ec", keep_newlines=False)
        'a\\\\rb\\\\u202ec'
    """
    s = str(text)
    if s.isprintable() and "\n" not in s:
        return s if not any(ch in _INVISIBLE for ch in s) else "".join(
            _escape(ch) if ch in _INVISIBLE else ch for ch in s)
    return "".join(ch if (ch == "\n" and keep_newlines) or not _unsafe(ch) else _escape(ch)
                   for ch in s)
