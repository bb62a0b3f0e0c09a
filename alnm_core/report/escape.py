"""The one way text from outside reaches the report: always as text, never as markup.

Anything that comes from a cohort manifest, a DICOM header, a configuration, a run name or a
model bundle may hold ``<script>``, an ``<iframe src="file:///...">`` or Markdown that would
change what a reader sees. Notebooks, the report header and the model card therefore build
their outputs through these helpers only:

* :func:`md` fills a trusted Markdown template (our own words) with untrusted values, each
  escaped for Markdown and HTML;
* :func:`table` renders a DataFrame as an HTML table whose every cell, header, index label and
  caption is escaped (pandas' ``Styler.to_html`` escapes nothing unless told);
* :func:`text` and :func:`md_text` escape one value for HTML or for Markdown.

Control characters (terminal escape sequences, NUL) are shown as ``\\xNN``.

Example:
    >>> text('<img src=y onerror=alert(3)>')
    '&lt;img src=y onerror=alert(3)&gt;'
    >>> md_text("**P1** <b>")
    '\\\\*\\\\*P1\\\\*\\\\* &lt;b&gt;'
"""
from __future__ import annotations

import html
import math
import re
from typing import Any, Callable, Mapping

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: characters with a meaning in Markdown (CommonMark's ASCII punctuation that can start markup)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def visible(value: Any) -> str:
    """``str(value)`` with control characters shown as ``\\xNN`` (safe for a terminal too)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(value))


def text(value: Any) -> str:
    """One value as HTML text (``&``, ``<``, ``>``, quotes escaped; control characters shown)."""
    return html.escape(visible(value), quote=True)


def md_text(value: Any) -> str:
    """One value as literal Markdown text: HTML-escaped, Markdown punctuation backslash-escaped,
    line breaks kept as spaces (a value cannot start a heading, list or table)."""
    s = html.escape(visible(value), quote=False)
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return re.sub(r"[\r\n]+", " ", s)


def md(template: str, **values: Any):
    """A Markdown output: ``template`` (trusted, our words) with ``{name}`` fields filled by
    escaped ``values``. Format specs apply to numbers (``{auc:.3f}``); text is escaped.

    Returns:
        ``IPython.display.Markdown``.
    """
    from IPython.display import Markdown

    return Markdown(md_string(template, **values))


class Safe(str):
    """Markdown built by this module from escaped parts (passed through :func:`md` as it is)."""


def md_string(template: str, **values: Any) -> str:
    """:func:`md` as a string (for the model card and the report header); a :class:`Safe`
    value (already escaped pieces joined by our code) is inserted as it is."""
    if not values:
        return Safe(template)
    safe = {k: v if isinstance(v, Safe) or (isinstance(v, (int, float)) and not isinstance(v, bool))
            else _Escaped(v) for k, v in values.items()}
    return Safe(template.format(**safe))


class _Escaped:
    """A value formatted as escaped Markdown text, whatever the format spec asks."""

    def __init__(self, value: Any):
        self.value = value

    def __format__(self, spec: str) -> str:
        v = format(self.value, spec) if spec else str(self.value)
        return md_text(v)


def fmt_number(value: Any, digits: int = 3, na: str = "—") -> str:
    """A number with ``digits`` decimals; NaN / None / inf as ``na`` (never ``nan``)."""
    if value is None:
        return na
    try:
        f = float(value)
    except (TypeError, ValueError):
        return visible(value)
    return na if not math.isfinite(f) else f"{f:.{digits}f}"


def fmt_p(p: Any, digits: int = 3) -> str:
    """A p-value as journals print it, through the study's one formatter
    (:func:`alnm_core.stats.format_p`, style ``3dp``): ``<0.001`` below 0.001, three decimals
    otherwise (never ``0.000``), more where rounding would lift a p below 0.05 to 0.05;
    missing as an em dash. ``digits`` other than 3 keeps the same rule at that precision."""
    from ..stats import format_p

    if p is None:
        return "—"
    try:
        f = float(p)
    except (TypeError, ValueError):
        return visible(p)
    if not math.isfinite(f):
        return "—"
    if digits == 3:
        return format_p(f)
    floor = 10 ** -digits
    return f"<{floor:.{digits}f}" if f < floor else f"{f:.{digits}f}"


def table(df, *, caption: str | None = None, precision: int = 3, na_rep: str = "—",
          formats: Mapping[str, str | Callable[[Any], str]] | None = None, index: bool = False,
          wide: bool = False):
    """An HTML table with every cell, header, index label and the caption escaped.

    Args:
        df: the table.
        caption: a caption (our words or data: escaped either way).
        precision: decimals of floats without a format.
        na_rep: what a missing value shows.
        formats: per column, a format string (``"{:.1%}"``) or a function returning text.
        index: show the index.
        wide: a table with many columns (printed smaller on paper).

    Returns:
        ``IPython.display.HTML``.
    """
    from IPython.display import HTML

    return HTML(table_html(df, caption=caption, precision=precision, na_rep=na_rep, formats=formats,
                           index=index, wide=wide))


def table_html(df, *, caption: str | None = None, precision: int = 3, na_rep: str = "—",
               formats: Mapping[str, str | Callable[[Any], str]] | None = None, index: bool = False,
               wide: bool = False) -> str:
    """:func:`table` as a string."""
    import pandas as pd

    df = pd.DataFrame(df).copy()
    df.columns = [visible(c) for c in df.columns]
    sty = df.style.format(precision=precision, na_rep=na_rep, escape="html")
    for col, f in (formats or {}).items():
        if col in df.columns:
            sty = sty.format(f if callable(f) else (lambda v, f=f: na_rep if _missing(v) else f.format(v)),
                             subset=[col], escape="html", na_rep=na_rep)
    sty = sty.format_index(escape="html", axis=0).format_index(escape="html", axis=1)
    if not index:
        sty = sty.hide(axis="index")
    if caption:
        sty = sty.set_caption(text(caption)).set_table_styles(
            [{"selector": "caption", "props": "font-weight:bold;text-align:left"}])
    cls = "alnm-table alnm-wide" if wide else "alnm-table"
    return sty.set_table_attributes(f'class="{cls}"').to_html()


def details(summary: str, df, **table_kw):
    """A table folded under a summary line on screen (``<details>``), left out on paper (the
    print stylesheet hides it and names the CSV instead)."""
    from IPython.display import HTML

    return HTML(f'<details class="alnm-appendix"><summary>{text(summary)}</summary>'
                f'{table_html(df, **table_kw)}</details>')


def _missing(v: Any) -> bool:
    try:
        return v is None or (isinstance(v, float) and math.isnan(v))
    except TypeError:
        return False
