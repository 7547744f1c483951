"""Tokens of a text, each with its character span and a normal form for dictionary matching.

The normal form of a word is, in order (after British endings are rewritten to the American form
the HPO vocabulary has: "localised", "centre", "tumour", "grey"):

1. its *morphological cluster* from FastHPOCR (PyPI ``fasthpocr``, MIT; ``vocab.clusters.list``: 573k
   word forms of the HPO vocabulary grouped by lemma, e.g. ``clavicle, clavicles, clavicular`` or
   ``retard, retardation, retarded``), the cluster's first word standing for it;
2. else the Snowball English stem (``snowballstemmer``) after a plural fold;
3. then a small hand-written table of *concept* equivalences that no morphology gives: the words
   for "abnormality" ("anomaly", "defect", "manifestation", ...; "malformation" is its own concept that
   falls back to "abnormal ... morphology"), anatomical adjectives with their nouns ("renal" /
   "kidney", "cutaneous" / "skin") and the two directions ("reduced" / "decreased", "elevated" /
   "increased"). Written from anatomy and HPO's own label patterns ("Abnormality of the kidney",
   "Abnormal renal morphology"), not from a corpus;
4. finally British "ae" / "oe" inside a stem become "e" ("haematuria", "oedema", "diarrhoea").

Accented letters are read as their base letters ("café" is "cafe") and U+2010 / U+2011 as "-".
The same normal form is applied to dictionary phrases and to text, and it is cached.
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import snowballstemmer

_WORD = re.compile(r"[A-Za-z0-9]+")
_STEMMER = snowballstemmer.stemmer("english")

# Function words that may sit inside a mention without changing its concept ("calcification OF THE
# falx cerebri"); they are dropped from dictionary keys and skipped inside text windows.
FILLERS = frozenset({"of", "the", "a", "an", "in", "on", "at", "to", "and", "or", "with", "for", "from",
                     "by", "as", "is", "are", "was", "were", "be", "its", "their", "his", "her"})
# Laboratory wording, optional like the modifiers below: "elevated serum creatine kinase levels" is
# "Elevated circulating creatine kinase concentration". A dictionary phrase with a direction
# ("Elevated", "Decreased") also gets a key without these words; "Abnormal circulating protein
# concentration" does not (without them it would be "abnormal protein").
LAB_WORDS = frozenset({"serum", "plasma", "circulating", "level", "levels", "concentration", "concentrations"})
DIRECTIONS = frozenset({"increas", "decreas"})
# Modifiers a mention may carry that the HPO label usually does not ("MILD ataxia", "BILATERAL
# vestibular schwannomas"); skipped inside windows, but still matched where a label has them.
# "like" and "shaped" are ones too: "shield-like chest" is Shield chest, "triangular-shaped face"
# Triangular face, while "Confetti-like hypopigmented macules" and "Pear-shaped nose" keep them.
MODIFIERS = frozenset({"mild", "mildly", "moderate", "moderately", "severe", "severely", "marked", "markedly",
                       "bilateral", "bilaterally", "unilateral", "left", "right", "multiple", "numerous",
                       "several", "slight", "slightly", "significant", "congenital", "progressive",
                       "profound", "extreme", "extremely", "very", "frequent", "recurrent", "occasional",
                       "typical", "characteristic", "prominent", "variable", "associated", "also", "both",
                       "symmetric", "symmetrical", "asymmetric", "diffuse", "generalised", "generalized", "focal", "early",
                       "late", "onset", "childhood", "adult", "infantile", "juvenile", "lifetime", "some",
                       "all", "other", "various", "distinct", "distinctive", "striking", "obvious",
                       "apparent", "possible", "persistent", "chronic", "acute", "isolated", "minor",
                       "major", "small", "large", "partial", "complete", "total", "like", "shaped"}) | LAB_WORDS

# Concept equivalences (see the module docstring), applied to whole lower-case words.
_CONCEPT_WORDS = {
    "abnorm": ("abnormality", "abnormalities", "abnormal", "anomaly", "anomalies", "anomalous",
               "manifestation", "manifestations", "defect", "defects", "disorder", "disorders"),
    # a malformation is a *structural* abnormality: HPO files "Renal malformation" under "Abnormal renal
    # morphology", not "Abnormality of the kidney"; the matcher falls back from "malform" to
    # "abnorm" + "morpholog", then to "abnorm" (``MALFORMATION_FALLBACKS``)
    "malform": ("malformation", "malformations", "malformed"),
    "numer": ("numerous", "multiple", "many"),
    "kidney": ("renal", "kidney", "kidneys", "nephric"),
    "skin": ("skin", "cutaneous", "dermal", "dermatologic", "dermatological"),
    "eye": ("eye", "eyes", "ocular", "ophthalmic", "ophthalmologic", "ophthalmological"),
    "liver": ("liver", "hepatic"),
    "heart": ("heart", "cardiac"),
    "lung": ("lung", "lungs", "pulmonary"),
    "brain": ("brain", "cerebral"),
    "mouth": ("mouth", "oral"),
    "tooth": ("tooth", "teeth", "dental"),
    "ear": ("ear", "ears", "otic", "auricular"),
    "nose": ("nose", "nasal"),
    "stomach": ("stomach", "gastric"),
    "intestin": ("intestine", "intestines", "intestinal", "bowel", "bowels"),
    "skull": ("skull", "cranial"),
    "nervous": ("nervous", "neurologic", "neurological", "neural"),
    "joint": ("joint", "joints", "articular"),
    "bone": ("bone", "bones", "osseous", "skeletal"),
    # HPO says "Decreased" and "Reduced", "Elevated" and "Increased" for the same direction
    "decreas": ("decreased", "decrease", "decreases", "reduced", "reduction", "diminished"),
    "increas": ("increased", "increase", "increases", "elevated", "elevation"),
}
_CONCEPT = {w: key for key, words in _CONCEPT_WORDS.items() for w in words}
ABNORMALITY = "abnorm"
MALFORMATION = "malform"
MALFORMATION_FALLBACKS = (("abnorm", "morpholog"), ("abnorm",))

# Equivalences the stemmer misses (British spellings, "absence" / "absent", irregular plurals),
# applied to stems.
_STEM_EQUIV = {"absenc": "absent", "tumour": "tumor", "oedema": "edema", "haemorrhag": "hemorrhag",
               "anaemia": "anemia", "leukaemia": "leukemia", "oesophag": "esophag", "foetal": "fetal",
               "anomali": "abnorm", "anomal": "abnorm",
               "colour": "color", "behaviour": "behavior", "paediatr": "pediatr",
               "dysplast": "dysplasia", "hypoplast": "hypoplasia", "aplast": "aplasia", "atroph": "atrophi",
               "calcifi": "calcif", "nevus": "nevi", "naevus": "nevi", "naevi": "nevi",
               # irregular and Latin plurals the plural fold misses
               "feet": "foot", "phalang": "phalanx", "halluc": "hallux", "appendic": "appendix",
               "lentigin": "lentigo"}


# Adjective -> noun derivations that neither the clusters nor the stemmer join ("hypotonic" /
# "hypotonia", "fibrotic" / "fibrosis", "gingival" / "gingiva", "mandibular" / "mandible"). HPO words
# one label in the adjective and another in the noun ("Abnormality of the gingiva", "Gingival
# overgrowth"), so a text matches only one wording. Applied by ``derivational_aliases`` to the words
# of the lexicon, where both forms occur; the first rule that gives a lexicon word wins.
_DERIVATIONS = ((re.compile(r"otic$"), "osis"), (re.compile(r"matous$"), "ma"), (re.compile(r"ptic$"), "psy"),
                (re.compile(r"ic$"), "ia"), (re.compile(r"ic$"), "y"), (re.compile(r"itic$"), "itis"),
                (re.compile(r"ented$"), "entation"), (re.compile(r"ular$"), "le"), (re.compile(r"ar$"), "a"),
                (re.compile(r"al$"), "um"), (re.compile(r"al$"), "a"), (re.compile(r"al$"), "us"),
                (re.compile(r"ic$"), "is"), (re.compile(r"acic$"), "ax"), (re.compile(r"ngeal$"), "nx"),
                (re.compile(r"ine$"), "us"))
# general adjectives and false friends that the rules above would tie to an unrelated noun
# ("focal" / "focus", "medial" / "medium", "rectal" / "rectus", "truncal" / "truncus", "clonal" /
# "clonus", "ileal" / "ileus"; "pelvic" / "pelvis": word order is not matched, and "renal pelvis"
# is no "pelvic kidney")
_NOT_DERIVED = frozenset({"focal", "global", "medial", "internal", "external", "maximal", "minimal", "nocturnal",
                          "congenital", "circular", "clonal", "truncal", "rectal", "ileal", "thymine", "spinal",
                          "pelvic", "angular", "triangular", "modic", "femoral", "abnormal"})


def derivational_aliases(words: set[str]) -> dict[str, str]:
    """normal form of an adjective -> normal form of its noun, for the lower-case ``words`` of a
    lexicon that hold both (``_DERIVATIONS``).

    >>> derivational_aliases({"hypotonic", "hypotonia", "gingival", "gingiva", "focal", "focus"})
    {'gingiv': 'gingiva', 'hypoton': 'hypotonia'}
    """
    out: dict[str, str] = {}
    # a normal form that some other word also has cannot be re-keyed: "neutrophilic" -> "neutrophilia"
    # would turn every "neutrophil" (same stem) into Neutrophilia, "retinal" every "retinitis"
    shared = Counter(normal_form(w) for w in words)
    for w in sorted(words):
        noun = _noun_of(w, words.__contains__)
        if noun is not None:
            a, b = normal_form(w), normal_form(noun)
            if a != b and a not in _CONCEPT_WORDS and shared[a] == 1:
                out.setdefault(a, b)
    return out


def _noun_of(word: str, accept: Callable[[str], bool]) -> str | None:
    """The first ``_DERIVATIONS`` noun of a lower-case adjective that ``accept`` takes, else None."""
    if len(word) < 5 or word in _NOT_DERIVED or word in _CONCEPT or word in MODIFIERS:
        return None
    for pattern, repl in _DERIVATIONS:
        noun = pattern.sub(repl, word)
        if noun != word and len(noun) >= 5 and accept(noun):
            return noun
    return None


def derived_noun(word: str, known: Callable[[str], bool]) -> str | None:
    """The normal form of the noun of a lower-case adjective (``_DERIVATIONS``) when ``known`` accepts
    it, else None: for text words outside the lexicon ("microcephalic", "edematous")."""
    noun = _noun_of(word, lambda n: known(normal_form(n)))
    return None if noun is None else normal_form(noun)


def fold_plural(token: str) -> str:
    """Crude English plural fold, used before stemming (kept from the first extractor).

    >>> [fold_plural(w) for w in ["seizures", "anomalies", "weakness", "ptosis", "nystagmus", "toes"]]
    ['seizure', 'anomaly', 'weakness', 'ptosis', 'nystagmus', 'toe']
    """
    t = token.lower()
    if len(t) > 4 and t.endswith("ies"):
        return t[:-3] + "y"
    if len(t) > 3 and t.endswith("s") and not t.endswith(("ss", "us", "is", "ys")):
        return t[:-1]
    return t


@lru_cache(maxsize=1)
def morphological_clusters() -> dict[str, str]:
    """word form -> its cluster's first word, from FastHPOCR's vocabulary (empty when the package
    is not installed: matching then falls back to Snowball stems)."""
    spec = importlib.util.find_spec("FastHPOCR")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "vocab.clusters.list"
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            forms = [w.strip() for w in line.split(",") if w.strip()]
            for w in forms[1:]:
                out.setdefault(w, forms[0])
            if forms:
                out.setdefault(forms[0], forms[0])
    return out


@lru_cache(maxsize=200_000)
def normal_form(word: str) -> str:
    """The matching key of one word (module docstring).

    >>> [normal_form(w) for w in ["Seizures", "retarded", "absence", "tumours", "anomalies", "renal"]]
    ['seizur', 'retard', 'absent', 'tumor', 'abnorm', 'kidney']
    """
    low = word.lower()
    if low in _CONCEPT:
        return _CONCEPT[low]
    if low.isdigit():
        return low
    low = american_spelling(low)
    s = _STEMMER.stemWord(fold_plural(low))
    head = morphological_clusters().get(low)
    if head is not None and head != low:
        # the cluster's first word is not always its lemma ("mentali, mentally"): keep the shorter
        h = _STEMMER.stemWord(fold_plural(head))
        if len(h) < len(s):
            s = h
    s = _STEM_EQUIV.get(s, s)
    # British "ae" / "oe" inside a word: the clusters pair "hypocalcaemia" with "hypocalcemia", but
    # the shorter-stem rule above can leave the two forms with different stems
    s = _AE_OE.sub("e", s)
    return _CONCEPT.get(s, s)


_AE_OE = re.compile(r"(?<=[a-z])[ao]e(?=[a-z])|^oe(?=[a-z])")
# British endings whose American form the stemmer treats differently ("localised" / "localized",
# "centre" / "center", "fibre", "paralysed", "tumour"); a rewrite is used only when it gives a word of the
# HPO vocabulary (the clusters), so "exercise", "wise" or "four" stay as they are
_BRITISH_ENDINGS = ((re.compile(r"(?<=[a-z]{3})is(e|ed|es|ing|ation|ations)$"), r"iz\1"),
                    (re.compile(r"(?<=[a-z]{2})ys(e|ed|es|ing)$"), r"yz\1"),
                    (re.compile(r"(?<=[a-z]{2})([bgt])re(s|d)?$"), r"\1er\2"),
                    (re.compile(r"(?<=[a-z]{2})our(s|al|ed|ing|less|ous)?$"), r"or\1"),
                    (re.compile(r"^grey"), "gray"), (re.compile(r"^sulph"), "sulf"))


@lru_cache(maxsize=200_000)
def american_spelling(low: str) -> str:
    """The American spelling of a lower-case British word when the HPO vocabulary has it.

    >>> [american_spelling(w) for w in ["localised", "centre", "paralysed", "grey", "exercise"]]
    ['localized', 'center', 'paralyzed', 'gray', 'exercise']
    """
    vocab = morphological_clusters()
    for pattern, repl in _BRITISH_ENDINGS:
        new = pattern.sub(repl, low)
        if new != low and new in vocab:
            return new
    return low


_BRITISH = ((re.compile(r"our"), "or"), (re.compile(r"(?<=[a-z])ae"), "e"), (re.compile(r"(?<=[a-z])oe"), "e"))


@lru_cache(maxsize=200_000)
def surface_form(word: str) -> str:
    """A word up to case, plural and British spelling: how a one-word term must appear in the text
    (stems alone over-merge single words: "intoeing" / "into", "retinitis" / "retinal").

    >>> [surface_form(w) for w in ["Tumours", "Anaemia", "nevi"]]
    ['tumor', 'anemia', 'nevi']
    """
    s = fold_plural(word.lower())
    for pattern, repl in _BRITISH:
        s = pattern.sub(repl, s)
    return s


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int
    low: str
    norm: str
    derived: bool = False  # ``norm`` is the noun of this adjective ("hypotonic" -> Hypotonia's)

    @property
    def surface(self) -> str:
        return surface_form(self.text)

    @property
    def filler(self) -> bool:
        return is_filler(self.text)


@lru_cache(maxsize=100_000)
def is_filler(word: str) -> bool:
    """A function word; a capital single letter is a name ("type A", "hepatitis B"), not "a"."""
    return word.lower() in FILLERS and not (len(word) == 1 and word.isupper())


_HYPHENS = frozenset("\u2010\u2011")  # typographic hyphens (not dashes: "2\u20133" is a range)


@lru_cache(maxsize=4096)
def _ascii_letter(c: str) -> str:
    """An accented Latin letter's base letter ("é" -> "e"), "-" for a typographic hyphen, else the
    character itself."""
    if c in _HYPHENS:
        return "-"
    base = unicodedata.normalize("NFKD", c)[:1]
    return base if base.isascii() and base.isalpha() else c


def fold_accents(text: str) -> str:
    """``text`` with accented Latin letters replaced by their base letters and the Unicode hyphens
    by "-", one character for one, so that offsets stay valid ("café-au-lait" is "cafe-au-lait",
    "Sjögren" is "Sjogren"; the regular expression of words would otherwise cut them at the accent).

    >>> fold_accents("Café\u2010au\u2010lait, Sjögren")
    'Cafe-au-lait, Sjogren'
    """
    if text.isascii():
        return text
    return _NON_ASCII.sub(lambda m: _ascii_letter(m.group()), text)


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


_APOSTROPHES = "'\u2019`\u00b4"


def tokenize(text: str) -> list[Token]:
    """Word tokens (letters and digits; hyphens and punctuation split words) with spans; accented
    letters count as their base letters. A possessive "'s" is no token: "Gower's sign" and
    "Crohn's disease" read as "Gowers sign" and "Crohn disease" do, as HPO writes most eponyms.

    >>> [t.text for t in tokenize("Gower’s sign, Crohn's")]
    ['Gower', 'sign', 'Crohn']
    """
    out = []
    folded = fold_accents(text)
    for m in _WORD.finditer(folded):
        w = m.group(0)
        if w in ("s", "S") and m.start() >= 2 and folded[m.start() - 1] in _APOSTROPHES \
                and folded[m.start() - 2].isalnum():
            continue
        out.append(Token(w, m.start(), m.end(), w.lower(), normal_form(w)))
    return out


def phrase_norms(phrase: str) -> list[str]:
    """Normal forms of a dictionary phrase's words, fillers dropped."""
    return [t.norm for t in tokenize(phrase) if not t.filler]
