"""The phenotype gene ranker: a likelihood-ratio model over the HPO is_a closure (maths in docs/ranker.md).

For every disease row ``d`` (an HPO-annotated disease, or a gene profile learned from real cases)
and every phenotype term ``c``, ``P[d, c]`` is the probability that a patient with ``d`` shows ``c``
or a descendant of it (noisy-or of the annotation frequencies below ``c``). The background ``bg[c]``
is the mean of ``P[:, c]`` over all rows (LIRICAL's background frequency).

- A present patient term ``q`` scores ``LR = max(no_match_lr, max_{c in anc(q)} P[d, c] / bg[c])``:
  an exact or more specific annotation matches at ``q``'s own information content, a sibling or a
  more general annotation only at their common ancestor's, so matches through ancestors weigh less.
  A NOT annotation of ``q`` (or an ancestor) multiplies by ``not_lr``.
- An excluded (absent) patient term ``q`` scores ``LR = (1 - P[d, q]) / (1 - bg[q])``, as LIRICAL.
- A disease scores ``sum(log10 LR)``; a gene scores its best disease.

Hand-written because no Python library scores genes this way over sparse matrices; the matrix work
itself is scipy.sparse / numpy.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import duckdb
import numpy as np
import scipy.sparse as sp

from genedx.cases.model import Case
from genedx.errors import GenedxError
from genedx.predict import Evidence, GeneScore, Prediction, TermMatch
from genedx.rank.kbdata import PHENOTYPIC_ABNORMALITY, UNKNOWN, KbData, load_kb_data
from genedx.rank.profiles import CaseProfiles, load_case_profiles


@dataclass(frozen=True)
class RankerConfig:
    """The model's constants (tuned on a fixed publication-disjoint tuning part of dev; see bench)."""

    no_match_lr: float = 0.3          # LR of a present term the disease explains by no informative ancestor
    default_frequency: float = 0.5    # annotation frequency when the release gives none
    max_frequency: float = 0.95       # cap: one annotation never makes a term certain (keeps LRs finite)
    not_lr: float = 0.01              # present term the disease is annotated NOT to have
    use_frequencies: bool = True      # ablation: False treats every annotation as default_frequency
    use_excluded: bool = True         # ablation: False ignores the patient's absent terms
    use_not: bool = True              # ablation: False ignores NOT annotations
    profile_smoothing: float = 1.0    # profile frequency = k / (n + smoothing)
    profile_mode: str = "blend"       # "blend": noisy-or of profile and each disease of the gene; "separate"
    propagation: str = "noisy_or"     # how annotation frequencies combine up the ontology: noisy_or | max
    excluded_weight: float = 0.2      # scales the log LR of absent terms (1.0 = LIRICAL; see docs/ranker.md)
    ancestor_decay: float = 0.2       # LR of a match through an ancestor c is multiplied by decay^steps(q -> c)
    case_prior: float = 0.5           # profiles only: add case_prior * log10(1 + cases of the gene) (a gene prior)
    gene_rows: bool = False           # also score each gene on the union (max) of all its diseases' annotations

    def __post_init__(self) -> None:
        if not 0 < self.no_match_lr <= 1:
            raise GenedxError("no_match_lr must be in (0, 1]")
        if not 0 < self.max_frequency < 1:
            raise GenedxError("max_frequency must be in (0, 1)")
        if self.profile_mode not in ("blend", "separate"):
            raise GenedxError("profile_mode must be 'blend' or 'separate'")
        if self.propagation not in ("noisy_or", "max"):
            raise GenedxError("propagation must be 'noisy_or' or 'max'")


@dataclass
class Query:
    """A case's terms resolved to matrix columns, with what was mapped or ignored."""

    present: list[int]
    absent: list[int]
    notes: list[str] = field(default_factory=list)


def _closure_matrix(kb: KbData) -> sp.csr_matrix:
    """terms x terms, [t, a] = 1 when a is t or an ancestor of t."""
    n = len(kb.terms)
    rows = np.repeat(np.arange(n), np.diff(kb.anc_ptr))
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, kb.anc_idx)), shape=(n, n))


def _propagate_max(freq_rows: np.ndarray, freq_cols: np.ndarray, freq: np.ndarray, n_rows: int,
                   kb: KbData, cap: float) -> sp.csr_matrix:
    """P[d, c] = max_{a below c} f[d, a]: expand each annotation to its ancestors, keep the max per cell."""
    n_anc = np.diff(kb.anc_ptr)[freq_cols]
    rows = np.repeat(freq_rows, n_anc)
    vals = np.repeat(np.minimum(freq, cap), n_anc)
    starts = kb.anc_ptr[freq_cols]
    offs = np.arange(n_anc.sum()) - np.repeat(np.cumsum(n_anc) - n_anc, n_anc)
    cols = kb.anc_idx[np.repeat(starts, n_anc) + offs].astype(np.int64)
    n_terms = len(kb.terms)
    key = rows * n_terms + cols
    order = np.lexsort((-vals, key))
    key, vals = key[order], vals[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, vals = key[first], vals[first]
    return sp.csr_matrix((vals, (key // n_terms, key % n_terms)), shape=(n_rows, n_terms))


def _max_rows(m: sp.csr_matrix, group: np.ndarray, n_groups: int) -> sp.csr_matrix:
    """Row groups of ``m`` combined by element-wise max (row i goes to group[i])."""
    coo = m.tocoo()
    key = group[coo.row].astype(np.int64) * m.shape[1] + coo.col
    order = np.lexsort((-coo.data, key))
    key, vals = key[order], coo.data[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, vals = key[first], vals[first]
    return sp.csr_matrix((vals, (key // m.shape[1], key % m.shape[1])), shape=(n_groups, m.shape[1]))


def _propagate(freq_rows: np.ndarray, freq_cols: np.ndarray, freq: np.ndarray, n_rows: int,
               closure: sp.csr_matrix, cap: float) -> sp.csr_matrix:
    """Noisy-or of direct frequencies up the closure: P[d, c] = 1 - prod_{a below c} (1 - f[d, a])."""
    logs = np.log1p(-np.minimum(freq, cap))
    direct = sp.csr_matrix((logs, (freq_rows, freq_cols)), shape=(n_rows, closure.shape[0]))
    direct.sum_duplicates()
    s = direct @ closure
    s.data = np.minimum(-np.expm1(s.data), cap)
    s.eliminate_zeros()
    return s.tocsr()


class Ranker:
    """Scores every gene in the knowledge base for a set of present / absent HPO terms.

    Load once with :meth:`load` (about 1-2 s on the real release) and keep it; :meth:`rank` then
    takes a few milliseconds per case.
    """

    def __init__(self, kb: KbData, profiles: CaseProfiles | None = None, config: RankerConfig | None = None):
        t0 = time.perf_counter()
        self.kb = kb
        self.config = config or RankerConfig()
        self.case_profiles = profiles
        self.profiles = profiles.which if profiles is not None else "none"
        self.hpo_release = kb.hpo_release
        self.labels = kb.labels
        cfg = self.config
        n_terms, n_dis = len(kb.terms), len(kb.diseases)
        self._root = kb.term_index[PHENOTYPIC_ABNORMALITY]
        closure = _closure_matrix(kb)

        freq = kb.ann_freq.copy()
        freq[np.isnan(freq)] = cfg.default_frequency
        if not cfg.use_frequencies:
            freq[:] = cfg.default_frequency
        freq = np.clip(freq, 1e-3, None)   # "0/n" annotations still say the term belongs to the disease
        if cfg.propagation == "max":
            p_dis = _propagate_max(kb.ann_row, kb.ann_col, freq, n_dis, kb, cfg.max_frequency)
        else:
            p_dis = _propagate(kb.ann_row, kb.ann_col, freq, n_dis, closure, cfg.max_frequency)
        x_dis = sp.csr_matrix((np.ones(len(kb.not_row)), (kb.not_row, kb.not_col)), shape=(n_dis, n_terms))
        x_dis.sum_duplicates()
        x_dis.data[:] = 1.0

        # Scoring rows: diseases linked to a gene, the union of each multi-disease gene's diseases,
        # then profile rows (alone and blended).
        linked = np.unique(kb.gd_row)
        row_of_dis = np.full(n_dis, -1, dtype=np.int64)
        row_of_dis[linked] = np.arange(len(linked))
        gene_idx = {g: i for i, g in enumerate(kb.genes)}
        self.genes: list[str] = list(kb.genes)
        base_p, base_x = [p_dis[linked]], [x_dis[linked]]
        base_gene_pairs = [(kb.gd_gene, row_of_dis[kb.gd_row])]      # (gene, base row) pairs
        self.row_disease: list[str | None] = [kb.diseases[d] for d in linked]
        self.row_sources: list[tuple[int, ...]] = [(int(d),) for d in linked]   # diseases explaining a row
        n_base = len(linked)
        if cfg.gene_rows:
            n_dis_of_gene = np.bincount(kb.gd_gene, minlength=len(kb.genes))
            multi = np.flatnonzero(n_dis_of_gene >= 2)
            if len(multi):
                sel = n_dis_of_gene[kb.gd_gene] >= 2
                g_pairs, d_pairs = kb.gd_gene[sel], kb.gd_row[sel]
                local = np.full(len(kb.genes), -1, dtype=np.int64)
                local[multi] = np.arange(len(multi))
                union = _max_rows(p_dis[d_pairs], local[g_pairs], len(multi))
                base_p.append(union)
                base_x.append(sp.csr_matrix((len(multi), n_terms)))
                base_gene_pairs.append((multi, n_base + np.arange(len(multi))))
                self.row_disease += [None] * len(multi)
                srcs: dict[int, list[int]] = {}
                for g, d in zip(g_pairs.tolist(), d_pairs.tolist()):
                    srcs.setdefault(g, []).append(d)
                self.row_sources += [tuple(srcs[int(g)]) for g in multi]
                n_base += len(multi)
        base_p_all = sp.vstack(base_p).tocsr()
        base_x_all = sp.vstack(base_x).tocsr()
        blocks_p, blocks_x = [base_p_all], [base_x_all]
        self.row_profile: list[int] = [-1] * n_base
        pair_gene = [g for g, _ in base_gene_pairs]
        pair_row = [r for _, r in base_gene_pairs]
        bg_sum = np.asarray(p_dis.sum(axis=0)).ravel()
        bg_n = n_dis

        if profiles is not None and profiles.genes:
            n_prof = len(profiles.genes)
            pk = profiles.present_count / (profiles.n_cases[profiles.present_gene] + cfg.profile_smoothing)
            p_prof = sp.csr_matrix((np.minimum(pk, cfg.max_frequency), (profiles.present_gene, profiles.present_col)),
                                   shape=(n_prof, n_terms))
            xk = profiles.excluded_count / (profiles.n_cases[profiles.excluded_gene] + cfg.profile_smoothing)
            x_prof = sp.csr_matrix((xk, (profiles.excluded_gene, profiles.excluded_col)), shape=(n_prof, n_terms))
            bg_sum += np.asarray(p_prof.sum(axis=0)).ravel()
            bg_n += n_prof
            for g in profiles.genes:
                if g not in gene_idx:
                    gene_idx[g] = len(self.genes)
                    self.genes.append(g)
            prof_gene = np.array([gene_idx[g] for g in profiles.genes], dtype=np.int64)
            start = n_base
            # A profile alone is a row (it makes genes without HPO annotations findable)...
            blocks_p.append(p_prof)
            blocks_x.append(x_prof)
            self.row_disease += [None] * n_prof
            self.row_sources += [()] * n_prof
            self.row_profile += list(range(n_prof))
            pair_gene.append(prof_gene)
            pair_row.append(np.arange(start, start + n_prof))
            if cfg.profile_mode == "blend":
                # ...and blended with each base row of its gene: noisy-or, so each patient term uses the
                # better of the curated and the learned frequency.
                prof_of_gene = np.full(len(self.genes), -1, dtype=np.int64)
                prof_of_gene[prof_gene] = np.arange(n_prof)
                bg_pairs = np.concatenate([g for g, _ in base_gene_pairs])
                br_pairs = np.concatenate([r for _, r in base_gene_pairs])
                sel = prof_of_gene[bg_pairs] >= 0
                g_pairs, b_pairs = bg_pairs[sel], br_pairs[sel]
                pp = p_prof[prof_of_gene[g_pairs]]
                pb = base_p_all[b_pairs]
                blend = pb + pp - pb.multiply(pp)
                blend.data = np.minimum(blend.data, cfg.max_frequency)
                start = start + n_prof
                blocks_p.append(sp.csr_matrix(blend))
                blocks_x.append(sp.csr_matrix(base_x_all[b_pairs].maximum(x_prof[prof_of_gene[g_pairs]])))
                self.row_disease += [self.row_disease[b] for b in b_pairs]
                self.row_sources += [self.row_sources[b] for b in b_pairs]
                self.row_profile += prof_of_gene[g_pairs].tolist()
                pair_gene.append(g_pairs)
                pair_row.append(np.arange(start, start + len(g_pairs)))

        self.bg = np.maximum(bg_sum / bg_n, 0.5 / bg_n)
        p_all = sp.vstack(blocks_p).tocsc().astype(np.float32)
        self._p = p_all                                           # probabilities, for absent terms
        self._lr = (p_all @ sp.diags((1.0 / self.bg).astype(np.float32))).tocsc()  # P / bg, for present
        self._x = sp.vstack(blocks_x).tocsc()
        self._row_of_dis = row_of_dis
        # Candidate ancestors of every term (root excluded) with their decay weights, as CSR arrays.
        keep = kb.anc_idx != self._root
        term_of = np.repeat(np.arange(n_terms), np.diff(kb.anc_ptr))[keep]
        self._cand_idx = kb.anc_idx[keep].astype(np.int64)
        self._cand_w = cfg.ancestor_decay ** kb.anc_dist[keep].astype(np.float64)
        self._cand_ptr = np.concatenate([[0], np.cumsum(np.bincount(term_of, minlength=n_terms))])
        # Matching only needs candidates that can beat no_match_lr for SOME row: dropping the others
        # (mostly very general ancestors) changes no score and makes ranking several times faster.
        colmax = np.asarray(self._lr.max(axis=0).todense()).ravel()
        useful = colmax[self._cand_idx] * self._cand_w > cfg.no_match_lr
        self._m_idx, self._m_w = self._cand_idx[useful], self._cand_w[useful].astype(np.float32)
        self._m_ptr = np.concatenate([[0], np.cumsum(np.bincount(term_of[useful], minlength=n_terms))])
        # Gene prior from stored real cases (how often a gene is reported): log10(1 + n_cases) x weight.
        self._prior = np.zeros(len(self.genes))
        if cfg.case_prior and profiles is not None and profiles.genes:
            self._prior[[gene_idx[g] for g in profiles.genes]] = cfg.case_prior * np.log10(1 + profiles.n_cases)
        self._pair_gene = np.concatenate(pair_gene).astype(np.int64)
        self._pair_row = np.concatenate(pair_row).astype(np.int64)
        self._gene_index = gene_idx
        order = np.lexsort((self._pair_row, self._pair_gene))     # by gene, then row
        self._pg_row = self._pair_row[order]
        self._pg_len = np.bincount(self._pair_gene, minlength=len(self.genes))
        self._pg_start = np.concatenate([[0], np.cumsum(self._pg_len)[:-1]])
        for m in (self._p, self._lr, self._x):
            m.sort_indices()
        self.n_rows = p_all.shape[0]
        self._direct: sp.csr_matrix = sp.csr_matrix(
            (freq, (kb.ann_row, kb.ann_col)), shape=(n_dis, n_terms))
        self._prof_direct = (sp.csr_matrix((profiles.direct_count, (profiles.direct_gene, profiles.direct_col)),
                                           shape=(len(profiles.genes), n_terms))
                             if profiles is not None and profiles.genes else None)
        self._dis_index = {d: i for i, d in enumerate(kb.diseases)}
        n_anc = np.diff(kb.anc_ptr)
        # [t, c] = distance + 1 when c is t or an ancestor (for finding the annotation under a match)
        self._desc = sp.csc_matrix((kb.anc_dist.astype(np.float32) + 1,
                                    (np.repeat(np.arange(n_terms), n_anc), kb.anc_idx)), shape=(n_terms, n_terms))
        self._desc.sort_indices()
        self.build_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, profiles: str = "none",
             config: RankerConfig | None = None) -> "Ranker":
        """Read the knowledge base (and, unless ``profiles='none'``, the stored cases' gene profiles)."""
        t0 = time.perf_counter()
        kb = load_kb_data(con)
        prof = load_case_profiles(con, kb, profiles)
        r = cls(kb, prof, config)
        r.load_seconds = time.perf_counter() - t0
        return r

    def with_config(self, config: RankerConfig) -> "Ranker":
        """The same data under other constants (for ablations and tuning), without re-reading the DB."""
        return Ranker(self.kb, self.case_profiles, config)

    @property
    def options(self) -> dict[str, Any]:
        """What every result records about how it was made."""
        opts: dict[str, Any] = {"profiles": self.profiles}
        if self.case_profiles is not None:
            opts["profile_cases"] = self.case_profiles.total_cases
            opts["profile_genes"] = len(self.case_profiles.genes)
        defaults = RankerConfig()
        changed = {k: v for k, v in asdict(self.config).items() if getattr(defaults, k) != v}
        if changed:
            opts["config"] = changed
        return opts

    # ------------------------------------------------------------------ queries
    def resolve(self, ids: Iterable[str], what: str = "term") -> tuple[list[int], list[str]]:
        """HPO ids -> matrix columns. Alt/obsolete ids are mapped (``genedx.cases.terms.TermMapper``);
        an unknown id, or an obsolete one without a replacement, is a GenedxError naming it."""
        cols, notes = [], []
        for raw in ids:
            tid = str(raw).strip().upper().replace("_", ":")
            cur, kind = self.kb.mapper.map(tid)
            if kind == UNKNOWN:
                raise GenedxError(f"unknown HPO term {raw!r} ({what})")
            if cur is None:
                raise GenedxError(f"HPO term {tid} ({what}) is obsolete and has no replacement")
            if cur != tid:
                notes.append(f"{tid} mapped to {cur} ({self.labels.get(cur)})")
            col = self.kb.term_index.get(cur)
            if col is None:
                notes.append(f"{cur} ({self.labels.get(cur)}) is not a phenotypic abnormality: ignored")
                continue
            if col == self._root:
                notes.append(f"{cur} is the root phenotype term: ignored")
                continue
            if col not in cols:
                cols.append(col)
        return cols, notes

    def query(self, present: Iterable[str], absent: Iterable[str] = ()) -> Query:
        """Resolve a case's terms; keep only the most specific present terms (an ancestor adds nothing)."""
        pres, notes = self.resolve(present, "present")
        absn, notes2 = self.resolve(absent, "absent")
        notes += notes2
        anc_of_present = {int(a) for q in pres for a in self.kb.ancestors(q) if a != q}
        specific = [q for q in pres if q not in anc_of_present]
        pres_set = set(pres)
        conflict = [a for a in absn if a in pres_set or a in anc_of_present]
        for a in conflict:
            notes.append(f"{self.kb.terms[a]} is both absent and implied present: absent ignored")
        absn = [a for a in absn if a not in conflict]
        if not specific:
            raise GenedxError("no present phenotypic-abnormality term to rank on")
        return Query(specific, absn, notes)

    def _candidates(self, q: int) -> np.ndarray:
        """Ancestors of column q (self first, root excluded): where the patient term may match."""
        return self._cand_idx[self._cand_ptr[q]:self._cand_ptr[q + 1]]

    def _candidate_weights(self, q: int) -> np.ndarray:
        """ancestor_decay ** is_a steps from q to each candidate."""
        return self._cand_w[self._cand_ptr[q]:self._cand_ptr[q + 1]]

    # ------------------------------------------------------------------ scoring
    def row_scores(self, query: Query) -> np.ndarray:
        """log10 likelihood ratio of every scoring row (disease / profile / blend) for the query."""
        cfg = self.config
        cands = [self._candidates(q) for q in query.present]
        spans = [(self._m_ptr[q], self._m_ptr[q + 1]) for q in query.present]
        spans = [(lo, hi) for lo, hi in spans if hi > lo]
        # terms no row can match score no_match_lr everywhere
        score = np.full(self.n_rows, (len(query.present) - len(spans)) * np.log10(cfg.no_match_lr))
        if spans:
            idx = np.concatenate([self._m_idx[lo:hi] for lo, hi in spans])
            w = np.concatenate([self._m_w[lo:hi] for lo, hi in spans])
            union, inv = np.unique(idx, return_inverse=True)
            sub = self._lr[:, union].toarray()                   # rows x |union|
            offsets = np.cumsum([0] + [hi - lo for lo, hi in spans[:-1]])
            vals = sub[:, inv] * w
            best = np.maximum.reduceat(vals, offsets, axis=1)    # rows x matched present terms
            score += np.log10(np.maximum(best, cfg.no_match_lr)).sum(axis=1)
        if cfg.use_not and self._x.nnz:
            x = self._x
            for c_list in cands:
                worst = np.zeros(self.n_rows)
                for c in c_list:
                    lo, hi = x.indptr[c], x.indptr[c + 1]
                    if hi > lo:
                        rows = x.indices[lo:hi]
                        worst[rows] = np.maximum(worst[rows], x.data[lo:hi])
                hit = worst > 0
                if hit.any():
                    score[hit] += np.log10(np.maximum(1.0 - worst[hit] * (1 - cfg.not_lr), cfg.not_lr))
        if cfg.use_excluded and query.absent:
            p = self._p
            for a in query.absent:
                w = cfg.excluded_weight
                score += -w * np.log10(1.0 - self.bg[a])
                lo, hi = p.indptr[a], p.indptr[a + 1]
                score[p.indices[lo:hi]] += w * np.log10(1.0 - p.data[lo:hi])
        return score

    def gene_scores(self, query: Query) -> tuple[np.ndarray, np.ndarray]:
        """(score per gene, best scoring row per gene), genes in ``self.genes`` order."""
        return self._gene_scores(self.row_scores(query))

    def _gene_scores(self, rs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # pairs are sorted by gene once (in __init__): segment max, then the first row reaching it
        pr = rs[self._pg_row]
        scores = np.maximum.reduceat(pr, self._pg_start)
        hit = np.where(pr == np.repeat(scores, self._pg_len), np.arange(len(pr)), len(pr))
        best_row = self._pg_row[np.minimum.reduceat(hit, self._pg_start)]
        return scores + self._prior, best_row

    def ranked(self, query: Query) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every gene best first (ties by symbol), with scores and best rows in that order."""
        scores, best_row = self.gene_scores(query)
        order = np.lexsort((np.arange(len(self.genes)), -scores))  # genes are symbol-sorted within KB
        return [self.genes[i] for i in order], scores[order], best_row[order]

    def rank(self, present: Iterable[str], absent: Iterable[str] = (), sex: str | None = None,
             age: str | None = None, top: int = 10, explain: bool = True) -> list[GeneScore]:
        """The ``top`` genes for a case, best first, each with the disease that carried it.

        ``sex`` and ``age`` are accepted for the predictor contract but do not change scores yet.
        """
        q = self.query(present, absent)
        return self.rank_query(q, top=top, explain=explain)

    def rank_query(self, q: Query, top: int = 10, explain: bool = True) -> list[GeneScore]:
        """Like :meth:`rank` for an already resolved :class:`Query`."""
        rs = self.row_scores(q)
        scores, best_row = self._gene_scores(rs)
        k = min(top, len(self.genes))
        part = np.argpartition(-scores, k - 1)[:k] if k < len(self.genes) else np.arange(len(self.genes))
        # Ties at the cut: take every gene with the k-th score, then order by (score, symbol).
        kth = scores[part].min()
        cand = np.flatnonzero(scores >= kth)
        cand = sorted(cand, key=lambda i: (-scores[i], self.genes[i]))[:k]
        out = []
        for i in cand:
            r = int(best_row[i])
            dis = self._row_disease_label(r, rs)
            gs = GeneScore(symbol=self.genes[i], score=float(scores[i]), disease=dis[0], disease_name=dis[1])
            if explain:
                gs.evidence = self.explain(q, r, rs)
                gs.evidence.notes = list(q.notes) + gs.evidence.notes
            out.append(gs)
        return out

    def score_gene(self, q: Query, symbol: str, explain: bool = True) -> GeneScore | None:
        """One gene's score, disease and evidence wherever it ranks; None when the ranker lacks the gene."""
        i = self._gene_index.get(symbol)
        if i is None:
            return None
        rs = self.row_scores(q)
        scores, best_row = self._gene_scores(rs)
        r = int(best_row[i])
        d, name = self._row_disease_label(r, rs)
        gs = GeneScore(symbol, float(scores[i]), d, name)
        if explain:
            gs.evidence = self.explain(q, r, rs)
            gs.evidence.notes = list(q.notes) + gs.evidence.notes
        return gs

    # ------------------------------------------------------------------ explanations
    def _row_disease_label(self, r: int, rs: np.ndarray | None = None) -> tuple[str | None, str | None]:
        d = self.row_disease[r]
        if d is not None:
            return d, self.kb.disease_names.get(d)
        if self.row_sources[r]:
            # a gene's union row: name the gene's disease that scores best on its own
            src = self.row_sources[r]
            if rs is not None:
                best = max(src, key=lambda s: rs[self._row_of_dis[s]])
            else:
                best = src[0]
            d = self.kb.diseases[best]
            return d, self.kb.disease_names.get(d)
        g = self.case_profiles.genes[self.row_profile[r]] if self.case_profiles else None
        return None, (f"{g} cases ({self.profiles} split)" if g else None)

    def _annotated_under(self, r: int, c: int) -> int | None:
        """The row's direct annotation (or profile term) at or below ``c``: closest, then most frequent."""
        best, best_key = None, None
        sources = []
        for d in self.row_sources[r]:
            sources.append((self._direct, d))
        if self.row_profile[r] >= 0 and self._prof_direct is not None:
            sources.append((self._prof_direct, self.row_profile[r]))
        d = self._desc
        lo, hi = d.indptr[c], d.indptr[c + 1]
        below, dist = d.indices[lo:hi], d.data[lo:hi]   # descendants-or-self of c, distance + 1
        for m, i in sources:
            cols, vals = m.indices[m.indptr[i]:m.indptr[i + 1]], m.data[m.indptr[i]:m.indptr[i + 1]]
            _, ia, ib = np.intersect1d(cols, below, assume_unique=True, return_indices=True)
            for a, f, dd in zip(cols[ia], vals[ia], dist[ib]):
                key = (-dd, float(f))
                if best_key is None or key > best_key:
                    best, best_key = int(a), key
        return best

    def _match(self, col: int, ann: int | None, contribution: float) -> TermMatch:
        t, a = self.kb.terms[col], (self.kb.terms[ann] if ann is not None else None)
        return TermMatch(t, a or "", round(float(contribution), 4), self.labels.get(t), self.labels.get(a) if a else None)

    def explain(self, q: Query, r: int, rs: np.ndarray | None = None) -> Evidence:
        """Which patient terms matched which annotated terms of row ``r``, and what counted against it."""
        cfg = self.config
        d, name = self._row_disease_label(r, rs)
        ev = Evidence(disease=d, disease_name=name)
        if self.row_disease[r] is None and len(self.row_sources[r]) > 1:
            ev.notes.append("scored on the annotations of all the gene's diseases together: "
                            + ", ".join(self.kb.diseases[s] for s in self.row_sources[r]))
        if self.row_profile[r] >= 0:
            ev.notes.append(f"includes a profile from {self.case_profiles.n_cases[self.row_profile[r]]} "
                            f"stored {self.profiles}-split cases")
        for col in q.present:
            cands = self._candidates(col)
            vals = np.array([self._cell(self._lr, r, int(c)) for c in cands]) * self._candidate_weights(col)
            j = int(np.argmax(vals)) if len(vals) else 0
            matched = len(vals) and vals[j] > cfg.no_match_lr
            contrib = float(np.log10(vals[j] if matched else cfg.no_match_lr))
            ann = None
            if matched:
                ann = self._annotated_under(r, int(cands[j]))
                if ann is None:
                    ann = int(cands[j])
            if cfg.use_not:
                worst = max((self._cell(self._x, r, int(c)) for c in cands), default=0.0)
                if worst > 0:
                    contrib += float(np.log10(max(1.0 - worst * (1 - cfg.not_lr), cfg.not_lr)))
                    ev.notes.append(f"{self.kb.terms[col]} is excluded (NOT) for this disease or its cases")
            if matched:
                ev.matched.append(self._match(col, ann, contrib))
            else:
                ev.unmatched.append(self.kb.terms[col])
        if cfg.use_excluded:
            for col in q.absent:
                p = self._cell(self._p, r, col)
                lr = (1.0 - p) / (1.0 - self.bg[col])
                if lr < 1.0:
                    ann = self._annotated_under(r, col)
                    ev.excluded.append(self._match(col, ann if ann is not None else col,
                                                   cfg.excluded_weight * np.log10(lr)))
        ev.matched.sort(key=lambda m: -m.contribution)
        ev.excluded.sort(key=lambda m: m.contribution)
        return ev

    @staticmethod
    def _cell(m: sp.csc_matrix, r: int, c: int) -> float:
        lo, hi = m.indptr[c], m.indptr[c + 1]
        idx = np.searchsorted(m.indices[lo:hi], r)
        if idx < hi - lo and m.indices[lo + idx] == r:
            return float(m.data[lo + idx])
        return 0.0

    def rank_of(self, query: Query, gene: str) -> int | None:
        """1-based rank of ``gene`` among all genes (ties count pessimistically); None when unknown."""
        i = self._gene_index.get(gene)
        if i is None:
            return None
        scores, _ = self.gene_scores(query)
        return int((scores > scores[i]).sum() + (scores == scores[i]).sum())


class RankerPredictor:
    """The ranker behind the ``Predictor`` protocol (batch scoring, evaluation, the app)."""

    name = "ranker"

    def __init__(self, ranker: Ranker, explain: bool = False):
        self.ranker = ranker
        self.hpo_release = ranker.hpo_release
        self.explain = explain

    def predict(self, cases: Sequence[Case], top: int = 10) -> list[Prediction]:
        """One Prediction per case; a case the ranker cannot use raises GenedxError naming it."""
        out = []
        for case in cases:
            try:
                q = self.ranker.query(case.present, case.absent)
            except GenedxError as e:
                raise GenedxError(f"case {case.id}: {e}") from None
            genes = self.ranker.rank_query(q, top=top, explain=self.explain)
            opts = dict(self.ranker.options)
            if q.notes:
                opts["notes"] = q.notes
            out.append(Prediction(case.id, genes, self.name, self.hpo_release, options=opts))
        return out
