"""The ranker's scoring rows as sparse matrices: HPO diseases, gene unions, learned gene profiles.

``build_rows`` turns the knowledge-base arrays (and optional case profiles) into, for every row,
``P[row, term]`` (probability of showing the term or a descendant), the exclusion matrix ``X`` and
the background ``bg``; the maths is in docs/ranker.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from genedx.rank.kbdata import KbData
from genedx.rank.profiles import CaseProfiles


@dataclass
class ScoringRows:
    p: sp.csc_matrix                 # rows x terms: P[row, term] (float32)
    x: sp.csc_matrix                 # rows x terms: share excluded (1 = NOT annotation)
    bg: np.ndarray                   # background probability per term
    genes: list[str]                 # gene index -> symbol (KB genes, then profile-only genes)
    gene_index: dict[str, int]
    row_disease: list[str | None]    # disease id of a row (None: gene union or profile-only)
    row_sources: list[tuple[int, ...]]   # KB disease indices whose annotations explain a row
    row_profile: list[int]           # profile index of a row (-1: none)
    pair_gene: np.ndarray            # (gene, row) pairs: a gene scores its best row
    pair_row: np.ndarray
    row_of_dis: np.ndarray           # KB disease index -> its own row (-1: not linked to a gene)
    direct_freq: np.ndarray          # the annotation frequencies used (for explanations)


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


def build_rows(kb: KbData, profiles: CaseProfiles | None, cfg) -> ScoringRows:
    """All scoring rows for the given constants (``cfg`` is a ``RankerConfig``)."""
    n_terms, n_dis = len(kb.terms), len(kb.diseases)
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
    genes: list[str] = list(kb.genes)
    base_p, base_x = [p_dis[linked]], [x_dis[linked]]
    base_gene_pairs = [(kb.gd_gene, row_of_dis[kb.gd_row])]      # (gene, base row) pairs
    row_disease: list[str | None] = [kb.diseases[d] for d in linked]
    row_sources: list[tuple[int, ...]] = [(int(d),) for d in linked]   # diseases explaining a row
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
            row_disease += [None] * len(multi)
            srcs: dict[int, list[int]] = {}
            for g, d in zip(g_pairs.tolist(), d_pairs.tolist()):
                srcs.setdefault(g, []).append(d)
            row_sources += [tuple(srcs[int(g)]) for g in multi]
            n_base += len(multi)
    base_p_all = sp.vstack(base_p).tocsr()
    base_x_all = sp.vstack(base_x).tocsr()
    blocks_p, blocks_x = [base_p_all], [base_x_all]
    row_profile: list[int] = [-1] * n_base
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
                gene_idx[g] = len(genes)
                genes.append(g)
        prof_gene = np.array([gene_idx[g] for g in profiles.genes], dtype=np.int64)
        start = n_base
        # A profile alone is a row (it makes genes without HPO annotations findable)...
        blocks_p.append(p_prof)
        blocks_x.append(x_prof)
        row_disease += [None] * n_prof
        row_sources += [()] * n_prof
        row_profile += list(range(n_prof))
        pair_gene.append(prof_gene)
        pair_row.append(np.arange(start, start + n_prof))
        if cfg.profile_mode == "blend":
            # ...and blended with each base row of its gene: noisy-or, so each patient term uses the
            # better of the curated and the learned frequency.
            prof_of_gene = np.full(len(genes), -1, dtype=np.int64)
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
            row_disease += [row_disease[b] for b in b_pairs]
            row_sources += [row_sources[b] for b in b_pairs]
            row_profile += prof_of_gene[g_pairs].tolist()
            pair_gene.append(g_pairs)
            pair_row.append(np.arange(start, start + len(g_pairs)))

    bg = np.maximum(bg_sum / bg_n, 0.5 / bg_n)
    p_all = sp.vstack(blocks_p).tocsc().astype(np.float32)
    x_all = sp.vstack(blocks_x).tocsc()
    for m in (p_all, x_all):
        m.sort_indices()
    return ScoringRows(p=p_all, x=x_all, bg=bg, genes=genes, gene_index=gene_idx, row_disease=row_disease,
                       row_sources=row_sources, row_profile=row_profile,
                       pair_gene=np.concatenate(pair_gene).astype(np.int64),
                       pair_row=np.concatenate(pair_row).astype(np.int64), row_of_dis=row_of_dis, direct_freq=freq)
