"""Free-text HPO recognition: every HPO concept a note supports, each with its span and whether the
note affirms or negates it.

Why this design (and not FastHPOCR, scispaCy or a neural tagger): the app and the CLI need a small,
predictable matcher that runs on the ontology already in the database, starts in well under a second
and needs no model download. It borrows FastHPOCR's central idea (a mention is the *set* of a
label's word stems found together, in any order) and adds what FastHPOCR lacks: negation, nested
mentions and abbreviations defined in the text. Measured against FastHPOCR in bench/RESULTS.md.

The method:

* lexicon: every current term's label and synonyms under Phenotypic abnormality, each reduced to
  the sorted multiset of its word normal forms (``genedx.extract.tokens``: plural fold + Snowball
  stem + a few equivalences; function words dropped). A key shared by several terms goes to the one
  whose *label* it is, except where the text has another term's label or synonym word for word
  ("lipomas" is a synonym of Multiple lipomas, though its key is Lipoma's); an adjective whose noun
  is also a lexicon word shares the noun's normal form, in keys and text ("gingival" / "gingiva",
  "hypotonic" / "hypotonia": ``tokens.derivational_aliases``), and a text adjective outside the
  lexicon is derived the same way ("microcephalic");
* matching: every window of a sentence part (no punctuation inside) that starts and ends on a
  content word is looked up, once with all its words and once without degree/laterality modifiers
  and laboratory words ("mild", "bilateral", "serum", "levels"; the match then starts after the
  leading ones); so word order, inserted function words, adverbs and modifiers do not matter, and
  every nested concept is found ("bilateral vestibular schwannomas" gives Bilateral vestibular
  schwannoma, Vestibular schwannoma and Schwannoma); the same term over overlapping words is one
  match; "A and B head" coordinations are tried with one- and two-word conjuncts, and "head of
  the A, B and C" / "head A and B" ones with the later conjuncts ("hypoplasia of the radius and
  ulna", "cleft lip and palate");
* nested mentions that state no second finding are dropped: a mention inside a wider one whose
  term HPO does not file under it, one whose wider mention only adds a count ("multiple nevi"),
  and a one-word "-ing" synonym qualifying the next noun ("collecting system");
* abbreviations: "long form (SF)" definitions (``genedx.extract.abbreviations``) whose long form
  is a mention make every later "SF" a mention of the same term;
* negation: ``genedx.extract.negation`` (NegEx-style cues and clause scope).

Known limits: no family-history / hypothetical detection ("mother has seizures" is taken as
present); no spelling correction; no anaphora; undefined abbreviations shorter than four letters
are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

import duckdb

from genedx.extract.abbreviations import find_abbreviations
from genedx.extract.negation import clause_ids, find_cues, free_words, negating_cue
from genedx.extract.tokens import (ABNORMALITY, DIRECTIONS, LAB_WORDS, MALFORMATION, MALFORMATION_FALLBACKS,
                                   MODIFIERS, Token, derivational_aliases, derived_noun, fold_accents, fold_plural,
                                   is_filler, normal_form, surface_form, tokenize)
from genedx.kb.hpo import PHENOTYPIC_ABNORMALITY

MAX_PHRASE_WORDS = 10  # content words in a dictionary key
MAX_WINDOW_TOKENS = 14  # tokens a text window may span (content + fillers + modifiers)
MIN_PHRASE_CHARS = 4   # shorter phrases ("ID", "MR") are too ambiguous unless defined in the text
_WINDOW_BREAK = re.compile(r"[.,;:!?()\[\]\n/]")

stem = fold_plural  # the first extractor's public plural folder, kept for callers


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

    def to_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "status": self.status, "start": self.start,
                "end": self.end, "text": self.text}


@dataclass(frozen=True)
class _Match:
    a: int   # first token
    b: int   # last token + 1
    id: str
    label: str
    kind: str = "window"  # window | coordination | abbreviation


class TermExtractor:
    """Recognises HPO terms in free text.

    >>> ex = TermExtractor.from_records([("HP:0001250", "Seizure", ["Seizures", "Epilepsy"]),
    ...                                  ("HP:0002373", "Febrile seizure", []),
    ...                                  ("HP:0001252", "Hypotonia", ["Low muscle tone"])])
    >>> [(t.id, t.status) for t in ex.extract("Febrile seizures at 6 months. No hypotonia.")]
    [('HP:0002373', 'present'), ('HP:0001250', 'present'), ('HP:0001252', 'absent')]
    """

    def __init__(self, keys: dict[tuple[str, ...], tuple[str, str]], one_word: dict[str, set[str]],
                 nested: bool = True, ancestors: dict[str, frozenset[str]] | None = None,
                 exact: dict[tuple[str, ...], tuple[str, str]] | None = None,
                 aliases: dict[str, str] | None = None):
        self.keys = keys
        self.aliases = aliases or {}  # adjective normal form -> its noun's (``derivational_aliases``)
        self._derived: dict[str, str | None] = {}  # text word outside the lexicon -> its noun's normal form
        # a label or synonym word for word (lower case) -> its term, where that is not the term
        # of its key: normalisation merges "Lipomas" (a synonym of Multiple lipomas) with "Lipoma"
        self.exact = exact or {}
        self.ancestors = ancestors or {}  # term -> its is_a ancestors (for nested mentions)
        self.one_word = one_word  # one-word key -> the surface forms it may match
        self.nested = nested
        self.max_words = max((len(k) for k in keys), default=0)
        # a window through any other word cannot match
        self.vocabulary = frozenset({MALFORMATION, *(w for k in keys for w in k)})

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, str, Iterable[str] | None]], nested: bool = True,
                     ancestors: dict[str, frozenset[str]] | None = None) -> "TermExtractor":
        """Build from (id, label, synonyms) rows; a label wins over another term's identical synonym.
        ``nested=False`` keeps only the widest of overlapping mentions (the first extractor's way)."""
        records = [(t, label, list(syns or [])) for t, label, syns in records]
        tokens = {phrase: tokenize(phrase) for _, label, syns in records for phrase in [label, *syns] if phrase}
        aliases = derivational_aliases({t.low for toks in tokens.values() for t in toks})

        def phrase_norms(phrase: str) -> list[str]:
            toks = tokens[phrase] if phrase in tokens else tokenize(phrase)
            return [aliases.get(t.norm, t.norm) for t in toks if not t.filler]

        keys: dict[tuple[str, ...], tuple[str, str]] = {}
        one_word: dict[str, set[str]] = {}
        from_label: set[tuple[str, ...]] = set()
        words: dict[tuple[str, ...], tuple] = {}  # a phrase's own words -> (its key, its term)
        own_label: set[tuple[str, ...]] = set()
        for term_id, label, synonyms in records:
            for i, phrase in enumerate([label, *(synonyms or [])]):
                if not phrase or len(phrase.strip()) < MIN_PHRASE_CHARS:
                    continue
                key = tuple(sorted(phrase_norms(phrase)))
                if not key or len(key) > MAX_PHRASE_WORDS:
                    continue
                if key not in keys or (i == 0 and key not in from_label):
                    keys[key] = (term_id, label)
                own = tuple(t.low for t in tokens[phrase])
                if own not in words or (i == 0 and own not in own_label):
                    words[own] = (key, (term_id, label))
                if i == 0:
                    own_label.add(own)
                lab = tuple(sorted(phrase_norms(" ".join(w for w in re.findall(r"[A-Za-z0-9]+", phrase)
                                                         if w.lower() not in LAB_WORDS))))
                if len(lab) > 1 and lab != key and DIRECTIONS.intersection(lab):
                    keys.setdefault(lab, (term_id, label))
                if i == 0:
                    from_label.add(key)
                if len(key) == 1:
                    phrase_words = [w for w in re.findall(r"[A-Za-z0-9]+", phrase) if not is_filler(w)]
                    one_word.setdefault(key[0], set()).update(surface_form(w) for w in phrase_words)
        # not for the generic "X abnormality" wordings: HPO hangs some on a narrower term ("Ear
        # anomalies" on Abnormality of the outer ear, "Limb abnormality" on Abnormal limb bone
        # morphology), where the label with the same words ("Abnormality of the ear") is literal
        exact = {own: hit for own, (key, hit) in words.items()
                 if keys.get(key) not in (None, hit) and ABNORMALITY not in key}
        return cls(keys, one_word, nested, ancestors, exact, aliases)

    @classmethod
    def from_db(cls, con: duckdb.DuckDBPyConnection, root: str = PHENOTYPIC_ABNORMALITY,
                nested: bool = True) -> "TermExtractor":
        """All current terms under ``root`` (default: Phenotypic abnormality, so that modes of
        inheritance, onsets and frequencies are not picked up from prose)."""
        rows = con.execute(
            """SELECT t.id, t.label, t.synonyms FROM hpo_term t
               JOIN hpo_ancestor a ON a.term = t.id AND a.ancestor = ?
               WHERE NOT coalesce(t.obsolete, false) AND t.id <> ? ORDER BY t.id""",
            [root, root]).fetchall()
        ancestors: dict[str, set[str]] = {}
        for term, anc in con.execute(
                """SELECT a.term, a.ancestor FROM hpo_ancestor a
                   JOIN hpo_ancestor r ON r.term = a.term AND r.ancestor = ?
                   WHERE a.distance > 0""", [root]).fetchall():
            ancestors.setdefault(term, set()).add(anc)
        return cls.from_records(rows, nested, {t: frozenset(a) for t, a in ancestors.items()})

    # -- matching -------------------------------------------------------------------------------

    def _window_matches(self, text: str, toks: list[Token]) -> list[_Match]:
        """Every dictionary key found in a window of consecutive tokens (no punctuation inside)."""
        found: list[_Match] = []
        n = len(toks)
        # a slash between two words joins alternatives like a hyphen ("tonic/clonic seizures",
        # "absent/hypoplastic thumbs"); with spaces or numbers around it, it separates
        broken = [k > 0 and bool(_WINDOW_BREAK.search(text[toks[k - 1].end:toks[k].start]))
                  and not (text[toks[k - 1].end:toks[k].start] == "/" and toks[k - 1].text.isalpha()
                           and toks[k].text.isalpha()) for k in range(n)]
        # an adverb outside the lexicon is skipped like a function word ("the tongue was obviously atrophic")
        skip = [t.filler or (len(t.low) > 4 and t.low.endswith("ly") and t.norm not in self.vocabulary
                             and t.low not in MODIFIERS) for t in toks]
        for i in range(n):
            if skip[i]:
                continue
            every: list[str] = []
            core: list[str] = []
            core_start = None  # first token of the window that is not a modifier
            for j in range(i, min(n, i + MAX_WINDOW_TOKENS)):
                if j > i and broken[j]:
                    break
                t = toks[j]
                if skip[j]:
                    continue
                if t.norm not in self.vocabulary and t.low not in MODIFIERS:
                    break
                every.append(t.norm)
                if t.low not in MODIFIERS:
                    core.append(t.norm)
                    if core_start is None:
                        core_start = j
                if len(core) > self.max_words:
                    break
                hits = {tuple(sorted(every)): i}
                # a modifier may lead a mention ("mild ataxia") but does not end one; a match
                # without the modifiers starts after the leading ones ("severe | scoliosis")
                if core and len(core) < len(every) and t.low not in MODIFIERS:
                    hits.setdefault(tuple(sorted(core)), core_start)
                if _cut_before_noun(text, toks, j):
                    continue
                for key, a in hits.items():
                    hit = self._lookup(key)
                    if hit and (len(key) > 1 or (self._one_word_ok(key[0], toks[a:j + 1])
                                                 and not _participle_before_noun(text, toks, j))):
                        if self.exact:  # the words of a label or synonym as written win
                            hit = self.exact.get(tuple(t.low for t in toks[a:j + 1]), hit)
                        found.append(_Match(a, j + 1, *hit))
        return found

    def _lookup(self, key: tuple[str, ...]) -> tuple[str, str] | None:
        """The term of a key; "X malformation" without its own entry is "Abnormal X morphology",
        else "Abnormality of X"."""
        hit = self.keys.get(key)
        if hit is None and MALFORMATION in key:
            rest = [w for w in key if w != MALFORMATION]
            for extra in MALFORMATION_FALLBACKS:
                hit = self.keys.get(tuple(sorted(rest + list(extra))))
                if hit:
                    break
        return hit

    def _coordinated_matches(self, text: str, toks: list[Token], found: list[_Match]) -> list[_Match]:
        """Mentions that share their head with a coordinated one: in "palmar and plantar pits" or
        "branchial, otic and renal anomalies" the match "plantar pits" / "renal anomalies" is tried
        with each earlier conjunct in place of its first word."""
        extra: list[_Match] = []
        for m in found:
            words = [t for t in toks[m.a:m.b] if not t.filler]
            if len(words) < 2 or words[0] is not toks[m.a]:
                continue
            rest = [t.norm for t in words[1:]]
            k = m.a
            for _ in range(6):  # up to six earlier conjuncts
                if k >= 2 and toks[k - 1].low in ("and", "or"):
                    c = k - 2
                elif k >= 1 and "," in text[toks[k - 1].end:toks[k].start]:
                    c = k - 1
                else:
                    break
                if c < 0 or toks[c].filler:
                    break
                hit = self._lookup(tuple(sorted([toks[c].norm, *rest])))
                if hit:
                    extra.append(_Match(c, m.b, *hit, kind="coordination"))
                # a two-word conjunct: "posterior subcapsular or capsular cataract"
                if c >= 1 and not toks[c - 1].filler and toks[c - 1].low not in MODIFIERS \
                        and not _WINDOW_BREAK.search(text[toks[c - 1].end:toks[c].start]):
                    hit2 = self._lookup(tuple(sorted([toks[c - 1].norm, toks[c].norm, *rest])))
                    if hit2:
                        extra.append(_Match(c - 1, m.b, *hit2, kind="coordination"))
                k = c
        return extra

    def _postposed_coordinated_matches(self, text: str, toks: list[Token],
                                       found: list[_Match]) -> list[_Match]:
        """The mirror of ``_coordinated_matches``: "hypoplasia of the radius and ulna",
        "hypopigmentation of the skin, hair and eyes" or "small hands and feet" distribute the head
        over the later conjuncts, so the match "hypoplasia of the radius" / "small hands" is tried
        with each of them in place of its last word."""
        extra: list[_Match] = []
        n = len(toks)
        for m in found:
            if m.kind != "window":
                continue
            words = [t for t in toks[m.a:m.b] if not t.filler]
            if len(words) < 2 or words[-1] is not toks[m.b - 1]:
                continue
            # a head with a prepositional complement ("X of the A, B and C") takes a list; a head
            # before its noun only one "and" / "or" conjunct: in "gait ataxia, spasticity" or
            # "optic neuropathy, epilepsy and ataxia" the commas separate findings
            complement = toks[m.b - 2].low in ("of", "the")
            rest = [t.norm for t in words[:-1]]
            k = m.b - 1  # the last conjunct so far
            for _ in range(6):  # up to six later conjuncts
                gap = text[toks[k].end:toks[k + 1].start] if k + 1 < n else "."
                if "," in gap and not complement:
                    break
                if "," in gap and k + 2 < n and toks[k + 1].low in ("and", "or"):
                    c = k + 2   # "skin, hair, and eyes"
                elif "," in gap and gap.strip() == ",":
                    c = k + 1
                elif gap.strip() == "" and k + 2 < n and toks[k + 1].low in ("and", "or") \
                        and text[toks[k + 1].end:toks[k + 2].start].strip() == "":
                    c = k + 2
                else:
                    break
                if toks[c].low == "the" and c + 1 < n:  # "of the radius and the ulna"
                    c += 1
                if toks[c].filler:
                    break
                # a conjunct that modifies the next word is not the head's complement: "absence of
                # hair and nail dystrophy"
                if c + 1 < n and not toks[c + 1].filler and text[toks[c].end:toks[c + 1].start].strip() == "":
                    break
                hit = self._lookup(tuple(sorted([*rest, toks[c].norm])))
                if hit:
                    extra.append(_Match(m.a, c + 1, *hit, kind="coordination"))
                if not complement:
                    break
                k = c
        return extra

    def _supported_nested(self, found: list[_Match]) -> list[_Match]:
        """Drop a mention inside a wider one when the ontology does not place the wider term under
        the inner one: the words then name something else ("carcinoma" in "basal cell carcinoma",
        which HPO does not file under Carcinoma; "neuroma" in "acoustic neuroma"; "collecting" in
        "collecting system"). Inner ancestors stay ("hearing loss" in "sensorineural hearing loss")."""
        if not self.ancestors:
            return found
        wide = [m for m in found if m.kind == "window"]
        return [m for m in found if m.kind != "window" or not any(
            o.a <= m.a and m.b <= o.b and o.b - o.a > m.b - m.a and o.id != m.id
            and m.id not in self.ancestors.get(o.id, ())
            for o in wide)]

    def _drop_counted_inner(self, toks: list[Token], found: list[_Match]) -> list[_Match]:
        """Drop a mention inside a wider one whose only other words are a count ("multiple nevi" is
        Numerous nevi, "multiple lipomas" Multiple lipomas): the wider term is the finding stated,
        its words do not state a second one."""
        def extra_words(o: _Match, m: _Match) -> set[str]:
            return {t.low for t in toks[o.a:m.a] + toks[m.b:o.b] if not t.filler}
        counted = [o for o in found if any(t.low in _COUNT_WORDS for t in toks[o.a:o.b])]
        if not counted:
            return found
        return [m for m in found if not any(
            o.a <= m.a and m.b <= o.b and o.b - o.a > m.b - m.a and o.id != m.id
            and extra_words(o, m) and extra_words(o, m) <= _COUNT_WORDS for o in counted)]

    def _one_word_ok(self, norm: str, window: list[Token]) -> bool:
        # a word derived to its noun stands for it ("she was hypotonic" is Hypotonia)
        allowed = self.one_word.get(norm, ())
        return any(t.norm == norm and (t.surface in allowed or t.derived) for t in window)

    def _abbreviation_matches(self, text: str, toks: list[Token], found: list[_Match]) -> list[_Match]:
        """Uses of "SF" after a definition "long form (SF)" whose long form is a mention."""
        extra: list[_Match] = []
        for ab in find_abbreviations(text):
            inside = [m for m in found
                      if toks[m.b - 1].end == ab.long_end and toks[m.a].start >= ab.long_start]
            if not inside:
                continue
            best = max(inside, key=lambda m: m.b - m.a)
            short = tuple(w.lower() for w in re.findall(r"[A-Za-z0-9]+", ab.short))
            k = len(short)
            for p in range(len(toks) - k + 1):
                if toks[p].start > ab.long_end and tuple(t.low for t in toks[p:p + k]) == short \
                        and toks[p].text[0].isupper():
                    extra.append(_Match(p, p + k, best.id, best.label, "abbreviation"))
        return extra

    def _aliased(self, t: Token) -> Token:
        """The token with its adjective normal form replaced by its noun's ("gingival" -> "gingiva");
        an adjective the lexicon lacks is derived the same way ("microcephalic" -> "microcephaly")."""
        norm = self.aliases.get(t.norm)
        if norm is None and t.norm not in self.vocabulary and not t.filler:
            norm = self._derived.get(t.low, "")
            if norm == "":
                norm = self._derived[t.low] = derived_noun(
                    t.low, lambda n: self.aliases.get(n, n) in self.vocabulary)
            norm = None if norm is None else self.aliases.get(norm, norm)
        return t if norm is None else Token(t.text, t.start, t.end, t.low, norm, derived=True)

    def _join_hyphenated(self, text: str, toks: list[Token]) -> list[Token]:
        """"pre-auricular" -> one token "preauricular" when the joined word is in the lexicon."""
        out: list[Token] = []
        for t in toks:
            if out and text[out[-1].end:t.start] == "-":
                joined = out[-1].text + t.text
                norm = normal_form(joined)
                norm = self.aliases.get(norm, norm)
                if norm in self.vocabulary:
                    out[-1] = Token(text[out[-1].start:t.end], out[-1].start, t.end, joined.lower(), norm)
                    continue
            out.append(t)
        return out

    def mentions(self, text: str) -> list[ExtractedTerm]:
        """Every term mention in reading order (nested ones included), each with its own negation
        status. The same term over overlapping words is reported once, with its widest span."""
        original, text = text, fold_accents(text)  # same length: offsets are valid in both
        aliases, vocabulary = self.aliases, self.vocabulary
        toks = self._join_hyphenated(text, [t if t.norm in vocabulary and t.norm not in aliases else self._aliased(t)
                                            for t in tokenize(text)])
        found = self._window_matches(text, toks)
        found += self._coordinated_matches(text, toks, found)
        found += self._postposed_coordinated_matches(text, toks, found)
        found += self._abbreviation_matches(text, toks, found)
        found = (self._drop_counted_inner(toks, self._supported_nested(_widest_per_term(found))) if self.nested
                 else _widest_only(found))
        covered = {k for m in found for k in range(m.a, m.b)}
        clause = clause_ids(text, toks)
        pre = find_cues(text, toks, covered, post=False)
        post = find_cues(text, toks, covered, post=True)
        free = free_words(toks, covered)
        out = []
        for m in found:
            cue = negating_cue(m.a, m.b, clause, pre, post, free)
            start, end = toks[m.a].start, toks[m.b - 1].end
            out.append(ExtractedTerm(m.id, m.label, original[start:end], start, end, cue is not None, cue))
        return out

    def extract(self, text: str) -> list[ExtractedTerm]:
        """One entry per term, in order of first mention; a term both affirmed and negated in the
        note is kept as present (its affirmation is the clinically informative statement)."""
        best: dict[str, ExtractedTerm] = {}
        for m in self.mentions(text):
            if m.id not in best or (best[m.id].negated and not m.negated):
                best[m.id] = m
        return sorted(best.values(), key=lambda m: (m.start, -m.end))


_ADJECTIVE_END = re.compile(r"(?:ar|al|ic|ous|ary|oid|ive)$")


def _cut_before_noun(text: str, toks: list[Token], j: int) -> bool:
    """True when a window would end on an adjective that modifies the next word ("hyperplasia of
    the mandibular | coronoid processes"): the mention would cut a noun phrase in two."""
    low = toks[j].low
    if j + 1 >= len(toks) or not (low in _POSITION_ADJECTIVES or (_ADJECTIVE_END.search(low) and len(low) >= 5)):
        return False
    nxt = toks[j + 1]
    return (text[toks[j].end:nxt.start].strip() == "" and not nxt.filler and nxt.text[0].islower()
            and nxt.low not in _FORM_WORDS)


_COUNT_WORDS = frozenset({"multiple", "numerous", "many", "several"})


def _participle_before_noun(text: str, toks: list[Token], j: int) -> bool:
    """True when the word at ``j`` is an "-ing" form that qualifies the next noun ("collecting
    system", "spinning disk"): alone it is then no mention of the behaviour ("Collecting")."""
    if j + 1 >= len(toks) or not toks[j].low.endswith("ing"):
        return False
    nxt = toks[j + 1]
    return (text[toks[j].end:nxt.start] == " " and not nxt.filler and nxt.text[0].islower()
            and nxt.low.isalpha() and not nxt.low.endswith(("ly", "ing", "ed"))
            and nxt.low not in _PREPOSITIONS)


# not nouns: "vomiting during feeds", "drooling since infancy"
_PREPOSITIONS = frozenset({"during", "after", "before", "since", "until", "despite", "without", "within",
                           "into", "over", "under", "through", "when", "while"})


# "lower" is also "low" to the stemmer: "muscle tone in his lower | limbs" is not "low muscle tone"
_POSITION_ADJECTIVES = frozenset({"lower", "upper", "inner", "outer"})
_FORM_WORDS = frozenset({"shape", "morphology", "structure", "appearance", "form", "configuration"})


def _widest_per_term(found: list[_Match]) -> list[_Match]:
    """One match per term over overlapping words: a window match before a coordination one, then the
    widest, then the one ending last (English noun phrases end on their head: "nevoid basal cell" |
    "basal cell carcinoma" keeps the second); order by position, wider first."""
    by_term: dict[str, list[_Match]] = {}
    for m in sorted(found, key=lambda m: (m.kind != "window", -(m.b - m.a), -m.b)):
        kept = by_term.setdefault(m.id, [])
        if not any(k.a < m.b and m.a < k.b for k in kept):
            kept.append(m)
    return sorted((m for ms in by_term.values() for m in ms), key=lambda m: (m.a, -(m.b - m.a)))


def _widest_only(found: list[_Match]) -> list[_Match]:
    """Keep a match only when no other match covers it (overlaps resolved by width, then position)."""
    kept: list[_Match] = []
    for m in sorted(found, key=lambda m: (-(m.b - m.a), m.a)):
        if not any(k.a <= m.a and m.b <= k.b for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda m: m.a)
