"""Deterministic shards of a case input, and the merge of sharded ``genedx score`` outputs.

A case belongs to shard ``K`` of ``N`` when a stable hash of its id says so (BLAKE2b, not Python's
per-process ``hash``), so every machine, run and scheduler agrees on the split without
coordinating, and duplicate ids land in the same shard (where batch scoring skips the later copy,
as a single run does). A bad record, which may have no id, is assigned by its origin so each one is
reported by exactly one shard.

Merging puts the shards' lines back in the order of the original input, so split -> score each
shard -> merge gives the same file as one ``genedx score`` run. Written by hand: this is glue
between genedx's own formats (no library knows them); the scheduling itself is Snakemake's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from genedx.cases.model import BadRecord, Case
from genedx.errors import GenedxError

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``k`` (1-based) of ``n``."""

    k: int
    n: int

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"

    def holds(self, item: Case | BadRecord) -> bool:
        """Whether this shard scores ``item``."""
        return shard_number(item, self.n) == self.k


def parse_shard(spec: str) -> Shard:
    """``"2/8"`` -> ``Shard(2, 8)``; a one-line error for anything else.

    >>> parse_shard("2/8")
    Shard(k=2, n=8)
    """
    m = _SPEC.match(spec or "")
    if not m:
        raise GenedxError(f"--shard {spec!r}: expected K/N, e.g. 1/4")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= k <= n:
        raise GenedxError(f"--shard {spec!r}: need 1 <= K <= N")
    return Shard(k, n)


def _stable_bucket(key: str, n: int) -> int:
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n + 1


def shard_number(item: Case | BadRecord, n: int) -> int:
    """The 1-based shard of ``item`` among ``n``: by case id, or by origin for a bad record."""
    key = f"bad:{item.origin}" if isinstance(item, BadRecord) else f"case:{item.id}"
    return _stable_bucket(key, n)


def select_shard(items: Iterable[Case | BadRecord], shard: Shard | None) -> Iterator[Case | BadRecord]:
    """The items of ``shard`` (all of them when ``shard`` is None), in input order."""
    for item in items:
        if shard is None or shard.holds(item):
            yield item


@dataclass
class SplitReport:
    files: list[str]
    cases: list[int]             # cases written per shard file
    problems: list[BadRecord]    # bad records (left out of the shard files, reported here once)

    def to_dict(self) -> dict:
        return {"files": self.files, "cases": self.cases, "problems": [str(p) for p in self.problems]}


def split_cases(items: Iterable[Case | BadRecord], n: int, out_dir: str | Path) -> SplitReport:
    """Write ``out_dir/shard-K-of-N.jsonl`` (K = 1..N): each case as a ``Case.to_dict()`` line in its
    shard, in input order. Bad records go to the report, not to a file. Files appear only complete
    (written to a temporary name, then renamed), so a killed split never leaves a half shard."""
    if n < 1:
        raise GenedxError(f"--shards must be >= 1, got {n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"shard-{k}-of-{n}.jsonl" for k in range(1, n + 1)]
    tmps = [p.with_name(p.name + ".part") for p in paths]
    counts = [0] * n
    problems: list[BadRecord] = []
    handles = [open(t, "w", encoding="utf-8") for t in tmps]
    try:
        for item in items:
            if isinstance(item, BadRecord):
                problems.append(item)
                continue
            k = shard_number(item, n)
            d = item.to_dict()
            d.pop("split", None)          # splits are the database's business, never a file's
            handles[k - 1].write(json.dumps(d) + "\n")
            counts[k - 1] += 1
    except BaseException:
        for h, t in zip(handles, tmps):
            h.close()
            t.unlink(missing_ok=True)
        raise
    for h, t, p in zip(handles, tmps, paths):
        h.flush()
        os.fsync(h.fileno())
        h.close()
        os.replace(t, p)
    return SplitReport([str(p) for p in paths], counts, problems)


def _read_score_lines(path: Path) -> list[tuple[str, str]]:
    """(id, raw line) of a ``genedx score`` output; a one-line error naming file and line otherwise."""
    if not path.is_file():
        raise GenedxError(f"{path}: no such score file")
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    rid = obj["id"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise GenedxError(f"{path}:{n}: not a genedx score line") from None
                rows.append((str(rid), line if line.endswith("\n") else line + "\n"))
    except (OSError, UnicodeDecodeError) as e:
        raise GenedxError(f"{path}: cannot read: {e}") from None
    return rows


def merge_scores(parts: Sequence[str | Path], out: str | Path, order: Iterable[Case | BadRecord]) -> int:
    """Merge sharded score files into ``out`` in the order the ids first appear in ``order`` (the
    original input's records); ids absent from ``order`` follow, in part order. An id in two parts
    is an error (the shards overlap). ``out`` is replaced atomically. Returns the line count."""
    lines: dict[str, str] = {}
    for part in parts:
        for rid, line in _read_score_lines(Path(part)):
            if rid in lines:
                raise GenedxError(f"{part}: case {rid} is also in an earlier part: the shards overlap")
            lines[rid] = line
    position: dict[str, int] = {}
    for item in order:
        if isinstance(item, Case) and item.id not in position:
            position[item.id] = len(position)
    late = len(position)
    ordered = sorted(lines, key=lambda rid: (position.get(rid, late), 0))  # stable: part order for the rest
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for rid in ordered:
                f.write(lines[rid])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(ordered)
