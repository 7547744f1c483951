"""Free-text HPO extraction: find HPO terms in a clinical note by label / synonym matching, and mark
the negated ones ("no seizures", "denies headaches", "without hypotonia", "ataxia was absent").

Hand-written on purpose: the NLP tools that do this (cTAKES, MetaMap, ClinPhen, scispaCy with
negspaCy) need large model or dictionary downloads; the app needs a small, predictable matcher that
runs on the ontology already in the database. The method:

* phrases = every current term's label and synonyms, lower-cased, split into word tokens, each token
  reduced by a crude plural stemmer (``seizures`` -> ``seizure``, ``anomalies`` -> ``anomaly``);
* the note is tokenised the same way and matched greedily, left to right, longest phrase first (so
  "febrile seizures" wins over "seizures");
* negation follows the NegEx idea (Chapman et al. 2001) in a reduced form: a pre-negation cue ("no",
  "denies", "without", "negative for", ...) negates the terms after it up to the end of its clause
  (sentence punctuation or a termination word such as "but"); a post-negation cue ("was absent",
  "not observed", "ruled out") negates the terms before it in its clause.

Known limits: no family-history / hypothetical detection ("mother has seizures" is taken as
present); no spelling correction; abbreviations shorter than four letters are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

import duckdb

from genedx.kb.hpo import PHENOTYPIC_ABNORMALITY

_WORD = re.compile(r"[A-Za-z0-9]+")
_CLAUSE_BREAK = re.compile(r"[.;:!?\n()\[\]]")
MAX_PHRASE_TOKENS = 12
MIN_PHRASE_CHARS = 4  # shorter phrases ("ID", "MR", "GDD" is kept) are too ambiguous in notes

# Cues are matched on lower-cased raw tokens (not stemmed).
PRE_NEGATION = [
    "no", "not", "denies", "denied", "deny", "without", "negative for", "absence of", "absent",
    "free of", "no evidence of", "no sign of", "no signs of", "no history of", "never", "lacks",
    "lack of", "neither", "nor", "rules out", "ruled out", "excluded", "non",
]
POST_NEGATION = [
    "absent", "was absent", "were absent", "not present", "not observed", "not seen", "not noted",
    "not detected", "not found", "ruled out", "was excluded", "were excluded", "negative", "unremarkable",
]
# Words that close a pre-negation scope inside a sentence ("no seizures but marked hypotonia").
TERMINATORS = {"but", "however", "although", "though", "except", "yet", "whereas", "while", "apart",
               "aside", "which", "who", "besides"}
# "and" + one of these verbs starts a new assertion ("no seizures and has hypotonia").
_ASSERTING_VERBS = {"has", "had", "have", "shows", "showed", "shown", "presents", "presented",
                    "exhibits", "exhibited", "displays", "displayed", "developed", "develops",
                    "demonstrates", "demonstrated", "is", "was", "were", "are", "with"}
# Pseudo-negations: a cue word that does not negate here ("not only", "no increase in").
_PSEUDO = {("not", "only"), ("no", "change"), ("no", "increase"), ("not", "necessarily")}


def stem(token: str) -> str:
    """Crude English plural stemmer used on both sides of the match.

    >>> [stem(w) for w in ["seizures", "anomalies", "weakness", "ptosis", "nystagmus", "toes"]]
    ['seizure', 'anomaly', 'weakness', 'ptosis', 'nystagmus', 'toe']
    """
    t = token.lower()
    if len(t) > 4 and t.endswith("ies"):
        return t[:-3] + "y"
    if len(t) > 3 and t.endswith("s") and not t.endswith(("ss", "us", "is", "ys")):
        return t[:-1]
    return t


def _tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


@dataclass(frozen=True)
class ExtractedTerm:
    """One HPO term found in a note: where, which words, and whether the note negates it."""

    id: str
    label: str
    text: str        # the words of the note that matched
    start: int       # character offsets of ``text`` in the note
    end: int
    negated: bool
    cue: str | None = None  # the negation cue that applied

    @property
    def status(self) -> str:
        return "absent" if self.negated else "present"


class TermExtractor:
    """Matches HPO labels and synonyms in free text.

    >>> ex = TermExtractor.from_records([("HP:0001250", "Seizure", ["Seizures", "Epilepsy"]),
    ...                                  ("HP:0002373", "Febrile seizure", []),
    ...                                  ("HP:0001252", "Hypotonia", ["Low muscle tone"])])
    >>> [(t.id, t.status) for t in ex.extract("Febrile seizures at 6 months. No hypotonia.")]
    [('HP:0002373', 'present'), ('HP:0001252', 'absent')]
    """

    def __init__(self, phrases: dict[tuple[str, ...], tuple[str, str]]):
        self.phrases = phrases
        self.max_len = max((len(k) for k in phrases), default=0)

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, str, Iterable[str] | None]]) -> "TermExtractor":
        """Build from (id, label, synonyms) rows; a label wins over another term's identical synonym."""
        phrases: dict[tuple[str, ...], tuple[str, str]] = {}
        from_synonym: set[tuple[str, ...]] = set()
        for term_id, label, synonyms in records:
            for i, phrase in enumerate([label, *(synonyms or [])]):
                if not phrase or len(phrase.strip()) < MIN_PHRASE_CHARS:
                    continue
                key = tuple(stem(t) for t, _, _ in _tokens(phrase))
                if not key or len(key) > MAX_PHRASE_TOKENS:
                    continue
                is_label = i == 0
                if key not in phrases or (is_label and key in from_synonym):
                    phrases[key] = (term_id, label)
                    if is_label:
                        from_synonym.discard(key)
                    else:
                        from_synonym.add(key)
        return cls(phrases)

    @classmethod
    def from_db(cls, con: duckdb.DuckDBPyConnection, root: str = PHENOTYPIC_ABNORMALITY) -> "TermExtractor":
        """All current terms under ``root`` (default: Phenotypic abnormality, so that modes of
        inheritance, onsets and frequencies are not picked up from prose)."""
        rows = con.execute(
            """SELECT t.id, t.label, t.synonyms FROM hpo_term t
               JOIN hpo_ancestor a ON a.term = t.id AND a.ancestor = ?
               WHERE NOT coalesce(t.obsolete, false) AND t.id <> ? ORDER BY t.id""",
            [root, root]).fetchall()
        return cls.from_records(rows)

    def mentions(self, text: str) -> list[ExtractedTerm]:
        """Every term mention in reading order, each with its own negation status."""
        toks = _tokens(text)
        stems = [stem(t) for t, _, _ in toks]
        lows = [t.lower() for t, _, _ in toks]
        clause = _clause_ids(text, toks, lows)
        found: list[tuple[int, int, str, str]] = []  # (first token, last token + 1, id, label)
        i = 0
        while i < len(toks):
            for n in range(min(self.max_len, len(toks) - i), 0, -1):
                hit = self.phrases.get(tuple(stems[i:i + n]))
                if hit:
                    found.append((i, i + n, *hit))
                    i += n
                    break
            else:
                i += 1
        covered = {k for a, b, _, _ in found for k in range(a, b)}
        pre = _cue_spans(lows, PRE_NEGATION, covered)
        post = _cue_spans(lows, POST_NEGATION, covered)
        out = []
        for a, b, term_id, label in found:
            cue = None
            for ca, cb, word in pre:  # cue before the term, same clause
                if cb <= a and clause[ca] == clause[a]:
                    cue = word
            if cue is None:
                for ca, cb, word in post:  # cue after the term, same clause
                    if ca >= b and clause[ca] == clause[a]:
                        cue = word
                        break
            out.append(ExtractedTerm(term_id, label, text[toks[a][1]:toks[b - 1][2]], toks[a][1],
                                     toks[b - 1][2], cue is not None, cue))
        return out

    def extract(self, text: str) -> list[ExtractedTerm]:
        """One entry per term, in order of first mention; a term both affirmed and negated in the
        note is kept as present (its affirmation is the clinically informative statement)."""
        best: dict[str, ExtractedTerm] = {}
        for m in self.mentions(text):
            if m.id not in best or (best[m.id].negated and not m.negated):
                best[m.id] = m
        return sorted(best.values(), key=lambda m: m.start)


def _clause_ids(text: str, toks: list[tuple[str, int, int]], lows: list[str]) -> list[int]:
    """A clause number per token: punctuation, termination words and "and <verb>" start a new one."""
    ids, cur = [], 0
    for k, (_, start, _) in enumerate(toks):
        if k:
            gap = text[toks[k - 1][2]:start]
            if _CLAUSE_BREAK.search(gap) or lows[k] in TERMINATORS or (
                    lows[k] in _ASSERTING_VERBS and lows[k - 1] == "and"):
                cur += 1
        ids.append(cur)
    return ids


def _cue_spans(lows: list[str], cues: list[str], covered: set[int]) -> list[tuple[int, int, str]]:
    """(start, end, cue) of each negation cue; tokens inside a matched term are not cues
    ("Absent speech" is a term, not a negation)."""
    spans = []
    keyed = sorted((tuple(c.split()) for c in cues), key=len, reverse=True)
    k = 0
    while k < len(lows):
        for cue in keyed:
            n = len(cue)
            if tuple(lows[k:k + n]) == cue and not covered.intersection(range(k, k + n)):
                if not (n == 1 and k + 1 < len(lows) and (lows[k], lows[k + 1]) in _PSEUDO):
                    spans.append((k, k + n, " ".join(cue)))
                k += n
                break
        else:
            k += 1
    return spans
