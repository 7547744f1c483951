"""Describe a model directory without loading its weights (``genedx model show``): architecture,
size, precision, parameter count (from the safetensors headers), vocabulary, adapter, and how
genedx made it (``genedx_model.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genedx.errors import GenedxError
from genedx.model.load import ADAPTER_CONFIG, _check_model_dir, read_model_meta, resolve_model_dirs

_CONFIG_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "intermediate_size", "max_position_embeddings", "vocab_size", "tie_word_embeddings")


def _parameters(model_dir: Path) -> int | None:
    """Parameter count summed over the safetensors shards' tensor shapes (headers only; None if none)."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for f in files:
        try:
            with safe_open(str(f), framework="numpy") as st:
                for name in st.keys():
                    n = 1
                    for d in st.get_slice(name).get_shape():
                        n *= int(d)
                    total += n
        except Exception as e:  # safetensors raises its own error types for a corrupt header
            raise GenedxError(f"model dir {model_dir}: {f.name} is not a readable safetensors file "
                              f"({str(e).splitlines()[0][:200] if str(e) else type(e).__name__})") from None
    return total


def describe_model_dir(path: str | Path) -> dict[str, Any]:
    """A JSON-ready description of a model dir (or an adapter-only dir and its base); a one-line
    GenedxError when it is not a usable model dir."""
    base, adapter = resolve_model_dirs(path)
    _check_model_dir(base)
    config = json.loads((base / "config.json").read_text())
    files = sorted(p for p in base.iterdir() if p.is_file())
    out: dict[str, Any] = {
        "path": str(base),
        "architectures": config.get("architectures"),
        **{k: config.get(k) for k in _CONFIG_KEYS if k in config},
        "dtype": config.get("torch_dtype") or config.get("dtype"),
        "parameters": _parameters(base),
        "weights_bytes": sum(p.stat().st_size for p in files if p.suffix in (".safetensors", ".bin")),
        "files": [p.name for p in files],
        "adapter": None,
        "genedx": read_model_meta(base),
    }
    if adapter is not None:
        try:
            acfg = json.loads((adapter / ADAPTER_CONFIG).read_text())
        except (OSError, ValueError) as e:
            raise GenedxError(f"adapter dir {adapter}: cannot read {ADAPTER_CONFIG} ({e})") from None
        out["adapter"] = {"path": str(adapter), "peft_type": acfg.get("peft_type"), "r": acfg.get("r"),
                          "lora_alpha": acfg.get("lora_alpha"), "target_modules": acfg.get("target_modules"),
                          "genedx": read_model_meta(adapter)}
    return out
