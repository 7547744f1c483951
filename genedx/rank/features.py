"""Features of the ranker's top-K candidates for one case: what the learned re-ranker sees.

Everything is read off what :class:`genedx.rank.ranker.Ranker` already computes for a query (row
scores, the best row per gene, per-term likelihood ratios, the gene prior), so a case costs one
``row_scores`` pass plus a few K x terms slices. The list of features is :data:`FEATURES` (one value
per candidate gene, NaN where a feature does not apply, which LightGBM treats as missing);
docs/reranker.md explains each.

Absent-term features are kept together in :data:`ABSENT_FEATURES`: in phenopacket-store the absent
terms are mostly features of the patient's own disease that he lacks (a curation habit, not
medicine), so a model can be trained without them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genedx.rank.ranker import Query, Ranker

# name -> meaning (the order is the column order of the feature matrix)
FEATURE_DOCS: dict[str, str] = {
    # the ranker's own verdict
    "score": "the ranker's gene score (best row, log10 LR, plus the gene prior)",
    "rank": "the ranker's rank of the gene (1 = best)",
    "gap_top": "score of the ranker's first gene minus this gene's score",
    "gap_prev": "score of the gene ranked just above minus this gene's score (0 for the first)",
    "gap_next": "this gene's score minus the score of the gene ranked just below",
    "score_rel": "(score - mean score of the K candidates) / their standard deviation",
    # where the evidence comes from
    "prior": "the gene prior added to the score (case_prior * log10(1 + publications))",
    "score_noprior": "score without the gene prior",
    "rank_noprior": "rank among all genes by score without the prior",
    "score_annot": "best score over the gene's HPO-annotation rows only (no profile, no prior); NaN: none",
    "rank_annot": "rank among all genes by score_annot",
    "score_profile": "score of the gene's learned profile row alone (no prior); NaN: no profile",
    "profile_gain": "score_noprior - score_annot: what the learned profile adds",
    "best_is_blend": "1 when the best row blends a disease with the gene's profile",
    "best_is_profile": "1 when the best row is the gene's profile alone",
    "log_profile_cases": "log10(1 + stored cases behind the gene's profile)",
    "log_profile_pubs": "log10(1 + their distinct publications)",
    "n_diseases": "number of HPO diseases linked to the gene",
    "log_row_terms": "log10 of the number of terms the best row makes likely (its annotation breadth)",
    # how much of the case the best row explains
    "n_matched": "present terms matched through an informative ancestor (LR > no_match_lr)",
    "frac_matched": "n_matched / present terms",
    "n_unmatched": "present terms not explained (LR = no_match_lr)",
    "n_direct": "present terms annotated at or below themselves (exact or more specific annotation)",
    "frac_direct": "n_direct / present terms",
    "ic_explained": "information content (-log10 bg) of the matched terms / that of all present terms",
    "present_sum": "sum of the present terms' log10 LR on the best row",
    "present_max": "largest single present-term log10 LR",
    "present_mean_matched": "mean log10 LR of the matched terms (NaN: none matched)",
    # how distinctive that evidence is among the K candidates
    "n_best_terms": "matched present terms on which this gene has the largest LR of the K candidates",
    "n_rare_matched": "matched present terms that at most 20% of the K candidates match",
    "distinct_ic": "sum over matched terms of IC x (1 - share of candidates matching it), / case_ic",
    "present_sum_rel": "present_sum minus the median present_sum of the K candidates",
    # the other direction: how much of the gene's phenotype the case shows (present terms only; the
    # ranker's LR only asks how well the gene explains the case, so a broad gene is never penalised)
    "gic_sim": "simGIC of the case's and the best row's term closures: IC(both) / IC(either)",
    "row_ic_covered": "IC of the best row's closure that the case's closure shares / the row's closure IC",
    "row_freq_covered": "frequency-weighted IC the best row expects (sum P x IC) that falls in the case's closure, as a share",
    "gic_sim_rel": "gic_sim minus the best gic_sim of the K candidates",
    "row_freq_covered_rel": "row_freq_covered minus the best of the K candidates",
    "sys_p_mean": "mean over the case's organ systems (children of the root the case touches) of P[best row, system]",
    "sys_missing": "organ systems the best row shows with P >= 0.5 that the case does not touch",
    # the case itself (the same for every candidate)
    "case_n_present": "most specific present terms of the case",
    "case_ic": "summed information content of the case's present terms",
    "case_gap12": "score of the ranker's first gene minus its second (how decided the ranker is)",
    # absent terms
    "case_n_absent": "absent terms of the case",
    "absent_sum": "summed weighted log10 LR of the absent terms on the best row",
    "n_absent_against": "absent terms the best row makes likelier than the background (they count against)",
    "frac_absent_against": "n_absent_against / absent terms (NaN: no absent term)",
    "absent_min": "most negative absent-term log10 LR (NaN: no absent term)",
    "score_noabsent": "score minus absent_sum: the score the gene would have without absent terms",
}
FEATURES: tuple[str, ...] = tuple(FEATURE_DOCS)
ABSENT_FEATURES: frozenset[str] = frozenset({"case_n_absent", "absent_sum", "n_absent_against",
                                             "frac_absent_against", "absent_min", "score_noabsent"})
FEATURE_GROUPS: dict[str, frozenset[str]] = {"absent": ABSENT_FEATURES}
_COL = {f: i for i, f in enumerate(FEATURES)}


@dataclass
class Candidates:
    """The ranker's top-K genes of one case, in ranker order, with their feature rows."""

    query: Query
    genes: list[str]           # symbols, ranker order
    gene_idx: np.ndarray       # indices into ranker.genes
    rows: np.ndarray           # best scoring row per candidate
    scores: np.ndarray         # the ranker's scores
    X: np.ndarray              # len(genes) x len(FEATURES), float32
    row_scores: np.ndarray     # every row's score (kept for explanations)


class FeatureContext:
    """Per-ranker constants the features need, computed once (masks over rows and gene pairs)."""

    def __init__(self, ranker: Ranker):
        self.ranker = ranker
        prof = np.asarray(ranker.row_profile)
        is_dis = np.array([len(s) > 0 for s in ranker.row_sources])
        self.row_blend = (prof >= 0) & is_dis
        self.row_profile_only = (prof >= 0) & ~is_dis
        self.row_annot = prof < 0
        pg_row = ranker._pg_row
        self.pair_annot = self.row_annot[pg_row]
        self.pair_profile = self.row_profile_only[pg_row]
        n_genes = len(ranker.genes)
        self.sym_rank = np.argsort(np.argsort(np.array(ranker.genes, dtype=object)))
        self.prior = ranker._prior
        cp = ranker.case_profiles
        self.prof_cases = np.zeros(n_genes)
        self.prof_pubs = np.zeros(n_genes)
        if cp is not None and cp.genes:
            gi = np.array([ranker._gene_index[g] for g in cp.genes])
            self.prof_cases[gi] = cp.n_cases
            self.prof_pubs[gi] = cp.n_publications if cp.n_publications is not None else cp.n_cases
        kb = ranker.kb
        self.n_diseases = np.bincount(kb.gd_gene, minlength=n_genes).astype(float)[:n_genes] \
            if len(kb.gd_gene) else np.zeros(n_genes)
        if len(self.n_diseases) < n_genes:
            self.n_diseases = np.concatenate([self.n_diseases, np.zeros(n_genes - len(self.n_diseases))])
        p_csr = ranker._p.tocsr()
        self.row_terms = np.diff(p_csr.indptr).astype(float)
        self.p_csr = p_csr
        self.lr_csr = ranker._lr.tocsr()
        self.ic = -np.log10(ranker.bg)
        root = ranker._root
        self.ic_nonroot = self.ic.copy()
        self.ic_nonroot[root] = 0.0
        self.row_closure_ic = (p_csr != 0).astype(np.float64) @ self.ic_nonroot     # IC of each row's closure
        self.row_expected_ic = p_csr @ self.ic_nonroot                              # sum_c P[row, c] IC(c)
        # organ systems: the children of the root (is_a distance 1)
        term_of = np.repeat(np.arange(len(kb.terms)), np.diff(kb.anc_ptr))
        self.systems = np.unique(term_of[(kb.anc_idx == root) & (kb.anc_dist == 1)])
        self.row_sys_p = p_csr[:, self.systems].toarray()                         # rows x systems

    def _gene_max(self, pr: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Per gene, the max of pair scores ``pr`` over the pairs in ``mask`` (-inf when none)."""
        r = self.ranker
        return np.maximum.reduceat(np.where(mask, pr, -np.inf), r._pg_start)


def top_candidates(scores: np.ndarray, sym_rank: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best genes, ordered like ``Ranker.rank_query`` (score, then symbol)."""
    n = len(scores)
    k = min(k, n)
    if k < n:
        kth = np.partition(-scores, k - 1)[k - 1]
        cand = np.flatnonzero(-scores <= kth)
    else:
        cand = np.arange(n)
    order = np.lexsort((sym_rank[cand], -scores[cand]))
    return cand[order][:k]


def _rank_among(all_scores: np.ndarray, values: np.ndarray) -> np.ndarray:
    """1-based rank of each value among ``all_scores`` (ties optimistic); NaN for -inf values."""
    s = np.sort(all_scores)
    r = (len(s) - np.searchsorted(s, values, side="right") + 1).astype(float)
    r[~np.isfinite(values)] = np.nan
    return r


def candidate_features(ctx: FeatureContext, q: Query, top: int = 50) -> Candidates:
    """The ranker's top-``top`` genes for ``q`` with one feature row each (see :data:`FEATURES`)."""
    r = ctx.ranker
    cfg = r.config
    rs = r.row_scores(q)
    scores, best_row = r._gene_scores(rs)
    cand = top_candidates(scores, ctx.sym_rank, top)
    k = len(cand)
    rows = best_row[cand]
    X = np.full((k, len(FEATURES)), np.nan, dtype=np.float64)

    def put(name: str, v) -> None:
        X[:, _COL[name]] = v

    sc = scores[cand]
    put("score", sc)
    put("rank", np.arange(1, k + 1))
    put("gap_top", sc[0] - sc)
    put("gap_prev", np.concatenate([[0.0], sc[:-1] - sc[1:]]))
    nxt_score = scores[top_candidates(scores, ctx.sym_rank, k + 1)[-1]] if k < len(scores) else sc[-1]
    put("gap_next", np.concatenate([sc[:-1] - sc[1:], [sc[-1] - nxt_score]]))
    put("score_rel", (sc - sc.mean()) / (sc.std() + 1e-6))

    # evidence sources: annotation rows, the profile row alone, the prior
    pr = rs[r._pg_row]
    noprior = scores - ctx.prior
    annot = ctx._gene_max(pr, ctx.pair_annot)
    prof = ctx._gene_max(pr, ctx.pair_profile)
    put("prior", ctx.prior[cand])
    put("score_noprior", noprior[cand])
    put("rank_noprior", _rank_among(noprior, noprior[cand]))
    a = annot[cand]
    put("score_annot", np.where(np.isfinite(a), a, np.nan))
    put("rank_annot", _rank_among(annot[np.isfinite(annot)], a))
    pf = prof[cand]
    put("score_profile", np.where(np.isfinite(pf), pf, np.nan))
    put("profile_gain", np.where(np.isfinite(a), noprior[cand] - a, np.nan))
    put("best_is_blend", ctx.row_blend[rows].astype(float))
    put("best_is_profile", ctx.row_profile_only[rows].astype(float))
    put("log_profile_cases", np.log10(1 + ctx.prof_cases[cand]))
    put("log_profile_pubs", np.log10(1 + ctx.prof_pubs[cand]))
    put("n_diseases", ctx.n_diseases[cand])
    put("log_row_terms", np.log10(1 + ctx.row_terms[rows]))

    # per present term: the best LR over its informative ancestors, on each candidate's best row
    n_pres = len(q.present)
    lr_rows = ctx.lr_csr[rows]                                  # k x terms (sparse)
    best = np.zeros((k, n_pres))
    for j, t in enumerate(q.present):
        lo, hi = r._m_ptr[t], r._m_ptr[t + 1]
        if hi > lo:
            sub = lr_rows[:, r._m_idx[lo:hi]].toarray() * r._m_w[lo:hi]
            best[:, j] = sub.max(axis=1)
    matched = best > cfg.no_match_lr
    contrib = np.log10(np.maximum(best, cfg.no_match_lr))
    direct = lr_rows[:, q.present].toarray() > 0
    ic = ctx.ic[q.present]
    n_m = matched.sum(axis=1)
    put("n_matched", n_m)
    put("frac_matched", n_m / n_pres)
    put("n_unmatched", n_pres - n_m)
    put("n_direct", direct.sum(axis=1))
    put("frac_direct", direct.sum(axis=1) / n_pres)
    put("ic_explained", (matched * ic).sum(axis=1) / max(ic.sum(), 1e-9))
    put("present_sum", contrib.sum(axis=1))
    put("present_max", contrib.max(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        put("present_mean_matched", np.where(n_m > 0, (contrib * matched).sum(axis=1) / n_m, np.nan))
    share = matched.mean(axis=0)                                # per term: candidates matching it
    put("n_best_terms", (matched & (best >= best.max(axis=0) - 1e-9)).sum(axis=1))
    put("n_rare_matched", (matched & (share <= 0.2)).sum(axis=1))
    put("distinct_ic", (matched * (ic * (1 - share))).sum(axis=1) / max(ic.sum(), 1e-9))
    ps = contrib.sum(axis=1)
    put("present_sum_rel", ps - np.median(ps))
    # reverse coverage over is_a closures (root excluded: its IC is ~0 anyway)
    closure = np.unique(np.concatenate([r.kb.ancestors(t) for t in q.present]))
    c_ic = np.zeros(len(ctx.ic))
    c_ic[closure] = ctx.ic_nonroot[closure]
    p_rows = ctx.p_csr[rows]
    inter = (p_rows != 0).astype(np.float64) @ c_ic
    case_closure_ic = c_ic.sum()
    union = ctx.row_closure_ic[rows] + case_closure_ic - inter
    gic = inter / np.maximum(union, 1e-9)
    put("gic_sim", gic)
    put("row_ic_covered", inter / np.maximum(ctx.row_closure_ic[rows], 1e-9))
    fcov = (p_rows @ c_ic) / np.maximum(ctx.row_expected_ic[rows], 1e-9)
    put("row_freq_covered", fcov)
    put("gic_sim_rel", gic - gic.max())
    put("row_freq_covered_rel", fcov - fcov.max())
    sys_hit = np.isin(ctx.systems, closure)
    sp_rows = ctx.row_sys_p[rows]
    put("sys_p_mean", sp_rows[:, sys_hit].mean(axis=1) if sys_hit.any() else np.nan)
    put("sys_missing", ((sp_rows >= 0.5) & ~sys_hit).sum(axis=1))
    put("case_n_present", n_pres)
    put("case_ic", ic.sum())
    put("case_gap12", sc[0] - sc[1] if k > 1 else 0.0)

    # absent terms (LIRICAL's (1 - P) / (1 - bg), weighted as in the ranker)
    n_abs = len(q.absent)
    put("case_n_absent", n_abs)
    if n_abs and cfg.use_excluded:
        p = ctx.p_csr[rows][:, q.absent].toarray()
        bg = r.bg[q.absent]
        lr = cfg.excluded_weight * (np.log10(1.0 - p) - np.log10(1.0 - bg))
        against = p > bg
        put("absent_sum", lr.sum(axis=1))
        put("n_absent_against", against.sum(axis=1))
        put("frac_absent_against", against.sum(axis=1) / n_abs)
        put("absent_min", lr.min(axis=1))
        put("score_noabsent", sc - lr.sum(axis=1))
    else:
        put("absent_sum", 0.0)
        put("n_absent_against", 0.0)
        put("score_noabsent", sc)
    return Candidates(q, [r.genes[i] for i in cand], cand, rows, sc, X.astype(np.float32), rs)


def feature_columns(names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Column indices of ``names`` in the full feature matrix (unknown names are a KeyError)."""
    return np.array([_COL[n] for n in names], dtype=np.int64)


def select_features(exclude: list[str] | tuple[str, ...] = ()) -> tuple[str, ...]:
    """:data:`FEATURES` minus ``exclude`` (feature names, or group names such as ``absent``)."""
    from genedx.errors import GenedxError

    drop: set[str] = set()
    for e in exclude:
        if e in FEATURE_GROUPS:
            drop |= FEATURE_GROUPS[e]
        elif e in _COL:
            drop.add(e)
        else:
            raise GenedxError(f"unknown feature or group {e!r} (groups: {', '.join(FEATURE_GROUPS)})")
    return tuple(f for f in FEATURES if f not in drop)
