"""Synthetic copy examples: a curriculum step before SFT for a model trained from scratch.

A retrieval-mode answer mostly repeats candidate genes listed in the prompt. A small model trained
from scratch did not learn to copy in 480 SFT steps on the real prompts (it wrote frequent genes
instead, ~6% top@1 where the ranker's first candidate alone gives 36%): copying needs "induction"
attention, which is usually learnt faster on short sequences whose next token cannot be guessed any
other way (on the 5M `small` model, 800 steps of 32 were still not enough: bench/RESULTS.md, Model,
so recipes ship with it off). These rows are such sequences, in the prompt's own candidate-list format: random gene symbols,
numbered, and an answer that lists them in order. Written by hand: no library generates task-shaped
copy curricula.
"""

from __future__ import annotations

import random
from typing import Sequence

from genedx.answer_format import format_answer
from genedx.model.prompts import CANDIDATES_HEADER

COPY_INSTRUCTION = "List the candidate genes above in their order."


def copy_rows(genes: Sequence[str], n: int, seed: int = 0, min_k: int = 3, max_k: int = 10) -> list[dict]:
    """``n`` TRL prompt-completion rows: a numbered list of ``min_k``..``max_k`` random distinct
    ``genes`` (fewer when there are fewer genes) and an answer in the documented format that copies
    them in order."""
    max_k = min(max_k, len(genes))
    if not 1 <= min_k <= max_k:
        raise ValueError(f"copy rows need at least {min_k} distinct genes ({len(genes)} given) and min_k <= max_k")
    rng = random.Random(seed)
    pool = list(genes)
    rows = []
    for _ in range(n):
        picked = rng.sample(pool, rng.randint(min_k, max_k))
        listing = "\n".join(f"{i}. {g}" for i, g in enumerate(picked, 1))
        reasoning = f"{picked[0]} is listed first. Other candidates: {', '.join(picked[1:4])}."
        rows.append({"prompt": [{"role": "user", "content": f"{CANDIDATES_HEADER}\n{listing}\n\n{COPY_INSTRUCTION}"}],
                     "completion": [{"role": "assistant", "content": format_answer(picked, reasoning)}]})
    return rows
