"""Grader throughput: grades per second over 100,000 synthetic model outputs of mixed formats, one core.

Usage: python bench/bench_grade.py [--n 100000] [--seed 0]

Outputs are generated from random approved HGNC symbols (so the normaliser's cache does not make
them free), 60% in the answer format (with reasoning), the rest as numbered lists, JSON, bare
comma lists, truncated answers, answers with aliases/lowercase, and prose with no answer. Every
output is distinct. Reports the default ranked-gene grader and the default training reward
(multi: ranked_gene 0.9 + format 0.1), each timed on the full set after loading the HGNC table. Throughput is reported per second of this
process's CPU time (pinned to one core) and per wall second: on a shared machine the wall figure
includes time spent waiting for the core.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def synth_outputs(n: int, seed: int) -> tuple[list[str], list[str]]:
    from genedx.kb.genes import GeneNormalizer

    norm = GeneNormalizer.default()
    rng = random.Random(seed)
    symbols = sorted(norm.genes)
    aliases = sorted(k for k in norm._other)  # noqa: SLF001 - bench only: alias spellings
    outputs, truths = [], []
    for i in range(n):
        k = rng.randint(1, 20)
        genes = rng.sample(symbols, k)
        truth = rng.choice(genes) if rng.random() < 0.7 else rng.choice(symbols)
        kind = rng.random()
        reasoning = f"Case {i}: the phenotype suggests {rng.choice(symbols)}; consider {rng.choice(symbols)}."
        if kind < 0.6:
            out = f"<think>{reasoning}</think>\n<answer>{', '.join(genes)}</answer>"
        elif kind < 0.68:
            out = "\n".join(f"{j}. {g} - plausible" for j, g in enumerate(genes, 1))
        elif kind < 0.76:
            out = json.dumps({"genes": genes, "note": reasoning})
        elif kind < 0.84:
            out = ", ".join(genes)
        elif kind < 0.90:
            out = f"<think>{reasoning}</think><answer>{', '.join(genes)}"  # truncated
        elif kind < 0.96:
            mixed = [g.lower() if rng.random() < 0.5 else rng.choice(aliases) for g in genes]
            out = f"<think>{reasoning}</think><answer>{', '.join(mixed)}</answer>"
        else:
            out = f"I am not sure. {reasoning}"
        outputs.append(out)
        truths.append(truth)
    return outputs, truths


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    except (AttributeError, OSError):
        pass
    from genedx.grade import grader_from_config, make_reward
    from genedx.grade.graders import DEFAULT_REWARD_CONFIG

    outputs, truths = synth_outputs(args.n, args.seed)
    for name, cfg in [("ranked_gene (default)", {"type": "ranked_gene"}), ("reward (multi 0.9/0.1)", DEFAULT_REWARD_CONFIG)]:
        grader = grader_from_config(cfg)
        grader(outputs[0], truths[0])  # warm: HGNC table loaded
        wall, cpu = time.perf_counter(), time.process_time()
        scores = [grader(o, a) for o, a in zip(outputs, truths)]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{name}: {args.n:,} outputs: {args.n / cpu:,.0f} grades/s of CPU time ({cpu:.2f} s), "
              f"{args.n / wall:,.0f} grades/s wall ({wall:.2f} s); mean grade {sum(scores) / len(scores):.3f}")
    reward = make_reward()
    wall, cpu = time.perf_counter(), time.process_time()
    reward(outputs, correct_answer=truths)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"make_reward() one batch call: {args.n / cpu:,.0f} grades/s CPU, {args.n / wall:,.0f} grades/s wall")


if __name__ == "__main__":
    main()
