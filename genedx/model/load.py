"""Load a local causal-LM directory (ours from `genedx model init`, or any Hugging Face model saved
on disk: Qwen2.5/Qwen3/Llama), optionally with a PEFT adapter on top. Offline only: no hub access.

A directory that holds only a PEFT adapter (``adapter_config.json``) loads its base model from the
adapter's ``base_model_name_or_path``, so a LoRA run's output dir can be used like a full model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from genedx.errors import GenedxError

ADAPTER_CONFIG = "adapter_config.json"
GENEDX_META = "genedx_model.json"   # beside config.json: how genedx made the model (init, SFT, RFT)


def read_model_meta(model_dir: str | Path | None) -> dict[str, Any]:
    """A model dir's ``genedx_model.json`` (``~`` expanded), or ``{}`` when there is none or it is unreadable
    (models genedx did not make have none)."""
    if model_dir is None:
        return {}
    try:
        meta = json.loads((Path(model_dir).expanduser() / GENEDX_META).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def _check_model_dir(path: Path) -> None:
    if not path.exists():
        raise GenedxError(f"model dir {path} does not exist (create one with `genedx model init --out {path}`)")
    if not path.is_dir():
        raise GenedxError(f"model dir {path} is not a directory")
    if not (path / "config.json").exists():
        raise GenedxError(f"model dir {path} has no config.json: not a Hugging Face model directory")
    try:
        json.loads((path / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GenedxError(f"model dir {path}: config.json is not valid JSON ({_first_line(e)})") from None
    if not any((path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")):
        raise GenedxError(f"model dir {path} has no tokenizer files")


def resolve_model_dirs(path: str | Path, adapter: str | Path | None = None) -> tuple[Path, Path | None]:
    """(base model dir, adapter dir or None); an adapter-only dir points at its base model."""
    p = Path(path).expanduser()
    if adapter is None and (p / ADAPTER_CONFIG).exists() and not (p / "config.json").exists():
        try:
            base = json.loads((p / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
        except json.JSONDecodeError as e:
            raise GenedxError(f"adapter dir {p}: adapter_config.json is not valid JSON ({_first_line(e)})") from None
        if not base:
            raise GenedxError(f"adapter dir {p} does not name its base model (base_model_name_or_path)")
        return Path(base).expanduser(), p
    if adapter is not None:
        a = Path(adapter).expanduser()
        if not (a / ADAPTER_CONFIG).exists():
            raise GenedxError(f"adapter dir {a} has no {ADAPTER_CONFIG}: not a PEFT adapter directory")
        return p, a
    return p, None


def load_tokenizer(path: str | Path):
    """The model dir's tokenizer, loaded offline (``tokenizer_class`` in its config decides the class)."""
    from transformers import AutoTokenizer
    p = Path(path).expanduser()
    _check_model_dir(p)
    try:
        tok = AutoTokenizer.from_pretrained(p, local_files_only=True)
    except Exception as e:  # transformers raises OSError/ValueError/KeyError/... on broken dirs
        raise GenedxError(f"model dir {p}: cannot load the tokenizer ({_first_line(e)})") from None
    if tok.pad_token is None:   # many instruct models ship without one; eos is the usual stand-in
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: str | Path, adapter: str | Path | None = None, device: str | None = None,
               dtype: Any = None, trainable: bool = False):
    """``(model, tokenizer)`` from a local directory, offline, in eval mode unless ``trainable``.

    ``adapter``: a PEFT adapter directory to put on top. ``device``: "cpu", "cuda", ... (default:
    cuda when available). Missing or incompatible directories raise a one-line :class:`GenedxError`.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM

    base, adapter_dir = resolve_model_dirs(path, adapter)
    _check_model_dir(base)
    tok = load_tokenizer(base)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kwargs: dict[str, Any] = {"local_files_only": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    except Exception as e:
        raise GenedxError(f"model dir {base}: cannot load a causal language model ({_first_line(e)})") from None
    if len(tok) > model.get_input_embeddings().num_embeddings:
        raise GenedxError(f"model dir {base}: tokenizer has {len(tok)} tokens but the model only "
                          f"{model.get_input_embeddings().num_embeddings} embeddings (mismatched files)")
    if adapter_dir is not None:
        from peft import PeftModel
        try:
            model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable)
        except Exception as e:
            raise GenedxError(f"adapter dir {adapter_dir}: cannot load onto {base} ({_first_line(e)})") from None
    model.to(device)
    model.train(trainable)
    return model, tok
