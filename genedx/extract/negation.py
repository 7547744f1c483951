"""Negation of term mentions, after NegEx (Chapman et al. 2001) in a reduced form.

A pre-negation cue ("no", "denies", "without", "negative for", ...) negates the mentions after it up
to the end of its clause (sentence punctuation, a tab, a termination word such as "but", or "and" +
a verb); a post-negation cue ("was absent", "not observed", "ruled out") negates the mentions before
it in its clause. As in NegEx, a cue reaches a mention only across a few words (5) that are not
themselves part of a mention, so lists of findings stay in scope but a cue in a long clause does
not negate a finding far away ("no variant was found in the genes known to cause microcephaly").
"non-" and "-free" negate the one word they are hyphenated to ("non-dysmorphic", "seizure-free");
"not" negates its own predicate, up to the next copula ("who were not sedated were examined for").
Not cues: "with or without", "whether or not", "no ... difference / correlation", a post-cue
hyphenated to the word before ("dominant-negative"), and "absent" before a noun ("thrombocytopenia
with absent radii"), which negates only its own noun phrase. Tokens inside a matched term are
never cues ("Absent speech", "absence of the corpus callosum" and "absence seizures" are findings),
and a cue glued to the next word by a hyphen ("non-VIII nerve tumors") only qualifies that word, so
it negates nothing.

Hand-written rather than negspaCy: negspaCy needs a spaCy pipeline with a model, and its NegEx
scope runs to the end of the sentence; this runs on the extractor's own tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genedx.extract.tokens import Token

_CLAUSE_BREAK = re.compile(r"[.;:!?\n\t()\[\]]")  # a tab separates table cells

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


# NegEx's window: a cue reaches a mention across at most this many words that are not part of
# another mention (lists of findings do not count: "no seizures, ataxia, hypotonia or scoliosis").
MAX_SCOPE_WORDS = 5
# Words that make a following "no" / "not" about a comparison, not about the findings compared,
# even with words between ("no clear genotype-phenotype correlation", "no significant difference").
_COMPARISON = frozenset({"difference", "differences", "correlation", "correlations", "association",
                         "associations", "relation", "relationship", "change", "changes"})
_ATTRIBUTIVE_GAP = re.compile(r"[ /]*")
_COPULAS = frozenset({"is", "are", "was", "were"})
_ITEM_BREAK = re.compile(r"[,;.:!?()\[\]\n\t]")


@dataclass(frozen=True)
class Cue:
    start: int   # token positions
    end: int
    text: str
    # a pre-cue's scope ends before this token; a post-cue reaches only mentions ending here
    # (None: the clause end)
    reach: int | None = None


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


def _attributive(text: str, toks: list[Token], k: int) -> bool:
    """True when the word at ``k`` ("absent") directly qualifies the next word ("absent radii",
    "absent/hypoplastic thumbs"): it is then part of a noun phrase, not a statement about the
    findings around it."""
    return (k + 1 < len(toks) and not toks[k + 1].filler
            and _ATTRIBUTIVE_GAP.fullmatch(text[toks[k].end:toks[k + 1].start]) is not None)


def _phrase_end(text: str, toks: list[Token], k: int) -> int:
    """The first token after ``k`` that starts a new list item or clause (after a comma or other
    punctuation)."""
    j = k + 1
    while j < len(toks) and not _ITEM_BREAK.search(text[toks[j - 1].end:toks[j].start]):
        j += 1
    return j


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
                # "no clear genotype-phenotype correlation", "no significant differences"
                pseudo |= lows[k] in ("no", "not") and any(w in _COMPARISON for w in lows[k + 1:k + 5])
                # "with or without", "whether or not": a choice, not a negation
                pseudo |= k > 0 and lows[k - 1] == "or" and lows[k] in ("without", "not")
                # "non-VIII", "no-reflow": a hyphen binds the cue to the next word only;
                # "dominant-negative": a post-cue glued to the word before only qualifies it
                hyphenated = k + n < len(toks) and text[toks[k + n - 1].end:toks[k + n].start] == "-"
                if post:
                    hyphenated |= k > 0 and text[toks[k - 1].end:toks[k].start] == "-"
                reach = None
                if cue == ("absent",) and _attributive(text, toks, k):
                    # "absent radii": not a post-cue for what precedes; as a pre-cue, it covers
                    # its own noun phrase only ("absent flexion creases, overriding fingers")
                    if post:
                        k += n
                        break
                    reach = _phrase_end(text, toks, k)
                if cue == ("not",) and not post:
                    # "who were not preselected for skin lesions were examined for ...": "not"
                    # negates its own predicate; a later copula starts another one
                    reach = next((j for j in range(k + 1, len(lows)) if lows[j] in _COPULAS), None)
                if not pseudo and not hyphenated:
                    spans.append(Cue(k, k + n, " ".join(cue), reach))
                k += n
                break
        else:
            # "non-syndromic", "seizure-free": a hyphenated prefix or suffix negates the one word it
            # is glued to, so a mention that starts right after "non-" / ends right before "-free"
            if lows[k] == ("free" if post else "non") and k not in covered:
                if not post and k + 1 < len(toks) and text[toks[k].end:toks[k + 1].start] == "-":
                    spans.append(Cue(k, k + 1, "non-", reach=k + 2))
                elif post and k > 0 and text[toks[k - 1].end:toks[k].start] == "-":
                    spans.append(Cue(k, k + 1, "-free", reach=k))
            k += 1
    return spans


def free_words(toks: list[Token], covered: set[int]) -> list[int]:
    """Prefix counts of the words outside mentions (function words and "and" / "or" excluded):
    ``f[j] - f[i]`` is how many such words tokens [i, j) hold (``MAX_SCOPE_WORDS``)."""
    f = [0]
    for k, t in enumerate(toks):
        f.append(f[-1] + (k not in covered and not t.filler and t.low not in ("nor", "neither")))
    return f


def negating_cue(a: int, b: int, clause: list[int], pre: list[Cue], post: list[Cue],
                 free: list[int] | None = None) -> str | None:
    """The cue that negates the mention at tokens [a, b), or None. With ``free`` (``free_words``)
    a cue reaches the mention only across at most ``MAX_SCOPE_WORDS`` words outside mentions."""
    def near(i: int, j: int) -> bool:
        return free is None or free[j] - free[i] <= MAX_SCOPE_WORDS

    cue = None
    for c in pre:  # the nearest cue before the mention, same clause
        if c.end <= a and clause[c.start] == clause[a] and (c.reach is None or a < c.reach) \
                and near(c.end, a):
            cue = c.text
    if cue is None:
        for c in post:  # a cue after the mention, same clause
            if c.start >= b and clause[c.start] == clause[b - 1] and near(b, c.start) \
                    and (c.reach is None or b == c.reach):
                return c.text
    return cue
