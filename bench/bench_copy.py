"""Minimal copy task: can a from-scratch genedx model config learn to copy gene tokens from its context?

    python bench/bench_copy.py --config MODEL_DIR [--offset fixed|variable] [--embed-std 0.0625]

Sequences ``[bos] filler SEP g1..g4 [SEP filler] ANS g1..g4 eos`` with 4 random "gene" ids (every id
from 1000 up); the loss covers the copied genes only. ``fixed``: no filler, so the list is always at the
same offset from the answer (a position-based copy); ``variable``: 0..N filler tokens before and after
the list (a content-based copy: an induction head). Prints loss and greedy gene accuracy on fresh
sequences. Written by hand: no library ships this diagnostic. Results: bench/RESULTS.md, "Why the small
model did not copy".
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

SEP, ANS, FIRST_GENE = 5, 6, 1000


def make_batch(size: int, vocab: int, k: int, filler: int, variable: bool) -> tuple[torch.Tensor, torch.Tensor]:
    rows, labels = [], []
    width = 2 * filler + 2 * k + 5
    for _ in range(size):
        genes = random.sample(range(FIRST_GENE, vocab), k)
        pre = [random.randrange(10, 900) for _ in range(random.randint(0, filler) if variable else 0)]
        post = [random.randrange(10, 900) for _ in range(random.randint(0, filler) if variable else 0)]
        seq = [1] + pre + [SEP] + genes + [SEP] + post + [ANS] + genes + [2]
        seq = [0] * (width - len(seq)) + seq          # left-pad (pad id 0, zero row)
        rows.append(seq)
        labels.append([-100] * (len(seq) - k - 1) + genes + [2])
    return torch.tensor(rows), torch.tensor(labels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="model dir (or config dir) whose config.json to copy")
    ap.add_argument("--offset", choices=["fixed", "variable"], default="fixed")
    ap.add_argument("--filler", type=int, default=30)
    ap.add_argument("--embed-std", type=float, default=None, help="re-draw token rows with this std (default: "
                    "transformers' Llama init, std 0.02; the weights are always fresh, only the config is read)")
    ap.add_argument("--untied", action="store_true")
    ap.add_argument("--gene-direction", type=float, default=0.0,
                    help="add one shared random direction of this norm to every gene row (a 'gene type' feature)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    cfg = LlamaConfig.from_pretrained(args.config)
    cfg.tie_word_embeddings = not args.untied
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        if args.embed_std is not None:
            model.get_input_embeddings().weight.normal_(0, args.embed_std)
            if args.untied:
                model.get_output_embeddings().weight.normal_(0, args.embed_std)
        if args.gene_direction:
            u = torch.randn(cfg.hidden_size)
            model.get_input_embeddings().weight[FIRST_GENE:] += u / u.norm() * args.gene_direction
    variable = args.offset == "variable"
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    t0 = time.time()
    for step in range(args.steps):
        x, y = make_batch(args.batch_size, cfg.vocab_size, 4, args.filler, variable)
        hidden = model.model(input_ids=x).last_hidden_state[:, :-1]
        target = y[:, 1:]
        keep = target != -100                          # LM head on the copied positions only (10x faster)
        loss = torch.nn.functional.cross_entropy(model.lm_head(hidden[keep]), target[keep])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(1, args.steps // 10) == 0 or step == args.steps - 1:
            with torch.no_grad():
                x, y = make_batch(64, cfg.vocab_size, 4, args.filler, variable)
                pred = model(input_ids=x).logits[:, :-1].argmax(-1)
                target = y[:, 1:]
                genes = target >= FIRST_GENE
                acc = (pred[genes] == target[genes]).float().mean().item()
            print(f"step {step}  loss {loss.item():.3f}  gene accuracy {acc:.2f}  {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
