"""SFT warm start: teach a model the answer format (and the ranker's reasoning) before RFT.

One linear :func:`run_sft`: load cases -> build prompts and targets -> model (a given dir, or a
fresh one from ``genedx.model.build``) -> TRL ``SFTTrainer`` -> save -> validation metrics (the
grader's) stored as a run. Targets are a short reasoning paragraph built from the phenotype ranker's
explanation for the TRUE gene (matched and excluded phenotypes) followed by the answer in the
documented format: the true gene first, then the ranker's other top genes.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from genedx.errors import GenedxError
from genedx.home import Home, connect, require_kb, transaction
from genedx.train import runs

BASE_LEARNING_RATE = 1e-3   # from-scratch small models learn fast; fine-tuning a pretrained model wants ~1e-5


def _help(text: str, default: Any = None, factory: Any = None) -> Any:
    if factory is not None:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass
class SFTRecipe:
    """Every knob of an SFT run (YAML recipe + ``--set key=value``), validated before any work."""

    name: str = _help("Run name (stored with the run).", "sft")
    model: str | None = _help("Existing model dir to fine-tune; null: build a fresh one of init_size.", None)
    init_size: str = _help("Size of the fresh model when model is null: tiny | small | base.", "small")
    output_dir: str | None = _help("Where the trained model goes (default <home>/models/<name>).", None)
    overwrite: bool = _help("Replace a non-empty output_dir.", False)
    mode: str = _help("Prompt mode: closed (case report only) | retrieval (plus ranker candidates) | mixed "
                      "(each case in one of the two, drawn with the seed; one model serves both modes).", "closed")
    retrieval_share: float = _help("mixed mode: share of training cases shown in retrieval mode.", 0.5)
    retrieval_shown_only: bool = _help(
        "Retrieval examples only for cases whose true gene is among the shown candidates (the target puts it "
        "first: a pick-and-copy task); the others get a closed prompt (mixed mode) or are left out (retrieval "
        "mode). Off, ~40% of retrieval targets lead with a gene the prompt never shows.", True)
    train_split: str = _help("Stored split to train on.", "train")
    eval_split: str = _help("Stored split for the validation metrics at the end.", "validation")
    include_simulated: bool = _help("Train on simulated cases of the train split too.", True)
    max_real_cases: int | None = _help("Cap on real (non-simulated) training cases; null: all.", None)
    max_simulated_cases: int | None = _help("Cap on simulated training cases; null: all.", None)
    real_repeats: int = _help("Times each real training case is repeated (real cases are fewer).", 1)
    top_k: int = _help("Ranker candidates listed in retrieval prompts.", 10)
    answer_genes: int = _help("Genes in each target answer (true gene + ranker's next ones).", 10)
    ranker_profiles: str = _help("Ranker case profiles for candidates/explanations: none | train | all.", "none")
    with_ids: bool = _help("Show HPO ids in the case report (longer prompts).", False)
    terms_per_gene: int = _help("Retrieval prompts: annotated phenotypes shown per candidate gene.", 3)
    max_present: int | None = _help("Cap on present terms listed in the case report (null: all).", None)
    max_absent: int | None = _help("Cap on absent terms listed in the case report (null: all).", None)
    layout: str = _help("Prompt layout: full (the from-scratch models' prompts) | compact (pretrained bases: "
                        "three-line case report, short candidate lines, one-sentence reasoning; ~400 tokens).", "full")
    seed: int = _help("Seed for data order, initial weights and sampling.", 0)
    batch_size: int = _help("Per-device training batch size.", 16)
    gradient_accumulation_steps: int = _help("Batches per optimiser step.", 1)
    learning_rate: float = _help("Peak learning rate.", BASE_LEARNING_RATE)
    lr_scheduler_type: str = _help("transformers scheduler name (cosine, linear, constant_with_warmup...).", "cosine")
    warmup_ratio: float = _help("Share of steps for linear warmup.", 0.03)
    weight_decay: float = _help("AdamW weight decay.", 0.01)
    epochs: float = _help("Passes over the training data.", 1.0)
    max_steps: int | None = _help("Stop after this many optimiser steps (overrides epochs).", None)
    max_length: int = _help("Max tokens of prompt + completion (longer examples are truncated).", 768)
    group_by_length: bool = _help("Batch examples of similar length together (less padding: closed and retrieval "
                                  "prompts differ ~2x in length).", True)
    max_new_tokens: int = _help("Generation budget at validation.", 160)
    eval_samples: int | None = _help("Validation cases evaluated at the end (seeded sample); null: all; 0: skip.", 300)
    eval_batch_size: int = _help("Generation batch size at validation.", 32)
    logging_steps: int = _help("Log (and store) the training loss every N steps.", 10)
    use_cpu: bool | None = _help("Force CPU; null: CPU when no GPU is present.", None)
    bf16: bool | str = _help("bf16 mixed precision: true, false, or auto (bf16 where native: GPUs, CPUs with "
                             "avx512_bf16/amx; else fp32). Checked at start.", False)
    gradient_checkpointing: bool = _help("Trade compute for memory (GPU, large models).", False)
    threads: int | None = _help("torch CPU threads; null: torch's default.", None)
    copy_warmup_steps: int = _help(
        "Steps on synthetic copy examples (numbered random genes -> the same genes in the answer) before SFT: "
        "a from-scratch model learns to copy candidates from the prompt (genedx.train.copy_warmup). 0: off.", 0)
    fused_lm_head: bool | None = _help(
        "TRL's chunked LM head (memory-light log-probs, logs entropy / token accuracy); null: on GPU only. On "
        "the CPU the model's own loss is 1.7x faster per step (measured, small model).", None)

    def __post_init__(self) -> None:
        from genedx.model.build import SIZES
        from genedx.model.prompts import MODES
        if self.mode not in MODES + ("mixed",):
            raise ValueError(f"mode must be one of {', '.join(MODES)}, mixed, not {self.mode!r}")
        if self.bf16 not in (True, False, "auto"):
            raise ValueError(f"bf16 must be true, false or auto, not {self.bf16!r}")
        if not 0.0 <= self.retrieval_share <= 1.0:
            raise ValueError("retrieval_share must be in [0, 1]")
        if self.model is None and self.init_size not in SIZES:
            raise ValueError(f"init_size must be one of {', '.join(SIZES)}, not {self.init_size!r}")
        from genedx.model.prompts import LAYOUTS
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {self.layout!r}")
        if self.ranker_profiles not in ("none", "train", "all"):
            raise ValueError("ranker_profiles must be none, train or all")
        for knob in ("batch_size", "gradient_accumulation_steps", "top_k", "answer_genes", "max_length",
                     "max_new_tokens", "eval_batch_size", "logging_steps", "real_repeats", "terms_per_gene"):
            if getattr(self, knob) < 1:
                raise ValueError(f"{knob} must be at least 1")
        if self.learning_rate <= 0 or self.epochs <= 0:
            raise ValueError("learning_rate and epochs must be positive")
        if self.copy_warmup_steps < 0:
            raise ValueError("copy_warmup_steps must be 0 (off) or more")
        for knob in ("max_steps", "max_present", "max_absent"):
            if getattr(self, knob) is not None and getattr(self, knob) < 1:
                raise ValueError(f"{knob} must be at least 1 (or null)")

    @property
    def modes(self) -> tuple[str, ...]:
        """The prompt modes this recipe trains (and validates) in."""
        return ("closed", "retrieval") if self.mode == "mixed" else (self.mode,)


@dataclass
class SFTResult:
    run_id: str
    model_dir: str
    n_train: int
    n_eval: int
    steps: int
    train_seconds: float
    final_loss: float | None
    metrics: Any = None   # mode -> genedx.grade.metrics.Metrics of the validation cases (None when skipped)


def prompt_options(recipe: SFTRecipe) -> dict[str, Any]:
    """The recipe's prompt layout (PromptBuilder keywords); saved with the model it trains."""
    from genedx.model.prompts import PROMPT_KEYS
    return {k: getattr(recipe, k) for k in PROMPT_KEYS}


def _pick(items: list, cap: int | None, rng: random.Random) -> list:
    items = list(items)
    rng.shuffle(items)
    return items if cap is None else items[:cap]


def training_cases(con, recipe: SFTRecipe) -> list:
    """The recipe's training cases (gene known, at least one present term), seeded order."""
    from genedx.cases.store import load_gradable_cases
    rng = random.Random(recipe.seed)
    cases = load_gradable_cases(con, recipe.train_split)
    real = _pick([c for c in cases if c.source != "simulated"], recipe.max_real_cases, rng) * recipe.real_repeats
    sim = _pick([c for c in cases if c.source == "simulated"], recipe.max_simulated_cases, rng) \
        if recipe.include_simulated else []
    out = real + sim
    rng.shuffle(out)
    if not out:
        raise GenedxError(f"no training cases with a gene in split {recipe.train_split!r}: import or simulate "
                          f"cases and split them first (`genedx data import|simulate`, `genedx data split`)")
    return out


def sft_rows(cases: list, builders: dict, answer_genes: int, retrieval_share: float = 0.5, seed: int = 0,
             progress: Callable[[int], None] | None = None, retrieval_shown_only: bool = False) -> list[dict]:
    """TRL prompt-completion rows (conversational) for the cases; with two builders (mixed mode) each
    case is shown in one mode, drawn with ``seed``. ``retrieval_shown_only``: see ``SFTRecipe``."""
    rows = []
    rng = random.Random(seed)
    for i, c in enumerate(cases):
        mode = next(iter(builders)) if len(builders) == 1 else \
            "retrieval" if rng.random() < retrieval_share else "closed"
        if mode == "retrieval" and retrieval_shown_only and \
                c.gene not in {g.symbol for g in builders[mode].ranked(c)}:
            if "closed" not in builders:
                continue
            mode = "closed"
        builder = builders[mode]
        rows.append({"mode": mode, "prompt": builder.messages(c),
                     "completion": [{"role": "assistant", "content": builder.target(c, answer_genes)}]})
        if progress and (i + 1) % 500 == 0:
            progress(i + 1)
    return rows


def run_sft(recipe: SFTRecipe, home: Home, log: Callable[[str], None] = print) -> SFTResult:
    """Train, save and validate; returns where the model went and its validation metrics."""
    import torch
    from datasets import Dataset
    from datasets import disable_progress_bars as datasets_disable_progress_bars
    from transformers import TrainerCallback
    from transformers.utils import logging as hf_logging
    from trl import SFTConfig

    from genedx.model.bases import provenance
    from genedx.model.build import _fix_tokenizer_class, init_model
    from genedx.model.load import load_model
    from genedx.model.prompts import PromptBuilder

    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    hf_logging.disable_progress_bar()
    datasets_disable_progress_bars()   # TRL's tokenizing passes would print a bar per pass into the log
    use_cpu = recipe.use_cpu if recipe.use_cpu is not None else not torch.cuda.is_available()
    from genedx.train.hardware import resolve_bf16
    bf16, note = resolve_bf16(recipe.bf16, use_cpu)
    if note:
        log(note)
    recipe = dataclasses.replace(recipe, bf16=bf16)
    out = Path(recipe.output_dir) if recipe.output_dir else home.models_dir / recipe.name
    if out.exists() and any(out.iterdir()) and not recipe.overwrite:
        raise GenedxError(f"output dir {out} is not empty (set output_dir, or overwrite: true)")
    run_id = runs.new_run_id("sft")

    # --- data (the DB is closed again before training: a long run must not hold the file lock)
    con = connect(home)
    try:
        release = require_kb(con)
        cases = training_cases(con, recipe)
        first = PromptBuilder.from_db(con, mode=recipe.modes[0], profiles=recipe.ranker_profiles, need_ranker=True,
                                      **prompt_options(recipe))
        # One builder per mode sharing labels, ranker, layout and the ranking cache (dataclasses.replace
        # keeps the same _cache dict): a case drawn for retrieval but moved to closed by
        # retrieval_shown_only is not ranked a second time for its target.
        builders = {m: dataclasses.replace(first, mode=m) for m in recipe.modes}
        t0 = time.perf_counter()
        rows = sft_rows(cases, builders, recipe.answer_genes, recipe.retrieval_share, recipe.seed,
                        lambda n: log(f"  targets {n}/{len(cases)}"), recipe.retrieval_shown_only)
        n_ret = sum(r.pop("mode") == "retrieval" for r in rows)
        log(f"{len(rows)} training examples ({recipe.mode} mode: {n_ret} retrieval, {len(rows) - n_ret} closed) "
            f"built in {time.perf_counter() - t0:.0f} s")
        if not rows:
            raise GenedxError("no training examples: in retrieval mode with retrieval_shown_only, no case's true "
                              "gene is among the ranker's candidates (raise top_k or turn it off)")
        eval_cases = _eval_cases(con, recipe)
        # the genes the ranker can list, i.e. the symbols a candidate block shows (already loaded, sorted)
        copy_genes = list(first.ranker.kb.genes) if recipe.copy_warmup_steps else []
        if recipe.model is None:
            init = init_model(out / "init", recipe.init_size, con=con, seed=recipe.seed, overwrite=True)
            base_dir = Path(init.out_dir)
            log(f"fresh {recipe.init_size} model: {init.parameters:,} parameters, vocabulary {init.vocab_size:,}")
        else:
            base_dir = Path(recipe.model).expanduser()
    finally:
        con.close()

    # fp32 master weights (a converted base is saved in bf16); bf16 runs use autocast on top
    model, tok = load_model(base_dir, device="cpu" if use_cpu else None, trainable=True, dtype=torch.float32)
    losses: list[tuple[int, float]] = []

    class _Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
            if logs and "loss" in logs:
                losses.append((state.global_step, float(logs["loss"])))
                log(f"  step {state.global_step}/{state.max_steps} loss {logs['loss']:.4f}")

    cfg = SFTConfig(
        output_dir=str(out / "checkpoints"), per_device_train_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps, learning_rate=recipe.learning_rate,
        lr_scheduler_type=recipe.lr_scheduler_type, warmup_steps=recipe.warmup_ratio,
        weight_decay=recipe.weight_decay, num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps if recipe.max_steps else -1, max_length=recipe.max_length,
        completion_only_loss=True, packing=False, seed=recipe.seed, data_seed=recipe.seed,
        logging_steps=recipe.logging_steps, save_strategy="no", report_to=[], use_cpu=use_cpu,
        bf16=recipe.bf16, disable_tqdm=True, dataloader_num_workers=0, dataset_num_proc=None,
        train_sampling_strategy="group_by_length" if recipe.group_by_length else "random",
        # TRL's SFTConfig defaults to checkpointing and bf16 (GPU habits): both are set explicitly.
        activation_checkpointing=recipe.gradient_checkpointing)
    fused = recipe.fused_lm_head if recipe.fused_lm_head is not None else not use_cpu
    from transformers.trainer_callback import PrinterCallback
    t0 = time.perf_counter()
    if recipe.copy_warmup_steps:
        from genedx.train.copy_warmup import copy_rows
        # Short rows: twice the batch at a constant (warmed-up) rate; its own optimiser, then SFT proper.
        warm_cfg = dataclasses.replace(cfg, max_steps=recipe.copy_warmup_steps, num_train_epochs=1,
                                       per_device_train_batch_size=2 * recipe.batch_size,
                                       lr_scheduler_type="constant_with_warmup", train_sampling_strategy="random",
                                       logging_steps=max(recipe.copy_warmup_steps // 5, 1))
        warm_rows = copy_rows(copy_genes, recipe.copy_warmup_steps * warm_cfg.per_device_train_batch_size
                              * recipe.gradient_accumulation_steps, seed=recipe.seed)
        warm = _trainer_class(fused)(model=model, args=warm_cfg, train_dataset=Dataset.from_list(warm_rows),
                                     processing_class=tok)
        warm.remove_callback(PrinterCallback)
        warm.train()
        warm_losses = [h["loss"] for h in warm.state.log_history if "loss" in h]
        log(f"copy warm-up: {recipe.copy_warmup_steps} steps in {time.perf_counter() - t0:.0f} s, loss "
            f"{warm_losses[0]:.3f} -> {warm_losses[-1]:.3f}" if warm_losses else "copy warm-up: done")
        model = warm.model
    trainer = _trainer_class(fused)(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok,
                                    callbacks=[_Log()])
    trainer.remove_callback(PrinterCallback)   # our _Log prints the loss lines
    trainer.train()
    train_seconds = time.perf_counter() - t0
    steps = trainer.state.global_step
    peak_gpu = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    log(f"trained {steps} steps in {train_seconds:.0f} s ({train_seconds / max(steps, 1):.1f} s/step"
        + (f", peak GPU memory {peak_gpu:.1f} GiB)" if peak_gpu is not None else ")"))

    model = trainer.model
    model.save_pretrained(out)
    tok.save_pretrained(out)
    _fix_tokenizer_class(out)
    meta = {"created_by": "genedx train sft", "run_id": run_id, "base_model": str(base_dir),
            "recipe": asdict(recipe), "n_train": len(rows), "steps": steps, "train_seconds": round(train_seconds, 1),
            "seconds_per_step": round(train_seconds / max(steps, 1), 2),
            "peak_gpu_memory_gb": round(peak_gpu, 2) if peak_gpu is not None else None,
            "hpo_release": release, "prompt": first.options(), "pretrained_base": provenance(base_dir) or None}
    (out / "genedx_model.json").write_text(json.dumps(meta, indent=2))

    metrics = None
    try:
        con = connect(home)
    except Exception as e:  # duckdb allows one writer process: e.g. a `genedx eval` running meanwhile
        raise GenedxError(f"model saved in {out}, but the database could not be opened to store the run and "
                          f"validate ({str(e).splitlines()[0][:200]}); evaluate later with `genedx eval "
                          f"--predictor model:{out} --cases {recipe.eval_split}`") from None
    try:
        _store_run(con, run_id, recipe, out, release, losses)
        if eval_cases:
            metrics = {}
            for mode in recipe.modes:   # mixed: one child run per mode, "<run>/<mode>"
                rid = run_id if len(recipe.modes) == 1 else f"{run_id}/{mode}"
                metrics[mode] = _validate(con, rid, recipe, mode, out, model, tok, eval_cases, steps, release, log)
            meta["validation"] = {m: v.to_dict() for m, v in metrics.items()}
            (out / "genedx_model.json").write_text(json.dumps(meta, indent=2))
        runs.finish_run(con, run_id)
    finally:
        con.close()
    return SFTResult(run_id, str(out), len(rows), len(eval_cases), steps, train_seconds,
                     losses[-1][1] if losses else None, metrics)


def _trainer_class(fused_lm_head: bool):
    """TRL's SFTTrainer, or (``fused_lm_head`` false) an SFTTrainer whose loss is the model's own
    (transformers' ``Trainer.compute_loss``; labels are -100 on the prompt, so still completion-only).

    TRL routes the forward through a chunked "fused" LM head that also computes entropy and top-1
    accuracy for its logged metrics: memory-light for large vocabularies on a GPU, but on a CPU it took
    4.2 s vs 2.5 s per step of 16 examples (small model, 6 steps, 2 cores); genedx does not use those
    metrics."""
    import transformers
    from trl import SFTTrainer

    if fused_lm_head:
        return SFTTrainer

    class ModelLossSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            return transformers.Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return ModelLossSFTTrainer


def _eval_cases(con, recipe: SFTRecipe) -> list:
    from genedx.cases.store import load_gradable_cases
    if recipe.eval_samples == 0:
        return []
    cases = load_gradable_cases(con, recipe.eval_split)
    random.Random(recipe.seed).shuffle(cases)
    return cases if recipe.eval_samples is None else cases[:recipe.eval_samples]


def _store_run(con, run_id: str, recipe: SFTRecipe, out: Path, release: str, losses: list[tuple[int, float]]) -> None:
    with transaction(con):
        runs.start_run(con, run_id, "sft", recipe.name, asdict(recipe), release, model_dir=str(out),
                       predictor=f"model:{out}")
        if losses:
            con.executemany("INSERT INTO metric VALUES (?, ?, 'train', 'loss', ?, NULL, NULL)",
                            [[run_id, s, v] for s, v in losses])


def _validate(con, run_id, recipe, mode, out, model, tok, cases, step, release, log):
    """Greedy answers on validation cases, graded; grades and metrics stored under the SFT run."""
    from genedx.grade.metrics import compute_metrics, grade_predictions
    from genedx.grade.store import save_grades
    from genedx.model.predictor import ModelPredictor

    model.eval()
    pred = ModelPredictor.from_db(con, out, mode=mode, profiles=recipe.ranker_profiles,
                                  batch_size=recipe.eval_batch_size, max_new_tokens=recipe.max_new_tokens,
                                  prompt_options=prompt_options(recipe), model=model, tokenizer=tok)
    t0 = time.perf_counter()
    preds = pred.predict(cases, top=20)
    graded, _ = grade_predictions(preds, cases)
    metrics = compute_metrics(graded)
    name = recipe.name if "/" not in run_id else f"{recipe.name}/{mode}"
    save_grades(con, run_id, graded, metrics, kind="sft", name=name, predictor=pred.name,
                hpo_release=release, split=recipe.eval_split, step=step)
    log(f"validation, {mode} mode ({len(cases)} cases, {time.perf_counter() - t0:.0f} s): "
        + ", ".join(f"{k} {metrics[k].value:.3f}" for k in ("top1", "top5", "topmax", "well_formed")))
    return metrics
