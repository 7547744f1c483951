"""Graders: plain functions ``(output, correct_answer) -> float`` built from JSON configs.

One config schema drives training rewards, evaluation, batch scoring and the app::

    {"type": "ranked_gene", "curve": "exponential", "decay": 0.7, "max_rank": 20}
    {"type": "string_check", "operation": "eq", "input": "first_gene"}
    {"type": "format"}
    {"type": "multi", "graders": {"rank": {"type": "ranked_gene"}, "fmt": {"type": "format"}},
     "weights": {"rank": 0.9, "fmt": 0.1}}

Every config may carry a ``"name"`` (a label, as in OpenAI grader configs). Configs are data only:
they pick a registered factory and pass it checked parameters, nothing is evaluated. Researchers
add graders in Python with :func:`register_grader`.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Callable, Protocol

import yaml

from genedx.answer_format import MAX_GENES
from genedx.errors import GenedxError
from genedx.grade.parse import _lookup, answer_block, parse_answer, strip_reasoning
from genedx.kb.genes import GeneNormalizer

CURVES = ("exponential", "reciprocal", "linear")
OPERATIONS = ("eq", "ne", "like", "ilike")
STRING_INPUTS = ("first_gene", "genes", "answer", "output")


class Grader(Protocol):
    """Scores one output against the correct answer (an HGNC symbol); higher is better."""

    def __call__(self, output: str, correct_answer: str) -> float: ...


class ConfiguredGrader:
    """A grader built from a config; keeps the (validated) config it came from."""

    def __init__(self, fn: Callable[[str, str], float], config: dict[str, Any]):
        self.fn = fn
        self.config = config
        self.name = str(config.get("name") or config["type"])
        self.__name__ = self.name

    def __call__(self, output: str, correct_answer: str) -> float:
        return float(self.fn(output, correct_answer))

    def __repr__(self) -> str:
        return f"ConfiguredGrader({json.dumps(self.config, sort_keys=True)})"


_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_grader(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a grader under ``name`` so configs can use ``{"type": name, ...}``.

    Decorate either a plain grader ``f(output, correct_answer) -> float`` (config takes no
    parameters) or a factory ``f(**params) -> grader`` whose keyword parameters are the config keys
    (unknown keys are rejected; annotate parameters as int/float/str/bool to have them checked).

    >>> @register_grader("answer_length")
    ... def answer_length(max_chars: int = 2000):
    ...     return lambda output, correct_answer: 1.0 if len(output) <= max_chars else 0.0
    >>> grader_from_config({"type": "answer_length", "max_chars": 5})("SCN1A", "SCN1A")
    1.0
    """
    if not name or not isinstance(name, str):
        raise GenedxError("register_grader needs a non-empty name")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[name] = fn
        return fn
    return deco


def registered_graders() -> list[str]:
    return sorted(_REGISTRY)


def _is_plain(fn: Callable[..., Any]) -> bool:
    params = list(inspect.signature(fn).parameters)
    return params[:2] == ["output", "correct_answer"]


def grader_from_config(cfg: dict[str, Any] | str | Path | None = None) -> ConfiguredGrader:
    """Build a grader from a config dict, a JSON string, a registered name, or a JSON/YAML file.

    ``None`` gives the default ranked-gene grader.

    >>> g = grader_from_config('{"type": "ranked_gene"}')
    >>> g("<answer>TBX5, SCN1A</answer>", "SCN1A")
    0.7
    >>> grader_from_config({"type": "ranked_gene", "decay": 2})
    Traceback (most recent call last):
    genedx.errors.GenedxError: grader config 'ranked_gene': decay must be a number in (0, 1], got 2
    """
    cfg = load_config(cfg)
    return _build(cfg, path=cfg.get("name") or cfg.get("type", "grader"))


def load_config(cfg: dict[str, Any] | str | Path | None) -> dict[str, Any]:
    """A config as a dict (from a dict, JSON text, a registered name or a .json/.yaml file)."""
    if cfg is None:
        return {"type": "ranked_gene"}
    if isinstance(cfg, dict):
        return cfg
    if isinstance(cfg, Path) or (isinstance(cfg, str) and not cfg.lstrip().startswith("{")
                                 and cfg not in _REGISTRY):
        path = Path(cfg)
        if not path.is_file():
            raise GenedxError(f"grader config {str(cfg)!r}: no such file and not a registered grader "
                              f"({', '.join(registered_graders())})")
        text = path.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        except (ValueError, yaml.YAMLError) as e:
            raise GenedxError(f"grader config {path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'}: "
                              f"{str(e).splitlines()[0]}") from None
    elif isinstance(cfg, str) and cfg in _REGISTRY:
        data = {"type": cfg}
    elif isinstance(cfg, str):
        try:
            data = json.loads(cfg)
        except ValueError as e:
            raise GenedxError(f"grader config is not valid JSON: {e}") from None
    else:
        raise GenedxError(f"grader config must be a dict, JSON text or a file path, got {type(cfg).__name__}")
    if not isinstance(data, dict):
        raise GenedxError(f"grader config must be a JSON object, got {type(data).__name__}")
    return data


def _build(cfg: Any, path: str) -> ConfiguredGrader:
    if not isinstance(cfg, dict):
        raise GenedxError(f"grader config {path!r} must be an object, got {type(cfg).__name__}")
    kind = cfg.get("type")
    if not isinstance(kind, str) or kind not in _REGISTRY:
        raise GenedxError(f"grader config {path!r}: unknown type {kind!r}; known: {', '.join(registered_graders())}")
    params = {k: v for k, v in cfg.items() if k not in ("type", "name")}
    if "name" in cfg and not isinstance(cfg["name"], str):
        raise GenedxError(f"grader config {path!r}: name must be a string")
    fn = _REGISTRY[kind]
    if any(str(k).startswith("_") for k in params):
        raise GenedxError(f"grader config {path!r}: unknown key(s) {sorted(k for k in params if str(k).startswith('_'))}")
    if kind == "multi":  # sub-configs are built recursively with their own paths in errors
        params["_path"] = path
    if _is_plain(fn):
        if params:
            raise GenedxError(f"grader config {path!r}: type {kind!r} takes no parameters, got {sorted(params)}")
        return ConfiguredGrader(fn, dict(cfg))
    sig = inspect.signature(fn)
    accepted = {n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise GenedxError(f"grader config {path!r}: unknown key(s) {unknown} for type {kind!r}; "
                          f"allowed: {sorted(accepted - {'_path'})}")
    required = sorted(n for n in accepted if sig.parameters[n].default is inspect.Parameter.empty and n not in params)
    if required:
        raise GenedxError(f"grader config {path!r}: missing required key(s) {required} for type {kind!r}")
    for name, value in params.items():
        _check_type(path, name, value, sig.parameters[name].annotation)
    try:
        built = fn(**params)
    except GenedxError as e:
        msg = str(e)
        raise GenedxError(msg if msg.startswith("grader config") else f"grader config {path!r}: {msg}") from None
    if not callable(built):
        raise GenedxError(f"grader config {path!r}: the {kind!r} factory returned {type(built).__name__}, not a grader")
    if not isinstance(built, ConfiguredGrader):
        return ConfiguredGrader(built, dict(cfg))
    if "name" in cfg:  # keep the user's label on the normalised config
        built.config = {"name": cfg["name"], **built.config}
        built.name = built.__name__ = cfg["name"]
    return built


_TYPES = {"int": int, "float": (int, float), "str": str, "bool": bool, int: int, float: (int, float), str: str, bool: bool}


def _check_type(path: str, name: str, value: Any, annotation: Any) -> None:
    want = _TYPES.get(annotation)
    if want is None:
        return
    if (isinstance(value, bool) and want is not bool) or not isinstance(value, want):
        tname = annotation if isinstance(annotation, str) else annotation.__name__
        raise GenedxError(f"grader config {path!r}: {name} must be {tname}, got {json.dumps(value)}")


# ---------------------------------------------------------------------------------------------
# Built-in graders


def curve_value(rank: int | None, curve: str = "exponential", decay: float = 0.7,
                max_rank: int = MAX_GENES) -> float:
    """The ranked-gene score of a 1-based rank.

    exponential: ``decay ** (rank - 1)``; reciprocal: ``1 / rank``; linear:
    ``1 - (rank - 1) / max_rank``. Always 0.0 when absent (None) or beyond ``max_rank``.

    >>> [round(curve_value(r), 4) for r in (1, 2, 3, 20, 21, None)]
    [1.0, 0.7, 0.49, 0.0011, 0.0, 0.0]
    >>> curve_value(2, "reciprocal"), curve_value(2, "linear", max_rank=10)
    (0.5, 0.9)
    """
    if rank is None or rank < 1 or rank > max_rank:
        return 0.0
    if curve == "exponential":
        return decay ** (rank - 1)
    if curve == "reciprocal":
        return 1.0 / rank
    return 1.0 - (rank - 1) / max_rank


def _normalise_truth(correct_answer: str, normalizer: GeneNormalizer) -> str | None:
    """The approved symbol of the correct answer (an unknown one is kept, upper-cased: it can never match)."""
    if not isinstance(correct_answer, str):
        return None
    return _lookup(normalizer)[correct_answer] or correct_answer.strip().upper() or None


@register_grader("ranked_gene")
def ranked_gene(curve: str = "exponential", decay: float = 0.7, max_rank: int = MAX_GENES) -> ConfiguredGrader:
    """Score in [0, 1] by the rank of the correct gene in the parsed answer (0 when absent).

    The answer is cut at ``max_rank`` genes before ranking.

    >>> g = ranked_gene()
    >>> g("<answer>SCN1A</answer>", "SCN1A"), g("<answer>TBX5, scn1a</answer>", "SCN1A"), g("no idea", "SCN1A")
    (1.0, 0.7, 0.0)
    """
    if curve not in CURVES:
        raise GenedxError(f"curve must be one of {', '.join(CURVES)}, got {curve!r}")
    if not 0 < decay <= 1:
        raise GenedxError(f"decay must be a number in (0, 1], got {decay}")
    if max_rank < 1:
        raise GenedxError(f"max_rank must be an integer >= 1, got {max_rank}")
    normalizer = GeneNormalizer.default()

    def grade(output: str, correct_answer: str) -> float:
        truth = _normalise_truth(correct_answer, normalizer)
        if truth is None:
            return 0.0
        rank = parse_answer(output, max_rank, normalizer).rank(truth)
        return curve_value(rank, curve, decay, max_rank)
    return ConfiguredGrader(grade, {"type": "ranked_gene", "curve": curve, "decay": decay, "max_rank": max_rank})


@register_grader("string_check")
def string_check(operation: str = "eq", input: str = "first_gene", reference: str | None = None,
                 max_genes: int = MAX_GENES) -> ConfiguredGrader:
    """1.0 when the check passes, else 0.0 (like OpenAI's ``string_check`` grader).

    ``input`` chooses what is compared: ``first_gene`` (the parsed top gene, normalised),
    ``genes`` (the parsed list joined by ``", "``), ``answer`` (the text of the answer block, or the
    whole output when there is none) or ``output`` (the raw output). The reference is the correct
    answer (normalised for ``first_gene``/``genes``) unless ``reference`` fixes one. Operations:
    ``eq`` / ``ne`` exact (in)equality, ``like`` reference contained in input (case-sensitive),
    ``ilike`` the same ignoring case.

    >>> string_check()("<answer>scn1a, TBX5</answer>", "SCN1A")
    1.0
    >>> string_check("ilike", "output")("...the gene is Scn1a", "SCN1A")
    1.0
    """
    if operation not in OPERATIONS:
        raise GenedxError(f"operation must be one of {', '.join(OPERATIONS)}, got {operation!r}")
    if input not in STRING_INPUTS:
        raise GenedxError(f"input must be one of {', '.join(STRING_INPUTS)}, got {input!r}")
    if reference is not None and not isinstance(reference, str):
        raise GenedxError(f"reference must be a string, got {json.dumps(reference)}")
    if max_genes < 1:
        raise GenedxError(f"max_genes must be an integer >= 1, got {max_genes}")
    normalizer = GeneNormalizer.default()

    def grade(output: str, correct_answer: str) -> float:
        output = output if isinstance(output, str) else ""
        ref = reference if reference is not None else (correct_answer if isinstance(correct_answer, str) else "")
        if input in ("first_gene", "genes"):
            genes = parse_answer(output, max_genes, normalizer).genes
            value = (genes[0] if genes else "") if input == "first_gene" else ", ".join(genes)
            ref = normalizer.normalize(ref) or ref.strip() if ref else ref
        elif input == "answer":
            value = _answer_block(output)
        else:
            value = output
        if operation == "eq":
            ok = value == ref
        elif operation == "ne":
            ok = value != ref
        elif operation == "like":
            ok = ref in value
        else:
            ok = ref.lower() in value.lower()
        return 1.0 if ok else 0.0
    return ConfiguredGrader(grade, {"type": "string_check", "operation": operation, "input": input,
                                    "reference": reference, "max_genes": max_genes})


def _answer_block(output: str) -> str:
    block = answer_block(strip_reasoning(output))  # the same rules the parser uses
    return (block if block is not None else output).strip()


@register_grader("format")
def format_grader(max_genes: int = MAX_GENES) -> ConfiguredGrader:
    """1.0 when the output follows the answer format exactly (see :mod:`genedx.grade.parse`), else 0.0.

    >>> g = format_grader()
    >>> g("<think>fever</think>\\n<answer>SCN1A, TBX5</answer>", ""), g("SCN1A, TBX5", "")
    (1.0, 0.0)
    """
    if max_genes < 1:
        raise GenedxError(f"max_genes must be an integer >= 1, got {max_genes}")
    normalizer = GeneNormalizer.default()

    def grade(output: str, correct_answer: str) -> float:
        return 1.0 if parse_answer(output, max_genes, normalizer).well_formed else 0.0
    return ConfiguredGrader(grade, {"type": "format", "max_genes": max_genes})


@register_grader("multi")
def multi(graders: dict, weights: dict | None = None, _path: str = "multi") -> ConfiguredGrader:
    """Weighted sum of named sub-graders: ``sum(weights[k] * graders[k](...))``.

    Weights must be non-negative numbers, one per sub-grader (omitted: equal weights summing to 1).
    The sum is not rescaled, so weights summing to 1 keep scores in [0, 1].

    >>> g = grader_from_config({"type": "multi", "graders": {"rank": {"type": "ranked_gene"},
    ...     "fmt": {"type": "format"}}, "weights": {"rank": 0.9, "fmt": 0.1}})
    >>> round(g("<answer>TBX5, SCN1A</answer>", "SCN1A"), 2), round(g("TBX5, SCN1A", "SCN1A"), 2)
    (0.73, 0.63)
    """
    if not isinstance(graders, dict) or not graders:
        raise GenedxError("graders must be a non-empty object of name -> grader config")
    if weights is None:
        weights = {k: 1.0 / len(graders) for k in graders}
    if not isinstance(weights, dict):
        raise GenedxError("weights must be an object of name -> number")
    if set(weights) != set(graders):
        missing, extra = sorted(set(graders) - set(weights)), sorted(set(weights) - set(graders))
        raise GenedxError(f"weights must name exactly the graders: missing {missing}, unknown {extra}")
    for k, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 or w != w:
            raise GenedxError(f"weight {k!r} must be a non-negative number, got {json.dumps(w)}")
    subs = {k: _build(sub, path=f"{_path}.{k}") for k, sub in graders.items()}
    items = [(float(weights[k]), g) for k, g in subs.items()]

    def grade(output: str, correct_answer: str) -> float:
        return sum(w * g(output, correct_answer) for w, g in items if w)
    return ConfiguredGrader(grade, {"type": "multi", "graders": {k: g.config for k, g in subs.items()},
                                    "weights": {k: float(w) for k, w in weights.items()}})


DEFAULT_REWARD_CONFIG: dict[str, Any] = {
    "type": "multi",
    "name": "genedx_reward",
    "graders": {"ranked_gene": {"type": "ranked_gene"}, "format": {"type": "format"}},
    "weights": {"ranked_gene": 0.9, "format": 0.1},
}
