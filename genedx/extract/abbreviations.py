"""Abbreviations defined in the text: "long form (SF)" pairs, by the Schwartz & Hearst (2003)
algorithm ("A simple algorithm for identifying abbreviation definitions in biomedical text").

Hand-written: scispaCy's AbbreviationDetector implements the same algorithm but needs spaCy and a
model download; the algorithm itself is 40 lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PAREN = re.compile(r"\(([^()]{1,12})\)")
_SENTENCE_START = re.compile(r"[.;:!?\n]\s")


@dataclass(frozen=True)
class Abbreviation:
    short: str
    long_start: int   # character span of the long form in the text
    long_end: int


def _valid_short(sf: str) -> bool:
    sf = sf.strip()
    return (2 <= len(sf) <= 10 and len(sf.split()) <= 2 and sf[0].isalnum()
            and any(c.isalpha() for c in sf) and any(c.isupper() for c in sf))


def _best_long_form(sf: str, candidate: str) -> int | None:
    """Start (in ``candidate``) of the shortest suffix whose characters spell ``sf`` right to left,
    the first character of ``sf`` starting a word; None when there is none."""
    s, lf = sf.lower(), candidate.lower()
    si, li = len(s) - 1, len(lf) - 1
    while si >= 0:
        c = s[si]
        if not c.isalnum():
            si -= 1
            continue
        while li >= 0 and (lf[li] != c or (si == 0 and li > 0 and lf[li - 1].isalnum())):
            li -= 1
        if li < 0:
            return None
        li -= 1
        si -= 1
    start = li + 1
    return start


def find_abbreviations(text: str) -> list[Abbreviation]:
    """Every "long form (SF)" definition in ``text``.

    >>> t = "Brachydactyly type A1 (BDA1) is rare. BDA1 patients"
    >>> [(a.short, t[a.long_start:a.long_end]) for a in find_abbreviations(t)]
    [('BDA1', 'Brachydactyly type A1')]
    """
    out = []
    for m in _PAREN.finditer(text):
        sf = m.group(1).strip()
        if not _valid_short(sf):
            continue
        # the candidate long form: at most min(|SF| + 5, 2 |SF|) words before "(", same sentence
        before = text[:m.start()].rstrip()
        cut = max((b.end() for b in _SENTENCE_START.finditer(before)), default=0)
        words = list(re.finditer(r"\S+", before[cut:]))
        n = min(len(sf) + 5, 2 * len(sf))
        if not words:
            continue
        first = words[max(0, len(words) - n)].start() + cut
        candidate = text[first:len(before)]
        start = _best_long_form(sf, candidate)
        if start is None:
            continue
        long_form = candidate[start:]
        if len(long_form) <= len(sf) or sf.lower() in long_form.lower().split():
            continue
        out.append(Abbreviation(sf, first + start, first + len(candidate)))
    return out
