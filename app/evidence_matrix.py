"""The evidence matrix of a ranking: the patient's phenotypes (rows) x the top genes (columns), each
cell the term's log10 likelihood-ratio contribution to that gene's score and how it arose.

Built only from what the predictor already returns (``GeneScore.evidence``: matched, excluded and
unmatched terms with their contributions; see ``genedx.rank.ranker.Ranker.explain``), so it shows
exactly the numbers the score was summed from. Streamlit-free: the Diagnose page draws it, the tests
call it directly. Drawn with matplotlib's object API (``Figure``, no ``pyplot``): pyplot keeps global
state, and the app draws from several session threads at once.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable, Sequence

# What a cell means (the legend of the picture).
MATCHED = "matched"            # present term explained by an annotation at or below it
ANCESTOR = "ancestor"          # present term explained only through an ancestor (sibling / more general term)
AGAINST = "against"            # absent term the disease usually shows: counts against the gene
UNEXPLAINED = "unexplained"    # present term the disease does not explain (scored at the no-match LR)
NEUTRAL = "neutral"            # absent term the disease rarely shows: no penalty
NOT_SCORED = "not scored"      # e.g. a present term implied by a more specific present term
KINDS = (MATCHED, ANCESTOR, AGAINST, UNEXPLAINED, NEUTRAL, NOT_SCORED)
KIND_TEXT = {
    MATCHED: "matched (annotation at or below the term)",
    ANCESTOR: "matched through an ancestor only",
    AGAINST: "absent in the patient, typical of the disease: counts against",
    UNEXPLAINED: "present, not explained by the disease",
    NEUTRAL: "absent, no penalty",
    NOT_SCORED: "not scored (implied by a more specific present term, or not a phenotypic abnormality)",
}
MARK = {MATCHED: "=", ANCESTOR: "^", AGAINST: "x", UNEXPLAINED: "?", NEUTRAL: "", NOT_SCORED: ""}


@dataclass
class EvidenceMatrix:
    """Rows = patient terms (present, then absent); columns = genes in rank order."""

    terms: list[str]
    labels: list[str]
    status: list[str]                  # "present" / "absent", per row
    genes: list[str]
    scores: list[float]                # each gene's total score (the column sum, plus any gene prior)
    values: list[list[float]]          # [row][col] log10 LR contribution; NaN where not scored
    kinds: list[list[str]]             # [row][col] one of KINDS

    def rows(self) -> list[dict[str, str]]:
        """The matrix as table rows (phenotype, then one "value kind-mark" cell per gene), for screens."""
        out = []
        for i, t in enumerate(self.terms):
            row = {"phenotype": f"{'+' if self.status[i] == 'present' else '−'} {self.labels[i]} ({t})"}
            for j, g in enumerate(self.genes):
                v, k = self.values[i][j], self.kinds[i][j]
                row[g] = "—" if math.isnan(v) else f"{v:+.2f} {MARK[k]}".strip()
            out.append(row)
        return out


def evidence_matrix(present: Sequence[str], absent: Sequence[str], genes: Sequence, *,
                    is_at_or_below: Callable[[str, str], bool], no_match_contribution: float,
                    label: Callable[[str], str] = lambda t: t, top: int = 10) -> EvidenceMatrix | None:
    """The matrix for the first ``top`` genes (``GeneScore`` with evidence) of a ranking.

    ``is_at_or_below(term, other)``: whether ``term`` is ``other`` or one of its descendants (tells a
    direct match from one through an ancestor). ``no_match_contribution``: the log10 LR of an
    unexplained present term (``log10(RankerConfig.no_match_lr)``), which the evidence does not list
    (a NOT annotation of such a term costs more; the gene's notes say so).
    None when no gene carries evidence (a language model's answer).
    """
    cols = [g for g in genes[:top] if g.evidence is not None]
    if not cols:
        return None
    terms = list(dict.fromkeys(present)) + [t for t in dict.fromkeys(absent) if t not in set(present)]
    n_present = len(dict.fromkeys(present))
    values = [[math.nan] * len(cols) for _ in terms]
    kinds = [[NOT_SCORED] * len(cols) for _ in terms]
    for j, g in enumerate(cols):
        ev = g.evidence
        matched = {m.patient_term: m for m in ev.matched}
        against = {m.patient_term: m for m in ev.excluded}
        unexplained = set(ev.unmatched)
        for i, t in enumerate(terms):
            if i < n_present:
                if t in matched:
                    m = matched[t]
                    direct = m.annotated_term == t or is_at_or_below(m.annotated_term, t)
                    values[i][j], kinds[i][j] = m.contribution, MATCHED if direct else ANCESTOR
                elif t in unexplained:
                    values[i][j], kinds[i][j] = no_match_contribution, UNEXPLAINED
            elif t in against:
                values[i][j], kinds[i][j] = against[t].contribution, AGAINST
            else:
                values[i][j], kinds[i][j] = 0.0, NEUTRAL
    return EvidenceMatrix(terms, [label(t) for t in terms], ["present"] * n_present + ["absent"] * (len(terms) - n_present),
                          [g.symbol for g in cols], [float(g.score) for g in cols], values, kinds)


def ranker_is_at_or_below(kb) -> Callable[[str, str], bool]:
    """``is_at_or_below`` over the ranker's in-memory is_a closure (``genedx.rank.kbdata.KbData``)."""
    def test(term: str, other: str) -> bool:
        a, b = kb.term_index.get(term), kb.term_index.get(other)
        return a is not None and b is not None and bool((kb.ancestors(a) == b).any())
    return test


def _short(text: str, n: int = 42) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def matrix_png(m: EvidenceMatrix, dpi: int = 200) -> bytes:
    """The matrix as a PNG heat map: blue supports the gene, red counts against it, grey not scored;
    each cell shows its contribution and a mark of its kind (legend under the plot).

    Sized in inches for a ~550 px wide page column at 100 px per inch, drawn at ``dpi`` 200 so it stays
    sharp on high-density screens and in print.
    """
    import matplotlib
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    vals = np.array(m.values, dtype=float)
    n_rows, n_cols = vals.shape
    finite = np.abs(vals[np.isfinite(vals)])
    vmax = max(float(finite.max()) if finite.size else 1.0, 0.1)
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="#d9d9d9")
    fig = Figure(figsize=(2.1 + 0.36 * n_cols, 1.25 + 0.21 * n_rows), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(vals), cmap=cmap, norm=TwoSlopeNorm(0.0, -vmax, vmax), aspect="auto")
    for i in range(n_rows):
        for j in range(n_cols):
            v, k = vals[i, j], m.kinds[i][j]
            if math.isnan(v):
                continue
            text = "0" if k == NEUTRAL else (f"{v:.1f}" if abs(v) >= 0.05 else f"{v:.2f}").replace("-", "−") + MARK[k]
            ax.text(j, i, text, ha="center", va="center", fontsize=5.6,
                    color="white" if abs(v) > 0.6 * vmax else "black")
    ax.set_xticks(range(n_cols), [f"{j + 1}. {g}" for j, g in enumerate(m.genes)],
                  fontsize=6.5, rotation=50, ha="left", rotation_mode="anchor")
    ax.xaxis.tick_top()
    ax.set_yticks(range(n_rows), [f"{'+' if s == 'present' else '−'} {_short(lab, 34)}"
                                  for lab, s in zip(m.labels, m.status)], fontsize=6.5)
    n_present = m.status.count("present")
    if 0 < n_present < n_rows:  # a rule between the present and the absent phenotypes
        ax.axhline(n_present - 0.5, color="black", linewidth=1.0)
    ax.tick_params(length=0, pad=2)
    cbar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cbar.set_label("log10 LR contribution", fontsize=6)
    cbar.ax.tick_params(labelsize=5.5)
    legend = "   ".join(f"{MARK[k] or '0'} {k}" for k in (MATCHED, ANCESTOR, AGAINST, UNEXPLAINED, NEUTRAL))
    ax.set_xlabel(f"+ present / − absent phenotype · {legend} · grey: not scored", fontsize=5.5, labelpad=4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.04)
    return buf.getvalue()
