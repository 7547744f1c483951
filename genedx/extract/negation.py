"""Negation of term mentions, after NegEx (Chapman et al. 2001) in a reduced form.

A pre-negation cue ("no", "denies", "without", "negative for", ...) negates the mentions after it up
to the end of its clause (sentence punctuation, a termination word such as "but", or "and" + a
verb); a post-negation cue ("was absent", "not observed", "ruled out") negates the mentions before
it in its clause. Tokens inside a matched term are never cues ("Absent speech", "absence of the
corpus callosum" and "absence seizures" are findings), and a cue glued to the next word by a hyphen
("non-VIII nerve tumors") only qualifies that word, so it negates nothing.

Hand-written rather than negspaCy: negspaCy needs a spaCy pipeline with a model, and its NegEx
scope runs to the end of the sentence; this runs on the extractor's own tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genedx.extract.tokens import Token

_CLAUSE_BREAK = re.compile(r"[.;:!?\n()\[\]]")

PRE_NEGATION = [
    "no", "not", "denies", "denied", "deny", "without", "negative for", "absence of", "absent",
    "free of", "no evidence of", "no sign of", "no signs of", "no history of", "never", "lacks",
    "lack of", "lacked", "lacking", "neither", "nor", "rules out", "ruled out", "excluded", "none",
    "did not have", "does not have", "do not have", "did not show", "failed to show",
]
POST_NEGATION = [
    "absent", "was absent", "were absent", "not present", "not observed", "not seen", "not noted",
    "not detected", "not found", "ruled out", "was excluded", "were excluded", "negative", "unremarkable",
]
# Words that close a pre-negation scope inside a sentence ("no seizures but marked hypotonia").
TERMINATORS = frozenset({"but", "however", "although", "though", "except", "yet", "whereas", "while", "apart",
                         "aside", "which", "who", "besides", "whose", "nevertheless", "instead"})
# "and" + one of these starts a new assertion ("no seizures and has hypotonia").
_ASSERTING_VERBS = frozenset({"has", "had", "have", "shows", "showed", "shown", "presents", "presented",
                              "exhibits", "exhibited", "displays", "displayed", "developed", "develops",
                              "demonstrates", "demonstrated", "is", "was", "were", "are", "with"})
# A cue word that does not negate here ("not only", "no increase in", "not necessarily").
_PSEUDO = frozenset({("not", "only"), ("no", "change"), ("no", "increase"), ("not", "necessarily"),
                     ("no", "longer"), ("not", "uncommon"), ("not", "unusual"), ("no", "doubt"),
                     # comparisons negate the difference, not the findings compared ("no difference
                     # in survival between cells from basal cell naevus syndrome patients and ...")
                     ("no", "difference"), ("no", "differences"),
                     ("no", "correlation"), ("no", "association"), ("no", "relation"),
                     ("not", "correlate"), ("not", "correlated"), ("not", "differ")})


@dataclass(frozen=True)
class Cue:
    start: int   # token positions
    end: int
    text: str


def clause_ids(text: str, toks: list[Token]) -> list[int]:
    """A clause number per token: punctuation, termination words and "and <verb>" start a new one."""
    ids, cur = [], 0
    for k, tok in enumerate(toks):
        if k:
            gap = text[toks[k - 1].end:tok.start]
            if _CLAUSE_BREAK.search(gap) or tok.low in TERMINATORS or (
                    tok.low in _ASSERTING_VERBS and toks[k - 1].low == "and"):
                cur += 1
        ids.append(cur)
    return ids


def _keyed(cues: list[str]) -> dict[str, list[tuple[str, ...]]]:
    """Cues by their first word, longest first."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for cue in sorted((tuple(c.split()) for c in cues), key=len, reverse=True):
        out.setdefault(cue[0], []).append(cue)
    return out


_PRE, _POST = _keyed(PRE_NEGATION), _keyed(POST_NEGATION)


def find_cues(text: str, toks: list[Token], covered: set[int], post: bool) -> list[Cue]:
    """Negation cues (pre or post) outside matched terms."""
    lows = [t.low for t in toks]
    spans: list[Cue] = []
    k = 0
    while k < len(lows):
        for cue in (_POST if post else _PRE).get(lows[k], ()):
            n = len(cue)
            if tuple(lows[k:k + n]) == cue and not any(p in covered for p in range(k, k + n)):
                pseudo = n == 1 and k + 1 < len(lows) and (lows[k], lows[k + 1]) in _PSEUDO
                # "non-VIII", "no-reflow": a hyphen binds the cue to the next word only
                hyphenated = k + n < len(toks) and text[toks[k + n - 1].end:toks[k + n].start] == "-"
                if not pseudo and not hyphenated:
                    spans.append(Cue(k, k + n, " ".join(cue)))
                k += n
                break
        else:
            k += 1
    return spans


def negating_cue(a: int, b: int, clause: list[int], pre: list[Cue], post: list[Cue]) -> str | None:
    """The cue that negates the mention at tokens [a, b), or None."""
    cue = None
    for c in pre:  # the nearest cue before the mention, same clause
        if c.end <= a and clause[c.start] == clause[a]:
            cue = c.text
    if cue is None:
        for c in post:  # a cue after the mention, same clause
            if c.start >= b and clause[c.start] == clause[b - 1]:
                return c.text
    return cue
