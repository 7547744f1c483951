"""Recipes: dataclasses loaded from YAML, with ``--set key=value`` overrides, validated before work starts.

Each training stage defines its own recipe dataclass (fields with ``metadata={"help": ...}``,
checks in ``__post_init__``) and loads it with :func:`load_recipe`.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from genedx.errors import GenedxError

R = TypeVar("R")


def _coerce(value: str, typ: Any) -> Any:
    """A ``--set`` string to the field's type (YAML rules: 1e-5, true, null, [a, b])."""
    parsed = yaml.safe_load(value)
    origin = typing.get_origin(typ)
    if typ is float and isinstance(parsed, int):
        return float(parsed)
    if typ is str or (origin is typing.Union and str in typing.get_args(typ) and not isinstance(parsed, (int, float, bool, list, dict))):
        return value if parsed is not None else None
    return parsed


def load_recipe(cls: type[R], path: str | Path | None, overrides: list[str] | None = None) -> R:
    """Build ``cls`` from a YAML file plus ``key=value`` overrides; unknown keys are errors."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise GenedxError(f"recipe {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise GenedxError(f"recipe {p} is not valid YAML: {e}".splitlines()[0]) from None
        if not isinstance(data, dict):
            raise GenedxError(f"recipe {p} must be a mapping of knob: value")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise GenedxError(f"--set {item!r}: expected key=value")
        if key.strip() not in fields:
            raise GenedxError(f"--set {key}: unknown recipe knob (known: {', '.join(sorted(fields))})")
        data[key.strip()] = _coerce(value, hints[key.strip()])
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise GenedxError(f"recipe has unknown knob(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    try:
        return cls(**data)
    except (TypeError, ValueError) as e:
        raise GenedxError(f"invalid recipe: {e}") from None


def recipe_to_dict(recipe: Any) -> dict[str, Any]:
    return dataclasses.asdict(recipe)
