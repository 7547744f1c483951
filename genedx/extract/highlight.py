"""A note as HTML with its recognised mentions highlighted (for the app's Free text tab).

Mentions may nest ("septal defect" inside "atrial septal defect") or overlap, so the text is cut at
every mention boundary and each piece takes the class of the innermost mention covering it; its
tooltip names every mention covering it, outermost first. The note's text is HTML-escaped and its
line breaks kept, so the result is safe to hand to ``st.html`` / ``st.markdown(unsafe_allow_html=True)``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

# class -> inline style (inline, so that the colours survive HTML sanitisers that drop <style>)
STYLES = {
    "dx-present": "background:#c3f0ca;color:#0b3d17;border-radius:2px",
    "dx-absent": "background:#ffd6d6;color:#5c0b0b;border-radius:2px",
    "dx-dropped": "background:#ececec;color:#6b6b6b;text-decoration:line-through;border-radius:2px",
}
NESTED_STYLE = "border-bottom:2px dotted #555"
LEGEND = {"dx-present": "present", "dx-absent": "absent", "dx-dropped": "dropped (not added)"}


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    cls: str     # one of STYLES
    title: str   # tooltip text


def _piece(text: str, covering: list[Span]) -> str:
    body = html.escape(text).replace("\n", "<br>")
    if not covering:
        return body
    inner = min(covering, key=lambda s: (s.end - s.start, -s.start))
    style = STYLES.get(inner.cls, "")
    classes = f"dx-hl {inner.cls}"
    if len(covering) > 1:
        classes += " dx-nested"
        style += ";" + NESTED_STYLE
    outer_first = sorted(covering, key=lambda s: (-(s.end - s.start), s.start))
    title = html.escape(" | ".join(dict.fromkeys(s.title for s in outer_first)), quote=True)
    return f'<span class="{classes}" style="{style}" title="{title}">{body}</span>'


def highlight_html(text: str, spans: list[Span]) -> str:
    """``text`` as one HTML ``<div>`` with ``spans`` highlighted.

    >>> highlight_html("No <b>seizures</b>.", [Span(6, 14, "dx-absent", "Seizure")]).count('class="dx-hl dx-absent"')
    1
    >>> "&lt;b&gt;" in highlight_html("No <b>seizures</b>.", [])
    True
    """
    spans = [s for s in spans if 0 <= s.start < s.end <= len(text)]
    cuts = sorted({0, len(text), *(s.start for s in spans), *(s.end for s in spans)})
    out = []
    for p, q in zip(cuts, cuts[1:]):
        out.append(_piece(text[p:q], [s for s in spans if s.start <= p and q <= s.end]))
    return f'<div class="dx-note" style="line-height:1.7;white-space:normal">{"".join(out)}</div>'


def legend_html() -> str:
    """The colour legend, in the same classes and styles as the highlighted note."""
    items = " ".join(f'<span class="dx-hl {c}" style="{STYLES[c]}">{html.escape(name)}</span>'
                     for c, name in LEGEND.items())
    nested = f'<span style="{NESTED_STYLE}">nested mention</span>'
    return f'<div class="dx-legend" style="font-size:0.85em">Legend: {items} {nested}</div>'
