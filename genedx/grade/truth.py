"""The true gene of a case, checked against HGNC before anything is graded against it.

A case whose recorded gene is not an HGNC symbol (a typo, a withdrawn symbol, an alias shared by
several genes) cannot be graded: no predictor can name it, so counting it as a miss would
understate accuracy without saying why. Scoring and grading report it per record and leave it out
of the metrics instead.
"""

from __future__ import annotations

from genedx.kb.genes import AMBIGUOUS, GeneNormalizer


def check_true_gene(symbol: str, normalizer: GeneNormalizer | None = None) -> tuple[str | None, str | None]:
    """(approved HGNC symbol, None), or (None, a one-line problem) when ``symbol`` cannot be graded.

    >>> check_true_gene("scn1a")
    ('SCN1A', None)
    >>> check_true_gene("NOTAGENE1")[1]
    "true gene 'NOTAGENE1' is not an HGNC symbol; not graded"
    """
    norm = normalizer or GeneNormalizer.default()
    approved, how = norm.lookup(symbol)
    if approved:
        return approved, None
    if how == AMBIGUOUS:
        return None, f"true gene {symbol!r} is an alias of several HGNC genes; not graded"
    return None, f"true gene {symbol!r} is not an HGNC symbol; not graded"
