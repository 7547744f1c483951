"""Leak-free train / validation / test splits, stored in ``case_split`` (never recomputed silently).

Cases are grouped and whole groups are assigned, so no group straddles two splits:

- ``publication`` (default for real cases): sibling cases of one report share its feature table
  (its excluded terms especially), so splitting them by case lets a model recognise the cohort.
  A case without a publication is its own group (fallback: its id).
- ``case``: every case its own group.
- ``gene``: gene-disjoint splits (a held-out gene is never seen in train).

Simulated cases go to train when ``simulated_to_train`` (they are training material). With
``by='gene'`` that would break gene-disjointness, so simulated cases of held-out genes get the split
``unused`` instead.

Assignment: each group gets a uniform number from a keyed hash of (seed, group), so the result is
reproducible, independent of row order, and stable for a group when other cases are added.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import duckdb
import pyarrow as pa

from genedx.errors import GenedxError
from genedx.home import transaction

SPLIT_BY = ("publication", "case", "gene")
TRAIN, VALIDATION, TEST, UNUSED = "train", "validation", "test", "unused"


def _unit(seed: int, group: str) -> float:
    h = hashlib.blake2b(f"{seed}\x00{group}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def assign(group: str, seed: int, validation: float, test: float) -> str:
    """The split of one group (deterministic in seed and group)."""
    u = _unit(seed, group)
    return TEST if u < test else VALIDATION if u < test + validation else TRAIN


def make_split(con: duckdb.DuckDBPyConnection, by: str = "publication", seed: int = 0, validation: float = 0.2,
               test: float = 0.0, simulated_to_train: bool = True) -> dict[str, int]:
    """Assign every stored case to a split and store it (replacing the previous split); split -> count."""
    if by not in SPLIT_BY:
        raise GenedxError(f"--by must be one of {', '.join(SPLIT_BY)}, not {by!r}")
    if not (0 <= validation <= 1 and 0 <= test <= 1 and validation + test < 1):
        raise GenedxError(f"validation ({validation}) and test ({test}) must be fractions with a sum below 1")
    key = {"publication": "coalesce(publication, id)", "case": "id", "gene": "coalesce(gene, id)"}[by]
    rows = con.execute(f'SELECT id, source, {key} FROM "case" ORDER BY id').fetchall()
    if not rows:
        raise GenedxError("no cases to split: import or simulate cases first (`genedx data import ...`)")
    groups = {g for _, _, g in rows}
    split_of = {g: assign(g, seed, validation, test) for g in groups}
    ids, splits = [], []
    for cid, source, group in rows:
        s = split_of[group]
        if source == "simulated" and simulated_to_train and s != TRAIN:
            s = UNUSED if by == "gene" else TRAIN
        ids.append(cid)
        splits.append(s)
    tbl = pa.table({"case_id": ids, "split": splits})
    con.register("_split", tbl)
    try:
        with transaction(con):
            con.execute("DELETE FROM case_split")
            con.execute("INSERT INTO case_split (case_id, split, split_by, seed) "
                        "SELECT case_id, split, ?, ? FROM _split", [by, seed])
    finally:
        con.unregister("_split")
    return dict(sorted(Counter(splits).items()))
