"""Readers for annotated HPO concept-recognition corpora (for tuning and benchmarks, not run time).

* GSC+ (Groza et al. 2015; Lobo et al. 2017) in PhenoTagger's block format: a PMID line, a text line,
  then ``start<TAB>end<TAB>mention<TAB>HP:id`` lines; blocks separated by an empty line.
* JAX (PhenoTagger's JAX set): ``JAX_gold.json`` (PMID -> {HP id: label}) and ``txt/<PMID>.txt``.

Gold ids come from older HPO releases; ``normalise_gold`` maps them to the current term.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from genedx.errors import GenedxError


@dataclass
class GoldMention:
    start: int
    end: int
    text: str
    hpo_id: str


@dataclass
class GoldDoc:
    """One annotated document: its text, the gold mentions (may be empty for document-level corpora)
    and the gold set of HPO ids."""

    id: str
    text: str
    mentions: list[GoldMention] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)


def read_gsc(path: str | Path) -> list[GoldDoc]:
    """Documents of a GSC+ gold file (CRLF or LF line endings)."""
    p = Path(path)
    if not p.exists():
        raise GenedxError(f"{p}: no such file")
    docs: list[GoldDoc] = []
    blocks = p.read_text(encoding="utf-8").replace("\r\n", "\n").replace("\r", "\n").split("\n\n")
    for n, block in enumerate(blocks, 1):
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if not lines:
            continue
        if len(lines) < 2:
            raise GenedxError(f"{p}: block {n}: expected a PMID line and a text line")
        doc = GoldDoc(id=lines[0].strip(), text=lines[1])
        for ln in lines[2:]:
            parts = ln.split("\t")
            if len(parts) < 4:
                raise GenedxError(f"{p}: document {doc.id}: malformed mention line {ln!r}")
            m = GoldMention(int(parts[0]), int(parts[1]), parts[2], parts[3].strip())
            doc.mentions.append(m)
            doc.ids.add(m.hpo_id)
        docs.append(doc)
    return docs


def read_jax(folder: str | Path) -> list[GoldDoc]:
    """JAX documents that have a text file, with their gold id sets."""
    d = Path(folder)
    gold = json.loads((d / "JAX_gold.json").read_text(encoding="utf-8"))
    docs = []
    for pmid, terms in sorted(gold.items()):
        txt = d / "txt" / f"{pmid}.txt"
        if txt.exists():
            docs.append(GoldDoc(id=pmid, text=txt.read_text(encoding="utf-8", errors="replace"), ids=set(terms)))
    return docs


def normalise_gold(docs: list[GoldDoc], to_current: Callable[[str], str | None]) -> list[str]:
    """Map every gold id to the current term in place; returns the ids that could not be mapped
    (they are dropped from the gold: no tool can be scored on a term the release does not have)."""
    lost: list[str] = []
    for doc in docs:
        for m in doc.mentions:
            m.hpo_id = to_current(m.hpo_id) or m.hpo_id
        ids = set()
        for i in doc.ids:
            cur = to_current(i)
            if cur is None:
                lost.append(i)
            else:
                ids.add(cur)
        doc.ids = ids
    return lost


def split_half(docs: list[GoldDoc]) -> tuple[list[GoldDoc], list[GoldDoc]]:
    """A fixed, content-independent split by document id (CRC32 parity): (tune, held-out)."""
    tune = [d for d in docs if zlib.crc32(d.id.encode()) % 2 == 0]
    held = [d for d in docs if zlib.crc32(d.id.encode()) % 2 == 1]
    return tune, held
