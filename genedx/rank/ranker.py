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
from genedx.rank.rows import build_rows


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
    case_prior: float = 1.5           # profiles only: add case_prior * log10(1 + n) to the gene's score (a gene prior)
    prior_unit: str = "publications"  # n above counts the gene's stored real "publications" or "cases"
    gene_rows: bool = False           # also score each gene on the union (max) of all its diseases' annotations

    def __post_init__(self) -> None:
        if not 0 < self.no_match_lr <= 1:
            raise GenedxError("no_match_lr must be in (0, 1]")
        if not 0 < self.max_frequency < 1:
            raise GenedxError("max_frequency must be in (0, 1)")
        if self.profile_mode not in ("blend", "separate"):
            raise GenedxError("profile_mode must be 'blend' or 'separate'")
        if self.prior_unit not in ("publications", "cases"):
            raise GenedxError("prior_unit must be 'publications' or 'cases'")
        if self.propagation not in ("noisy_or", "max"):
            raise GenedxError("propagation must be 'noisy_or' or 'max'")


@dataclass
class Query:
    """A case's terms resolved to matrix columns, with what was mapped or ignored."""

    present: list[int]
    absent: list[int]
    notes: list[str] = field(default_factory=list)


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
        rows = build_rows(kb, profiles, cfg)
        self.genes, self._gene_index = rows.genes, rows.gene_index
        self.row_disease, self.row_sources, self.row_profile = rows.row_disease, rows.row_sources, rows.row_profile
        self.bg = rows.bg
        self._p = rows.p                                            # probabilities, for absent terms
        self._lr = (rows.p @ sp.diags((1.0 / self.bg).astype(np.float32))).tocsc()  # P / bg, for present
        self._lr.sort_indices()
        self._x = rows.x
        gene_idx, freq = rows.gene_index, rows.direct_freq
        self._row_of_dis = rows.row_of_dis
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
        # Gene prior from stored real cases (how often a gene is reported): log10(1 + n) x weight, n the
        # gene's publications by default (one cohort paper with 40 cases is one report, not 40).
        self._prior = np.zeros(len(self.genes))
        if cfg.case_prior and profiles is not None and profiles.genes:
            n = profiles.n_cases
            if cfg.prior_unit == "publications" and profiles.n_publications is not None:
                n = profiles.n_publications
            self._prior[[gene_idx[g] for g in profiles.genes]] = cfg.case_prior * np.log10(1 + n)
        self._pair_gene, self._pair_row = rows.pair_gene, rows.pair_row
        order = np.lexsort((self._pair_row, self._pair_gene))     # by gene, then row
        self._pg_row = self._pair_row[order]
        self._pg_len = np.bincount(self._pair_gene, minlength=len(self.genes))
        self._pg_start = np.concatenate([[0], np.cumsum(self._pg_len)[:-1]])
        self.n_rows = rows.p.shape[0]
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
        options = self.ranker.options  # the same for every case: computed once per batch
        for case in cases:
            try:
                q = self.ranker.query(case.present, case.absent)
            except GenedxError as e:
                raise GenedxError(f"case {case.id}: {e}") from None
            genes = self.ranker.rank_query(q, top=top, explain=self.explain)
            opts = dict(options)
            if q.notes:
                opts["notes"] = q.notes
            out.append(Prediction(case.id, genes, self.name, self.hpo_release, options=opts))
        return out
