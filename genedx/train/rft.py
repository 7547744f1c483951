"""Reinforcement fine-tuning (RFT): TRL's ``GRPOTrainer`` rewarded by the ranked-gene grader.

One linear entry point, :func:`run_rft` (load data -> build model -> train with periodic validation ->
save the final model with a model card), driven by an :class:`RFTRecipe` loaded from YAML
(``training/configs/rft-*.yaml``) with ``--set key=value`` overrides.

The user-facing knobs follow a hosted RFT job (``seed``, ``batch_size``, ``learning_rate_multiplier``,
``n_epochs``, ``eval_interval``, ``eval_samples``) plus GRPO's (``num_generations``,
``max_completion_length``, ``temperature``, ``beta``). Everything else TRL offers can be passed through
``grpo_args``.

Written here (no library does it): the validation callback (greedy generation on the validation split,
graded and stored per step in DuckDB) and the model card. Training, generation, LoRA, checkpoints and
resuming are TRL / PEFT / transformers.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from genedx.errors import GenedxError
from genedx.home import Home, connect, stored_hpo_release

# learning_rate = BASE_LEARNING_RATE * learning_rate_multiplier. 1e-5 is a usual full fine-tuning rate for
# a pretrained 0.5B-1.5B model; LoRA adapters and tiny from-scratch models want 10-100x more (see recipes).
BASE_LEARNING_RATE = 1e-5

# The default reward: 0.9 * ranked-gene grade + 0.1 * well-formed answer block (the grader issue's default).
DEFAULT_GRADER: dict[str, Any] = {
    "type": "multi",
    "graders": {"rank": {"type": "ranked_gene"}, "format": {"type": "format"}},
    "weights": {"rank": 0.9, "format": 0.1},
}
# What validation grades with (the metrics' mean grade is the plain ranked-gene grade).
EVAL_GRADER: dict[str, Any] = {"type": "ranked_gene"}

RUN_FILE = "genedx_run.json"   # in the output dir: which DB run a (resumed) training belongs to


def _h(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class RFTRecipe:
    """Every knob of an RFT run. Loaded with ``genedx.train.recipes.load_recipe(RFTRecipe, yaml, sets)``."""

    # --- model -----------------------------------------------------------------------------------
    model: str | None = field(default=None, metadata=_h(
        "Starting model: an SFT checkpoint dir or any local Hugging Face causal-LM dir (no hub access)."))
    adapter: str | None = field(default=None, metadata=_h(
        "Optional PEFT adapter dir applied on top of `model` (trained further when use_lora, else merged)."))
    use_lora: bool = field(default=False, metadata=_h("Train a LoRA adapter (PEFT) instead of all weights."))
    lora_r: int = field(default=16, metadata=_h("LoRA rank."))
    lora_alpha: int = field(default=32, metadata=_h("LoRA alpha (scale = alpha / r)."))
    lora_dropout: float = field(default=0.05, metadata=_h("LoRA dropout."))
    lora_target_modules: Any = field(default="all-linear", metadata=_h(
        "Modules LoRA wraps: 'all-linear' or a list such as [q_proj, v_proj]."))
    # --- data ------------------------------------------------------------------------------------
    mode: str = field(default="closed", metadata=_h(
        "Prompt mode: 'closed' (case report only) or 'retrieval' (also the ranker's top-K candidate genes)."))
    retrieval_top_k: int | None = field(default=None, metadata=_h(
        "Candidates listed in retrieval mode; null: the starting model's trained value (genedx_model.json), else 10."))
    ranker_profiles: str = field(default="none", metadata=_h(
        "Ranker case profiles for retrieval candidates: none | train | all (use the SFT recipe's value)."))
    with_ids: bool | None = field(default=None, metadata=_h(
        "HPO ids in the case report; null: the starting model's trained value, else false."))
    train_split: str = field(default="train", metadata=_h("Split of stored cases to train on."))
    eval_split: str = field(default="validation", metadata=_h("Split of stored cases to validate on."))
    include_simulated: bool = field(default=True, metadata=_h(
        "Also train on simulated cases of the train split (validation always uses real cases only)."))
    max_train_cases: int | None = field(default=None, metadata=_h(
        "Use at most this many training cases (seeded sample); null = all."))
    train_file: str | None = field(default=None, metadata=_h(
        "Instead of the database: a JSONL of RFT records (`genedx data export`) to train on."))
    eval_file: str | None = field(default=None, metadata=_h(
        "Instead of the database: a JSONL of RFT records to validate on."))
    # --- reward ----------------------------------------------------------------------------------
    grader: Any = field(default=None, metadata=_h(
        "Grader config (dict, JSON string or path) used as the reward; default multi of ranked_gene 0.9 + format 0.1."))
    reward_functions: list | None = field(default=None, metadata=_h(
        "Several rewards instead of `grader`: a list of {name, grader, weight}; TRL sums them with reward_weights."))
    # --- hosted-RFT knobs --------------------------------------------------------------------------
    seed: int = field(default=42, metadata=_h("Random seed (data order, sampling, LoRA init)."))
    batch_size: int = field(default=8, metadata=_h(
        "Completions per device per optimizer micro-step (= prompts x num_generations); must divide by num_generations."))
    gradient_accumulation_steps: int = field(default=1, metadata=_h("Micro-steps per optimizer step."))
    learning_rate_multiplier: float = field(default=1.0, metadata=_h(
        f"Learning rate = {BASE_LEARNING_RATE:g} (base rate) x this multiplier."))
    n_epochs: float = field(default=1.0, metadata=_h("Passes over the training prompts (ignored when max_steps is set)."))
    max_steps: int | None = field(default=None, metadata=_h("Stop after this many optimizer steps (overrides n_epochs)."))
    eval_interval: int = field(default=10, metadata=_h("Validate every N optimizer steps (also before step 1 and at the end)."))
    eval_samples: int | None = field(default=64, metadata=_h(
        "Validate on this many validation cases (fixed seeded subset); null = the whole split."))
    eval_batch_size: int = field(default=16, metadata=_h("Prompts per greedy generation batch during validation."))
    eval_max_new_tokens: int | None = field(default=None, metadata=_h(
        "Tokens generated per validation case; null = max_completion_length."))
    # --- GRPO knobs ----------------------------------------------------------------------------------
    num_generations: int = field(default=4, metadata=_h("Completions sampled per prompt (the GRPO group), >= 2."))
    max_completion_length: int = field(default=128, metadata=_h("Maximum generated tokens per completion."))
    temperature: float = field(default=1.0, metadata=_h("Sampling temperature of the rollouts."))
    beta: float = field(default=0.04, metadata=_h(
        "KL coefficient against the starting model (0 = no reference model, no KL logged)."))
    grpo_args: dict = field(default_factory=dict, metadata=_h(
        "Extra trl.GRPOConfig arguments (e.g. loss_type, scale_rewards, top_p, warmup_ratio)."))
    # --- hardware ---------------------------------------------------------------------------------------
    use_cpu: bool = field(default=False, metadata=_h("Train on the CPU (required when there is no GPU)."))
    bf16: bool | str = field(default=False, metadata=_h(
        "bfloat16 mixed precision: true, false, or auto (bf16 where native: GPUs, CPUs with avx512_bf16/amx, "
        "~2.4x faster there; else fp32). Checked at start."))
    gradient_checkpointing: bool = field(default=False, metadata=_h("Trade compute for memory (GPU recipes)."))
    use_vllm: bool = field(default=False, metadata=_h("Generate rollouts with vLLM (GPU, vllm installed)."))
    vllm_mode: str = field(default="colocate", metadata=_h("vLLM mode: 'colocate' or 'server'."))
    # --- outputs ------------------------------------------------------------------------------------------
    run_name: str | None = field(default=None, metadata=_h("Human name of the run (default: the run id)."))
    output_dir: str | None = field(default=None, metadata=_h(
        "Checkpoints + final model; default <home>/runs/<run id>. The final model goes to <output_dir>/model."))
    save_steps: int = field(default=50, metadata=_h("Checkpoint every N optimizer steps (for --resume)."))
    save_total_limit: int = field(default=2, metadata=_h("Checkpoints kept."))
    log_completions: bool = field(default=True, metadata=_h("Print and store sample completions."))
    num_samples_logged: int = field(default=2, metadata=_h("Sample completions stored per logged step."))

    def __post_init__(self) -> None:
        # Fail fast, before any model or data is loaded, with a message that says how to fix the recipe.
        if not self.model:
            raise ValueError("model is not set: give a local model dir (an SFT checkpoint or a Hugging Face model "
                             "folder), e.g. --set model=~/.genedx/models/sft-small")
        self.model = str(Path(self.model).expanduser())
        if not Path(self.model).is_dir():
            raise ValueError(f"model dir {self.model} does not exist (train one with `genedx train sft` or "
                             f"`genedx model init`)")
        if self.adapter is not None:
            self.adapter = str(Path(self.adapter).expanduser())
            if not Path(self.adapter, "adapter_config.json").exists():
                raise ValueError(f"adapter {self.adapter} has no adapter_config.json (not a PEFT adapter dir)")
        if self.mode not in ("closed", "retrieval"):
            raise ValueError(f"mode {self.mode!r} must be 'closed' or 'retrieval'")
        if self.num_generations < 2:
            raise ValueError(f"num_generations ({self.num_generations}) must be >= 2: GRPO compares completions "
                             f"within a group")
        if self.batch_size < 1 or self.batch_size % self.num_generations:
            fix = self.num_generations * max(1, round(self.batch_size / self.num_generations))
            raise ValueError(f"batch_size ({self.batch_size}) must be divisible by num_generations "
                             f"({self.num_generations}): e.g. batch_size={fix}")
        for name in ("gradient_accumulation_steps", "eval_interval", "max_completion_length", "eval_batch_size",
                     "save_steps", "lora_r"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} ({getattr(self, name)}) must be >= 1")
        for name in ("max_steps", "eval_samples", "max_train_cases", "eval_max_new_tokens", "retrieval_top_k"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} ({v}) must be >= 1 or null")
        if not self.learning_rate_multiplier > 0:
            raise ValueError(f"learning_rate_multiplier ({self.learning_rate_multiplier}) must be > 0")
        if self.max_steps is None and not self.n_epochs > 0:
            raise ValueError(f"n_epochs ({self.n_epochs}) must be > 0 (or set max_steps)")
        if not self.temperature > 0:
            raise ValueError(f"temperature ({self.temperature}) must be > 0: GRPO needs varied samples")
        if self.beta < 0:
            raise ValueError(f"beta ({self.beta}) must be >= 0")
        if self.bf16 not in (True, False, "auto"):
            raise ValueError(f"bf16 must be true, false or auto, not {self.bf16!r}")
        if self.use_cpu and self.use_vllm:
            raise ValueError("use_vllm needs a GPU: set use_vllm=false with use_cpu")
        if self.use_vllm and self.vllm_mode not in ("colocate", "server"):
            raise ValueError(f"vllm_mode {self.vllm_mode!r} must be 'colocate' or 'server'")
        if self.grader is not None and self.reward_functions:
            raise ValueError("set either grader (one reward) or reward_functions (several), not both")
        if self.reward_functions is not None:
            if not isinstance(self.reward_functions, list) or not self.reward_functions:
                raise ValueError("reward_functions must be a non-empty list of {name, grader, weight}")
            for i, rf in enumerate(self.reward_functions):
                if not isinstance(rf, dict) or "grader" not in rf:
                    raise ValueError(f"reward_functions[{i}] must be a mapping with a 'grader' config "
                                     f"(and optional name, weight)")
                unknown = set(rf) - {"name", "grader", "weight"}
                if unknown:
                    raise ValueError(f"reward_functions[{i}] has unknown key(s) {sorted(unknown)} "
                                     f"(known: name, grader, weight)")
                if not isinstance(rf.get("weight", 1.0), (int, float)):
                    raise ValueError(f"reward_functions[{i}].weight must be a number")
        if (self.train_file is None) != (self.eval_file is None) and self.train_file is None:
            raise ValueError("eval_file is set but train_file is not: give both files or neither (database)")
        for name in ("train_file", "eval_file"):
            p = getattr(self, name)
            if p is not None and not Path(p).expanduser().exists():
                raise ValueError(f"{name} {p} does not exist (write one with `genedx data export`)")
        if not isinstance(self.grpo_args, dict):
            raise ValueError("grpo_args must be a mapping of trl.GRPOConfig argument: value")
        reserved = {"output_dir", "per_device_train_batch_size", "num_generations", "learning_rate", "seed",
                    "use_cpu", "bf16", "beta", "temperature", "max_completion_length", "reward_weights"}
        clash = reserved & set(self.grpo_args)
        if clash:
            raise ValueError(f"grpo_args may not set {sorted(clash)}: use the recipe knobs of the same meaning")

    @property
    def learning_rate(self) -> float:
        return BASE_LEARNING_RATE * self.learning_rate_multiplier


def check_environment(recipe: RFTRecipe) -> None:
    """Hardware checks that depend on the machine, not the recipe (run before anything is loaded)."""
    import torch

    if not recipe.use_cpu and not torch.cuda.is_available():
        raise GenedxError("no GPU found: set use_cpu=true to train on the CPU")
    from genedx.train.hardware import resolve_bf16
    resolve_bf16(recipe.bf16, recipe.use_cpu)   # raises when an explicit bf16=true is not native here
    if recipe.use_vllm:
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise GenedxError("use_vllm=true but vllm is not installed: pip install vllm, or set use_vllm=false") from None
    try:
        from trl import GRPOConfig

        names = {f.name for f in dataclasses.fields(GRPOConfig)}
    except ImportError as e:  # pragma: no cover - trl is a dependency
        raise GenedxError(f"trl is not importable: {e}") from None
    unknown = sorted(set(recipe.grpo_args) - names)
    if unknown:
        raise GenedxError(f"grpo_args: unknown trl.GRPOConfig argument(s) {', '.join(unknown)}")


# --- rewards -------------------------------------------------------------------------------------
class RewardLog:
    """Keeps the last batch of rollouts each reward function saw, for the sample-completion log."""

    def __init__(self) -> None:
        self.last: list[dict[str, Any]] = []

    def wrap(self, fn: Callable[..., list[float]], name: str, keep: bool) -> Callable[..., list[float]]:
        def reward(completions: list[Any], correct_answer: list[str], **kw: Any) -> list[float]:
            out = [float(x) for x in fn(completions, correct_answer=correct_answer, **kw)]
            if keep:
                ids = kw.get("id") or [None] * len(out)
                prompts = kw.get("prompts") or [None] * len(out)
                self.last = [{"case_id": i, "prompt": _text(p), "completion": _text(c), "correct_answer": a,
                              "reward": r} for i, p, c, a, r in zip(ids, prompts, completions, correct_answer, out)]
            return out

        reward.__name__ = name  # TRL logs rewards/<name>/mean
        return reward


def _text(x: Any) -> str | None:
    """Plain text of a completion/prompt that may be chat messages."""
    if x is None or isinstance(x, str):
        return x
    if isinstance(x, list):
        return "\n".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in x)
    return str(x)


def build_rewards(recipe: RFTRecipe, log: RewardLog | None = None) -> tuple[list[Callable], list[float] | None]:
    """TRL reward functions (+ weights) from the recipe; bad grader configs fail here, before training."""
    from genedx.grade.reward import make_reward

    log = log or RewardLog()
    specs = recipe.reward_functions or [{"name": "grade", "grader": recipe.grader or DEFAULT_GRADER, "weight": 1.0}]
    funcs, weights = [], []
    for i, spec in enumerate(specs):
        name = str(spec.get("name") or f"reward{i}")
        try:
            fn = make_reward(spec["grader"])
        except GenedxError as e:
            raise GenedxError(f"reward {name}: {e}") from None
        funcs.append(log.wrap(fn, name, keep=(i == 0)))
        weights.append(float(spec.get("weight", 1.0)))
    return funcs, (weights if recipe.reward_functions else None)


# --- data ----------------------------------------------------------------------------------------------
def read_records(path: str | Path) -> list[dict[str, Any]]:
    """RFT records (JSONL: ``prompt`` + ``correct_answer``, as `genedx data export` writes) with line-level errors."""
    import gzip

    p = Path(path).expanduser()
    opener = gzip.open if p.suffix == ".gz" else open
    out = []
    with opener(p, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise GenedxError(f"{p}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(rec, dict) or "prompt" not in rec or not rec.get("correct_answer"):
                raise GenedxError(f"{p}:{n}: an RFT record needs 'prompt' and 'correct_answer'")
            rec.setdefault("id", f"{p.name}:{n}")
            out.append(rec)
    return out


def records_from_db(home: Home, recipe: RFTRecipe, split: str, simulated: bool, cap: int | None,
                    seed: int) -> list[dict[str, Any]]:
    """RFT records of one stored split in the recipe's prompt mode, built by ``genedx.model.prompts``
    exactly as SFT and the model predictor build them. ``cap`` cases are sampled (seeded) before the
    prompts are built, since retrieval prompts run the ranker per case."""
    from genedx.cases.store import load_gradable_cases
    from genedx.model.prompts import PromptBuilder

    con = connect(home, read_only=True)
    try:
        cases = load_gradable_cases(con, split, include_simulated=simulated)
        rng = random.Random(seed)
        rng.shuffle(cases)
        cases = cases[:cap] if cap else cases
        if not cases:
            return []
        builder = PromptBuilder.from_db(con, mode=recipe.mode, profiles=recipe.ranker_profiles,
                                        **prompt_options(recipe))
        return [builder.record(c) | {"source": c.source} for c in cases]
    finally:
        con.close()


def prompt_options(recipe: RFTRecipe) -> dict[str, Any]:
    """The prompt layout: the starting model's (saved by SFT), with the recipe's explicit values on top."""
    from genedx.model.prompts import model_prompt_options
    opts = model_prompt_options(recipe.model)
    if recipe.retrieval_top_k is not None:
        opts["top_k"] = recipe.retrieval_top_k
    if recipe.with_ids is not None:
        opts["with_ids"] = recipe.with_ids
    return opts


def load_data(recipe: RFTRecipe, home: Home) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train records, validation records) of the recipe, subsampled as asked (seeded; the validation
    subset is fixed for the whole run so every evaluation sees the same cases)."""
    if recipe.train_file:
        rng = random.Random(recipe.seed)
        train = read_records(recipe.train_file)
        val = read_records(recipe.eval_file) if recipe.eval_file else []
        if recipe.max_train_cases and len(train) > recipe.max_train_cases:
            train = rng.sample(train, recipe.max_train_cases)
        if recipe.eval_samples and len(val) > recipe.eval_samples:
            val = random.Random(recipe.seed + 1).sample(val, recipe.eval_samples)
    else:
        train = records_from_db(home, recipe, recipe.train_split, recipe.include_simulated, recipe.max_train_cases,
                                recipe.seed)
        val = records_from_db(home, recipe, recipe.eval_split, False, recipe.eval_samples, recipe.seed + 1)
    if not train:
        raise GenedxError(f"no training cases in split {recipe.train_split!r}: import and split cases "
                          f"(`genedx data import`, `genedx data split`) or set train_file")
    if not val:
        raise GenedxError(f"no validation cases in split {recipe.eval_split!r}: run `genedx data split` "
                          f"or set eval_file")
    return train, val


def to_dataset(records: Sequence[dict[str, Any]]):
    """A ``datasets.Dataset`` with the columns GRPO and the reward need (prompt, correct_answer, id)."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": r["prompt"], "correct_answer": str(r["correct_answer"]),
                               "id": str(r.get("id"))} for r in records])


# --- model ------------------------------------------------------------------------------------------
def load_policy(recipe: RFTRecipe):
    """(model, tokenizer, peft_config) from local dirs only; an SFT adapter is merged unless LoRA continues it.

    An adapter-only dir given as ``model`` (e.g. a LoRA SFT output) loads onto the base model it names.
    The model is loaded on the CPU; the trainer (accelerate) places it on its device.
    """
    import torch

    from genedx.model.load import load_model

    # Full fine-tuning keeps fp32 master weights (bf16 runs autocast on top): a bf16 weight cannot take a
    # 1e-5-scale update (its spacing near 0.05 is ~2e-4), so the update would round away. A LoRA run
    # trains only the adapter, so its frozen base can sit in bf16.
    dtype = torch.bfloat16 if (recipe.bf16 and recipe.use_lora) else torch.float32
    model, tok = load_model(recipe.model, recipe.adapter, device="cpu", dtype=dtype, trainable=True)
    if tok.chat_template is None:
        raise GenedxError(f"tokenizer in {recipe.model} has no chat template: RFT prompts are chat messages")
    peft_config = None
    if hasattr(model, "merge_and_unload"):      # an adapter came with the model
        if not recipe.use_lora:
            model = model.merge_and_unload()      # full fine-tuning of base + adapter
    elif recipe.use_lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                                 target_modules=recipe.lora_target_modules, task_type="CAUSAL_LM")
    return model, tok, peft_config


# --- validation ----------------------------------------------------------------------------------------
def grade_validation(records: Sequence[dict[str, Any]], outputs: Sequence[str]) -> list:
    """Each validation output graded with the plain ranked-gene grader (``GradedCase`` per record; the
    reward's format bonus is not part of the metrics)."""
    from genedx.grade.graders import grader_from_config
    from genedx.grade.metrics import grade_output

    grader = grader_from_config(EVAL_GRADER)
    return [grade_output(str(r.get("id")), str(r["correct_answer"]), o, grader, r.get("source"))
            for r, o in zip(records, outputs)]


def validation_values(graded: Sequence[Any], seed: int = 0, n_boot: int = 1000) -> dict[str, tuple]:
    """Validation metrics of graded outputs: ``{name: (value, lo, hi)}`` for top1/top5/topmax/mean_grade/..."""
    from genedx.grade.metrics import compute_metrics

    return metrics_to_values(compute_metrics(graded, n_boot=n_boot, seed=seed, by_source=False))


# genedx metric names (DB, plots) <- the grader's metric names (either spelling accepted)
_METRIC_KEYS = {"top1": "top@1", "top5": "top@5", "top10": "top@10", "topmax": "top@max",
                "mean_grade": "mean_grade", "well_formed": "well_formed", "mrr": "mrr"}


def metrics_to_values(m: Any) -> dict[str, tuple]:
    """The grader's ``Metrics`` as ``{name: (value, lo, hi)}`` with genedx's metric names (NaN -> None)."""
    def clean(x: float) -> float | None:
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
    out: dict[str, tuple] = {}
    for name, key in _METRIC_KEYS.items():
        e = m.values.get(name, m.values.get(key))
        if e is not None:
            if clean(e.value) is not None:
                out[name] = (e.value, clean(e.lo), clean(e.hi))
    return out


# --- the run ----------------------------------------------------------------------------------------------
@dataclass
class RFTResult:
    run_id: str
    output_dir: Path
    model_dir: Path
    train_seconds: float
    steps: int
    validation: dict[int, dict[str, tuple]]   # step -> metrics

    @property
    def final(self) -> dict[str, tuple]:
        return self.validation[max(self.validation)] if self.validation else {}


def _make_callback(home: Home, run_id: str, recipe: RFTRecipe, val_records: list[dict[str, Any]],
                   tokenizer, reward_log: RewardLog, log: Callable[[str], None], result: dict[int, dict]):
    """The ``TrainerCallback`` that validates every ``eval_interval`` steps and stores all logs per step."""
    from transformers import TrainerCallback

    from genedx.grade.store import save_grades
    from genedx.model.predictor import greedy_generate
    from genedx.train import runs

    max_new = recipe.eval_max_new_tokens or recipe.max_completion_length

    class RFTCallback(TrainerCallback):
        trainer = None  # set after the trainer exists (for unwrapping the model)

        def __init__(self) -> None:
            self.last_eval_step = -1
            self.last_train: dict[str, Any] = {}
            self.step_started = time.perf_counter()

        def _validate(self, state, model) -> None:
            step = state.global_step
            if step == self.last_eval_step or not state.is_world_process_zero:
                return
            self.last_eval_step = step
            m = self.trainer.accelerator.unwrap_model(model) if self.trainer is not None else model
            t0 = time.perf_counter()
            outputs = greedy_generate(m, tokenizer, [r["prompt"] for r in val_records], max_new,
                                      recipe.eval_batch_size)
            graded = grade_validation(val_records, outputs)
            values = validation_values(graded, seed=recipe.seed)
            values["eval_seconds"] = (time.perf_counter() - t0, None, None)
            result[step] = values
            samples = [{"case_id": r.get("id"), "prompt": _text(r["prompt"]), "completion": o,
                        "correct_answer": r["correct_answer"], "reward": None}
                       for r, o in list(zip(val_records, outputs))[:recipe.num_samples_logged]]
            # per-case grades and predictions of the latest validation (replaced at each one), for
            # SQL comparisons with `genedx eval` runs on the same cases
            runs.write(home, lambda con: (runs.record_metrics(con, run_id, step, "validation", values),
                                          runs.record_samples(con, run_id, step, "validation", samples),
                                          save_grades(con, run_id, graded, transaction=False)))

            def pct(k: str) -> str:
                v = values.get(k)
                return "-" if not v or v[0] is None else f"{100 * v[0]:.1f}%"
            t = self.last_train   # the training signals of the latest logged step, on the same line
            train = (f"  | train reward {t['reward']:.3f}  kl {t.get('kl', float('nan')):.4f}  zero-spread groups "
                     f"{t.get('frac_reward_zero_std', float('nan')):.2f}" if "reward" in t else "")
            log(f"[validation] step {step}: top@1 {pct('top1')}  top@5 {pct('top5')}  top@max {pct('topmax')}  "
                f"mean grade {pct('mean_grade')}  well-formed {pct('well_formed')}  (n={len(val_records)}, "
                f"{values['eval_seconds'][0]:.0f} s){train}")
            if recipe.log_completions and samples:
                log(f"[validation sample] {samples[0]['case_id']} (true {samples[0]['correct_answer']}): "
                    f"{(samples[0]['completion'] or '')[:300]!r}")

        def on_train_begin(self, args, state, control, model=None, **kw):
            self._validate(state, model)   # step 0 (or the resumed step): the starting point of the curve

        def on_step_begin(self, args, state, control, **kw):
            self.step_started = time.perf_counter()

        def on_step_end(self, args, state, control, model=None, **kw):
            self.step_seconds = time.perf_counter() - self.step_started
            if state.global_step % recipe.eval_interval == 0:
                self._validate(state, model)

        def on_train_end(self, args, state, control, model=None, **kw):
            self._validate(state, model)

        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or not state.is_world_process_zero or "reward" not in logs:
                return
            step = state.global_step
            keys = {"reward": "reward", "reward_std": "reward_std", "frac_reward_zero_std": "frac_reward_zero_std",
                    "kl": "kl", "loss": "loss", "completions/mean_length": "completion_length",
                    "learning_rate": "learning_rate", "entropy": "entropy"}
            values: dict[str, Any] = {new: logs[old] for old, new in keys.items()
                                      if isinstance(logs.get(old), (int, float)) and not math.isnan(logs[old])}
            values.update({k: v for k, v in logs.items() if k.startswith("rewards/") and isinstance(v, (int, float))})
            values["step_seconds"] = getattr(self, "step_seconds", None)
            # throughput and memory, for the CPU/GPU benchmark tables: completion tokens generated per second
            # of the whole step (generation + scoring + update), peak accelerator memory so far
            length = values.get("completion_length")
            if length and values["step_seconds"]:
                n = recipe.batch_size * recipe.gradient_accumulation_steps
                values["completion_tokens_per_s"] = length * n / values["step_seconds"]
            import torch
            if torch.cuda.is_available():
                values["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
            self.last_train = values
            samples = reward_log.last[:recipe.num_samples_logged] if recipe.log_completions else []
            runs.write(home, lambda con: (runs.record_metrics(con, run_id, step, "train", values),
                                          runs.record_samples(con, run_id, step, "train", samples)))
            kl = f"  kl {values['kl']:.4f}" if "kl" in values else ""
            log(f"[train] step {step}: reward {values.get('reward', float('nan')):.3f}  "
                f"zero-spread groups {values.get('frac_reward_zero_std', float('nan')):.2f}{kl}  "
                f"step {values['step_seconds'] or 0:.1f} s")
            for smp in samples[:1]:
                log(f"[train sample] {smp['case_id']} (true {smp['correct_answer']}, reward {smp['reward']:.2f}): "
                    f"{(smp['completion'] or '')[:200]!r}")

    return RFTCallback()


def _grpo_config(recipe: RFTRecipe, output_dir: Path, reward_weights: list[float] | None):
    from trl import GRPOConfig

    args: dict[str, Any] = dict(
        output_dir=str(output_dir), seed=recipe.seed, data_seed=recipe.seed,
        per_device_train_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        learning_rate=recipe.learning_rate, num_train_epochs=recipe.n_epochs,
        max_steps=recipe.max_steps if recipe.max_steps is not None else -1,
        num_generations=recipe.num_generations, max_completion_length=recipe.max_completion_length,
        temperature=recipe.temperature, beta=recipe.beta,
        use_cpu=recipe.use_cpu, bf16=recipe.bf16,
        use_vllm=recipe.use_vllm, vllm_mode=recipe.vllm_mode,
        logging_steps=1, save_strategy="steps", save_steps=recipe.save_steps, save_total_limit=recipe.save_total_limit,
        report_to="none", remove_unused_columns=False, disable_tqdm=True,
        log_completions=False,  # TRL's rich table prints whole prompts; the callback logs one line per sample
        reward_weights=reward_weights,
    )
    # transformers 5 renamed gradient_checkpointing to activation_checkpointing (TRL defaults it to on)
    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    args["activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"] = \
        recipe.gradient_checkpointing
    args.update(recipe.grpo_args)
    try:
        return GRPOConfig(**args)
    except (ValueError, TypeError) as e:
        raise GenedxError(f"invalid GRPO settings: {str(e).splitlines()[0]}") from None


def _recipe_yaml(recipe: RFTRecipe) -> str:
    return yaml.safe_dump(dataclasses.asdict(recipe), sort_keys=False)


def run_rft(recipe: RFTRecipe, home: Home, resume: bool = False,
            log: Callable[[str], None] = print) -> RFTResult:
    """Train ``recipe.model`` with GRPO on the recipe's cases; validate every ``eval_interval`` steps.

    Stores a ``run`` row (kind ``rft``) with metrics per step, checkpoints in the output dir (``resume=True``
    continues from the last one and keeps the same run id), and writes the final model (merged when LoRA)
    with its tokenizer and a model card to ``<output_dir>/model``.
    """
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOTrainer

    from genedx.train import runs

    # 1. Everything that can fail fast, before loading a model.
    check_environment(recipe)
    from genedx.train.hardware import resolve_bf16
    bf16, note = resolve_bf16(recipe.bf16, recipe.use_cpu)
    if note:
        log(note)
    recipe = dataclasses.replace(recipe, bf16=bf16)
    reward_log = RewardLog()
    reward_funcs, reward_weights = build_rewards(recipe, reward_log)
    home = home.ensure()
    state = _process_state(recipe)
    main = state.is_main_process
    run_id, output_dir = _run_identity(recipe, home, resume)
    if state.num_processes > 1:   # one run id / output dir for all ranks (accelerate launch)
        from accelerate.utils import broadcast_object_list

        shared = [run_id, str(output_dir)]
        broadcast_object_list(shared, from_process=0)
        run_id, output_dir = shared[0], Path(shared[1])
    last_ckpt = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if resume and last_ckpt is None:
        raise GenedxError(f"nothing to resume: no checkpoint-* folder in {output_dir}")
    grpo_args = _grpo_config(recipe, output_dir, reward_weights)
    # Every rank reads its data through read-only connections (DuckDB allows many readers, one writer);
    # only the main process writes, after all ranks have read.
    train_records, val_records = load_data(recipe, home)
    hpo_release = stored_hpo_release(home)
    state.wait_for_everyone()

    # 2. Run row + identity file (so --resume finds the run again).
    name = recipe.run_name or run_id
    resumed_step = _checkpoint_step(last_ckpt) if resume else None
    if main:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / RUN_FILE).write_text(json.dumps({"run_id": run_id, "recipe": dataclasses.asdict(recipe)},
                                                      indent=1))

        def _start(con):
            runs.start_run(con, run_id, "rft", name, dataclasses.asdict(recipe) | {
                "n_train": len(train_records), "n_validation": len(val_records)}, hpo_release,
                predictor=f"model:{output_dir / 'model'}")
            if resumed_step is not None:
                runs.drop_metrics_after(con, run_id, resumed_step)
        runs.write(home, _start)
        log(f"RFT run {run_id}: {len(train_records)} training prompts, {len(val_records)} validation cases, "
            f"mode {recipe.mode}, lr {recipe.learning_rate:g}, "
            f"{'LoRA' if recipe.use_lora else 'full fine-tuning'}, output {output_dir}"
            + (f", resuming from {last_ckpt}" if resume else ""))

    def _finish(status: str, model_dir: str | None = None) -> None:
        if main:
            runs.write(home, lambda con: runs.finish_run(con, run_id, status, model_dir))

    validation: dict[int, dict[str, tuple]] = {}
    try:
        model, tokenizer, peft_config = load_policy(recipe)
        callback = _make_callback(home, run_id, recipe, val_records, tokenizer, reward_log, log, validation)
        trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=grpo_args,
                              train_dataset=to_dataset(train_records), processing_class=tokenizer,
                              peft_config=peft_config, callbacks=[callback])
        callback.trainer = trainer
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)   # raw log dicts; the callback prints readable lines instead
        t0 = time.perf_counter()
        trainer.train(resume_from_checkpoint=last_ckpt if resume else None)
        train_seconds = time.perf_counter() - t0
        steps = trainer.state.global_step
        model_dir = output_dir / "model"
        if trainer.accelerator.is_main_process:
            _save_final(trainer, tokenizer, model_dir, recipe, run_id, steps)
    except KeyboardInterrupt:
        _finish("interrupted")
        raise GenedxError(f"run {run_id} interrupted: continue it with --resume "
                          f"(--set output_dir={output_dir})") from None
    except BaseException:
        _finish("failed")
        raise

    _finish("done", str(model_dir))
    result = RFTResult(run_id, output_dir, model_dir, train_seconds, steps, validation)
    if main:
        write_model_card(home, run_id, recipe, model_dir, len(train_records), len(val_records), train_seconds, steps,
                         hpo_release)
    return result


def _process_state(recipe: RFTRecipe):
    """accelerate's process state (rank, world size), created the way the trainer will create it."""
    from accelerate import PartialState

    return PartialState(cpu=recipe.use_cpu)




def _run_identity(recipe: RFTRecipe, home: Home, resume: bool) -> tuple[str, Path]:
    """(run id, output dir): a resumed run keeps the id stored in its output dir."""
    if recipe.output_dir:
        output_dir = Path(recipe.output_dir).expanduser().resolve()
        run_file = output_dir / RUN_FILE
        if resume:
            if not run_file.exists():
                raise GenedxError(f"nothing to resume: {output_dir} holds no genedx RFT run ({RUN_FILE})")
            return json.loads(run_file.read_text())["run_id"], output_dir
        if run_file.exists() and any(output_dir.glob("checkpoint-*")):
            raise GenedxError(f"{output_dir} already holds a run with checkpoints: pass --resume to continue it, "
                              f"or choose another output_dir")
        return runs_new_id(), output_dir
    if resume:
        raise GenedxError("--resume needs the interrupted run's folder: --set output_dir=<home>/runs/<run id>")
    run_id = runs_new_id()
    return run_id, home.runs_dir / run_id


def runs_new_id() -> str:
    from genedx.train.runs import new_run_id

    return new_run_id("rft")


def _checkpoint_step(ckpt: str | None) -> int | None:
    if not ckpt:
        return None
    try:
        return int(Path(ckpt).name.split("-")[-1])
    except ValueError:
        return None


def _save_final(trainer, tokenizer, model_dir: Path, recipe: RFTRecipe, run_id: str, steps: int) -> None:
    """Save a self-contained model dir (LoRA merged into the base) that `model:DIR` predictors load."""
    from genedx.model.bases import provenance
    from genedx.model.load import read_model_meta
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):
        adapter_dir = model_dir.parent / "adapter"
        model.save_pretrained(str(adapter_dir))   # the adapter alone too, for stacking / inspection
        model = model.merge_and_unload()
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    # Keep the starting model's tokenizer class (genedx's own models pin PreTrainedTokenizerFast so that
    # AutoTokenizer never swaps in an architecture-specific class).
    src_cfg, dst_cfg = Path(recipe.model) / "tokenizer_config.json", model_dir / "tokenizer_config.json"
    if src_cfg.exists() and dst_cfg.exists():
        src_class = json.loads(src_cfg.read_text()).get("tokenizer_class")
        cfg = json.loads(dst_cfg.read_text())
        if src_class and cfg.get("tokenizer_class") != src_class:
            cfg["tokenizer_class"] = src_class
            dst_cfg.write_text(json.dumps(cfg, indent=2))
    (model_dir / "genedx_model.json").write_text(json.dumps({
        "created_by": "genedx train rft", "run_id": run_id, "base_model": recipe.model, "adapter": recipe.adapter,
        "mode": recipe.mode, "steps": steps, "recipe": dataclasses.asdict(recipe),
        "prompt": prompt_options(recipe), "hpo_release": read_model_meta(recipe.model).get("hpo_release"),
        "pretrained_base": provenance(recipe.model) or None}, indent=2, default=str))


def _base_line(model_dir: str) -> str:
    """The model card's pretrained-base line (licence and source package), empty for from-scratch models."""
    from genedx.model.bases import provenance
    p = provenance(model_dir)
    if not p:
        return ""
    return (f"- **Pretrained base**: {p.get('title', p.get('base'))}, licence {p.get('licence', 'see source')}, "
            f"from the PyPI package `{p.get('source_package')}` {p.get('source_package_version', '')} "
            f"({p.get('source_quantisation', '')}, dequantised)\n")


def write_model_card(home: Home, run_id: str, recipe: RFTRecipe, model_dir: Path, n_train: int, n_val: int,
                     train_seconds: float, steps: int, hpo_release: str | None) -> Path:
    """``model_dir/README.md``: base model, data, recipe, validation metrics per step, curve image."""
    from genedx.train import runs

    con = connect(home)
    try:
        m = runs.run_metrics(con, run_id, split="validation")
        curve = None
        try:
            curve = runs.plot_runs(con, [run_id], model_dir / "validation_curve.png",
                                   metrics=("top1", "top5", "mean_grade"), title=f"RFT {run_id}")
        except GenedxError:
            pass
    finally:
        con.close()
    steps_seen = sorted({s for series in m.values() for s in series})
    cols = [c for c in ("top1", "top5", "topmax", "mean_grade", "well_formed") if f"validation/{c}" in m]
    lines = ["| step | " + " | ".join(cols) + " |", "|---:|" + "---:|" * len(cols)]
    for s in steps_seen:
        cells = []
        for c in cols:
            v = m[f"validation/{c}"].get(s)
            cells.append("" if not v else f"{100 * v[0]:.1f}" + (f" [{100 * v[1]:.1f}-{100 * v[2]:.1f}]"
                                                                  if v[1] is not None and v[2] is not None else ""))
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    data = (f"train file `{recipe.train_file}`, validation file `{recipe.eval_file}`" if recipe.train_file else
            f"stored cases: split `{recipe.train_split}`{' + simulated' if recipe.include_simulated else ''} for "
            f"training, split `{recipe.eval_split}` (real cases) for validation")
    card = f"""# genedx RFT model `{recipe.run_name or run_id}`

Gene-ranking model trained with reinforcement fine-tuning (TRL GRPO, reward = genedx grader) by
`genedx train rft`. Answers in genedx's format (`<think>…</think><answer>GENE1, GENE2, …</answer>`).
Load it with `genedx score CASES --predictor model:{model_dir} --mode {recipe.mode}`.

- **Run**: `{run_id}` ({steps} optimizer steps, {train_seconds / 60:.1f} min training)
- **Base model**: `{recipe.model}`{f" + adapter `{recipe.adapter}`" if recipe.adapter else ""}
  ({'LoRA r=%d, merged into the weights' % recipe.lora_r if recipe.use_lora else 'full fine-tuning'})
{_base_line(recipe.model)}- **Prompt mode**: `{recipe.mode}`
- **Data**: {data}; {n_train} training prompts, {n_val} validation cases
- **HPO release**: {hpo_release or 'unknown'}
- **Reward**: `{json.dumps(recipe.reward_functions or recipe.grader or DEFAULT_GRADER)}`

## Validation (greedy decoding; %, bootstrap 95% interval)

{chr(10).join(lines)}

{"![validation curve](validation_curve.png)" if curve else ""}

## Recipe

```yaml
{_recipe_yaml(recipe)}```
"""
    path = model_dir / "README.md"
    path.write_text(card)
    return path
