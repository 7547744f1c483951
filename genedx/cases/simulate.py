"""Simulated patients from the knowledge base's annotations, the way published tools test themselves.

For each gene (or each disease of each gene): pick one of the gene's diseases, sample present terms
by annotation frequency, replace some by an ancestor (imprecision), add unrelated terms (noise), and
record absent terms: the disease's annotated NOT terms, or frequent features of look-alike diseases
(diseases sharing the most specific terms) that are unrelated to the disease's own features.

Hand-written because no library simulates HPO patients from a DuckDB KB; the heavy lifting (pools,
look-alikes, ancestor lists) is SQL, the per-case draws are numpy with one seeded generator, so the
same config gives the same cases. ~100k cases (20 per gene, all genes) take a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import duckdb
import numpy as np

from genedx.cases.model import Case
from genedx.errors import GenedxError
from genedx.home import require_kb
from genedx.kb.hpo import PHENOTYPIC_ABNORMALITY


@dataclass
class SimulationConfig:
    """Every knob of the simulator (all have defaults; ``seed`` makes it reproducible)."""

    cases_per_gene: int = field(default=20, metadata={"help": "Cases per gene (per='gene') or per gene-disease pair (per='disease')."})
    per: Literal["gene", "disease"] = field(default="gene", metadata={"help": "Count cases per gene or per disease of a gene."})
    min_present: int = field(default=3, metadata={"help": "Fewest present terms sampled from the disease."})
    max_present: int = field(default=10, metadata={"help": "Most present terms sampled from the disease."})
    imprecision: float = field(default=0.15, metadata={"help": "Probability a present term is replaced by an ancestor."})
    imprecision_max_distance: int = field(default=2, metadata={"help": "How many is_a steps up an imprecise term may go."})
    noise_terms: int = field(default=1, metadata={"help": "Up to this many unrelated terms are added (uniform 0..N)."})
    absent_terms: int = field(default=2, metadata={"help": "Up to this many absent terms are recorded (uniform 0..N)."})
    lookalikes: int = field(default=3, metadata={"help": "Look-alike diseases whose frequent features feed absent terms."})
    default_frequency: float = field(default=0.5, metadata={"help": "Weight of annotations without a frequency."})
    seed: int = field(default=0, metadata={"help": "Random seed: same seed and knobs, same cases."})
    genes: list[str] | None = field(default=None, metadata={"help": "Only these genes (approved symbols); default all."})

    def __post_init__(self) -> None:
        if self.per not in ("gene", "disease"):
            raise GenedxError(f"per must be 'gene' or 'disease', not {self.per!r}")
        if self.cases_per_gene < 1:
            raise GenedxError("cases_per_gene must be at least 1")
        if not 1 <= self.min_present <= self.max_present:
            raise GenedxError(f"need 1 <= min_present ({self.min_present}) <= max_present ({self.max_present})")
        if not 0 <= self.imprecision <= 1:
            raise GenedxError(f"imprecision is a probability, not {self.imprecision}")
        if self.imprecision_max_distance < 1:
            raise GenedxError("imprecision_max_distance must be at least 1 (one is_a step up)")
        if self.noise_terms < 0 or self.absent_terms < 0 or self.lookalikes < 0:
            raise GenedxError("noise_terms, absent_terms and lookalikes must be >= 0")
        if not 0 < self.default_frequency <= 1:
            raise GenedxError("default_frequency must be in (0, 1]")


def _pos_sql(cfg: SimulationConfig) -> str:
    # Positive phenotype annotations (frequency 0 = excluded in practice).
    return f"""SELECT disease, term, max(coalesce(frequency, {cfg.default_frequency})) AS f FROM disease_phenotype
               WHERE aspect = 'P' AND NOT excluded AND coalesce(frequency, 1) > 0 GROUP BY disease, term"""


def _load(con: duckdb.DuckDBPyConnection, cfg: SimulationConfig):
    pos = _pos_sql(cfg)
    con.execute("SET enable_progress_bar = false")  # genedx shows its own progress; keep stdout clean
    con.execute(f"CREATE OR REPLACE TEMP TABLE _sim_pos AS {pos}")
    gene_filter = "AND gd.gene IN (SELECT unnest(?::VARCHAR[]))" if cfg.genes else ""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _sim_gd AS
        SELECT DISTINCT gd.gene, gd.disease FROM gene_disease gd
        WHERE gd.disease IN (SELECT disease FROM _sim_pos) {gene_filter}""", [list(cfg.genes)] if cfg.genes else [])
    if cfg.genes:
        missing = sorted(set(cfg.genes) - {g for (g,) in con.execute("SELECT DISTINCT gene FROM _sim_gd").fetchall()})
        if missing:
            raise GenedxError(f"no annotated disease for gene(s) {', '.join(missing[:10])}: use approved HGNC symbols "
                              "of genes linked to a disease in the knowledge base")
    gd = con.execute("SELECT gene, disease FROM _sim_gd ORDER BY gene, disease").fetchall()
    ann = con.execute("""SELECT disease, list(term ORDER BY term), list(f ORDER BY term) FROM _sim_pos
                         WHERE disease IN (SELECT disease FROM _sim_gd) GROUP BY disease""").fetchall()
    labels = dict(con.execute("SELECT id, name FROM disease WHERE id IN (SELECT disease FROM _sim_gd)").fetchall())
    # Imprecision: strict ancestors within reach that are still phenotypic abnormalities (not the root).
    anc = dict(con.execute(f"""
        SELECT a.term, list(DISTINCT a.ancestor ORDER BY a.ancestor) FROM hpo_ancestor a
        WHERE a.distance BETWEEN 1 AND {cfg.imprecision_max_distance} AND a.ancestor <> '{PHENOTYPIC_ABNORMALITY}'
          AND a.ancestor IN (SELECT term FROM hpo_ancestor WHERE ancestor = '{PHENOTYPIC_ABNORMALITY}')
          AND a.term IN (SELECT term FROM _sim_pos WHERE disease IN (SELECT disease FROM _sim_gd))
        GROUP BY a.term""").fetchall())
    # Absent candidates: NOT terms of the disease, plus frequent features of its look-alikes that are
    # neither ancestors nor descendants of any of its own features (so never contradict them).
    absent = dict(con.execute(f"""
        WITH tcount AS (SELECT term, count(*) AS n FROM _sim_pos GROUP BY term),
        spec AS (SELECT p.disease, p.term FROM _sim_pos p JOIN tcount USING (term) WHERE n <= 50),
        pairs AS (SELECT a.disease AS d, b.disease AS o, count(*) AS shared
                  FROM spec a JOIN spec b ON a.term = b.term AND a.disease <> b.disease
                  WHERE a.disease IN (SELECT disease FROM _sim_gd) GROUP BY ALL),
        top AS (SELECT d, o FROM (SELECT *, row_number() OVER (PARTITION BY d ORDER BY shared DESC, o) AS r
                                  FROM pairs) WHERE r <= {cfg.lookalikes}),
        cand AS (SELECT DISTINCT t.d AS disease, p.term FROM top t JOIN _sim_pos p ON p.disease = t.o
                 WHERE p.f >= 0.5
                 UNION
                 SELECT DISTINCT disease, term FROM disease_phenotype
                 WHERE excluded AND aspect = 'P' AND disease IN (SELECT disease FROM _sim_gd)),
        own_up AS (SELECT DISTINCT p.disease, a.ancestor AS term FROM _sim_pos p JOIN hpo_ancestor a ON a.term = p.term
                   WHERE p.disease IN (SELECT disease FROM _sim_gd)),
        own_down AS (SELECT DISTINCT c.disease, c.term FROM cand c JOIN hpo_ancestor a ON a.term = c.term
                     JOIN _sim_pos p ON p.disease = c.disease AND p.term = a.ancestor)
        SELECT disease, list(term ORDER BY term) FROM (
            SELECT disease, term FROM cand
            EXCEPT SELECT disease, term FROM own_up
            EXCEPT SELECT disease, term FROM own_down)
        GROUP BY disease""").fetchall())
    noise_pool = [t for (t,) in con.execute("SELECT term FROM _sim_pos ORDER BY disease, term").fetchall()]
    con.execute("DROP TABLE IF EXISTS _sim_pos")
    con.execute("DROP TABLE IF EXISTS _sim_gd")
    return gd, {d: (ts, fs) for d, ts, fs in ann}, labels, anc, absent, noise_pool


def simulate(con: duckdb.DuckDBPyConnection, cfg: SimulationConfig | None = None) -> list[Case]:
    """Simulated cases (source ``simulated``, ids ``sim:GENE:DISEASE:i``), reproducible for a config."""
    cfg = cfg or SimulationConfig()
    require_kb(con)
    gd, ann, labels, anc, absent, noise_pool = _load(con, cfg)
    if not gd:
        raise GenedxError("no gene-disease links with phenotype annotations in the knowledge base")
    rng = np.random.default_rng(cfg.seed)
    prepared = {d: (np.array(ts, dtype=object), np.log(np.asarray(fs, dtype=float)), set(ts))
                for d, (ts, fs) in ann.items()}
    by_gene: dict[str, list[str]] = {}
    for g, d in gd:
        by_gene.setdefault(g, []).append(d)
    plan: list[tuple[str, str, int]] = []  # (gene, disease, index within gene)
    for g, ds in by_gene.items():
        if cfg.per == "gene":
            picks = rng.integers(len(ds), size=cfg.cases_per_gene)
            plan.extend((g, ds[p], i) for i, p in enumerate(picks))
        else:
            plan.extend((g, d, j * cfg.cases_per_gene + i) for j, d in enumerate(ds) for i in range(cfg.cases_per_gene))
    n_pool = len(noise_pool)
    cases = []
    for g, d, i in plan:
        terms, logw, own = prepared[d]
        n = len(terms)
        k = min(n, int(rng.integers(cfg.min_present, cfg.max_present + 1)))
        # Frequency-weighted sampling without replacement (Gumbel top-k).
        keys = logw + rng.gumbel(size=n)
        chosen = terms[np.argsort(-keys, kind="stable")[:k]]
        present = []
        for t in chosen:
            ups = anc.get(t)
            if ups and rng.random() < cfg.imprecision:
                t = ups[int(rng.integers(len(ups)))]
            present.append(t)
        for _ in range(int(rng.integers(cfg.noise_terms + 1)) if cfg.noise_terms else 0):
            t = noise_pool[int(rng.integers(n_pool))]
            if t not in own:
                present.append(t)
        present = list(dict.fromkeys(present))
        cands = absent.get(d) or []
        n_abs = min(len(cands), int(rng.integers(cfg.absent_terms + 1))) if cfg.absent_terms else 0
        # a uniform sample without replacement (argsort of uniforms: cheaper than rng.choice per call)
        absent_terms = [cands[j] for j in sorted(rng.random(len(cands)).argsort()[:n_abs])] if n_abs else []
        absent_terms = [t for t in absent_terms if t not in present]
        cases.append(Case(id=f"sim:{g}:{d}:{i}", present=present, absent=absent_terms, gene=g, disease=d,
                          disease_label=labels.get(d), source="simulated"))
    return cases
