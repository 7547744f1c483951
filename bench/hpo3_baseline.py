"""hpo3 baselines for bench_rank.py; runs in its OWN venv (hpo3 also imports as `pyhpo`).

Usage: /work/venv-hpo3/bin/python bench/hpo3_baseline.py CASES.jsonl OUT.jsonl
CASES lines: {"id", "present": [HPO ids], "similarity": bool}. OUT lines: {"id", "similarity": [...] or
null, "enrichment": [...], "ms_similarity", "ms_enrichment"} with the top 20 gene symbols of each method.
Set similarity costs ~1-2 s per case here (every case against all ~5,000 genes), so the bench asks
for it on a fixed subset only.

- similarity: HPOSet similarity of the case to every gene's annotated term set
  (graphic IC, funSimAvg), via hpo3's parallel `helper.batch_set_similarity`.
- enrichment: hypergeometric gene enrichment (`helper.batch_gene_enrichment`).
"""
import json
import sys
import time

from pyhpo import HPOSet, Ontology
from pyhpo import helper

TOP = 20


def main(cases_path: str, out_path: str) -> None:
    Ontology()
    genes = list(Ontology.genes)
    gene_sets = [HPOSet.from_queries(list(g.hpo)) for g in genes]
    with open(cases_path) as f:
        cases = [json.loads(line) for line in f]
    with open(out_path, "w") as out:
        for c in cases:
            terms = []
            for t in c["present"]:
                try:
                    terms.append(Ontology.get_hpo_object(t))
                except (KeyError, RuntimeError, ValueError, NameError):
                    pass   # ids newer/older than hpo3's release
            if not terms:
                out.write(json.dumps({"id": c["id"], "similarity": [] if c.get("similarity", True) else None,
                                      "enrichment": []}) + "\n")
                continue
            s = HPOSet(terms)
            t0 = time.perf_counter()
            top_sim = None
            if c.get("similarity", True):
                sims = helper.batch_set_similarity([(s, g) for g in gene_sets], kind="omim", method="graphic",
                                                   combine="funSimAvg")
                top_sim = [genes[i].name for i in sorted(range(len(genes)), key=lambda i: -sims[i])[:TOP]]
            t1 = time.perf_counter()
            enr = helper.batch_gene_enrichment([s])[0]
            t2 = time.perf_counter()
            enr_sorted = [e["item"].name for e in sorted(enr, key=lambda e: e["enrichment"])[:TOP]]
            out.write(json.dumps({"id": c["id"], "similarity": top_sim,
                                  "enrichment": enr_sorted,
                                  "ms_similarity": (t1 - t0) * 1000 if top_sim is not None else None,
                                  "ms_enrichment": (t2 - t1) * 1000}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
