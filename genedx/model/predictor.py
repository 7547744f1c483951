"""A language model behind the :class:`genedx.predict.Predictor` interface: batched greedy generation,
answers parsed by the grader's parser, raw text kept in ``Prediction.output``.

Batch scoring (``genedx score --predictor model:DIR``), ``genedx eval``, SFT validation and the app
all call :meth:`ModelPredictor.predict`, so a model is judged exactly as the ranker is; RFT validation
decodes with the same :func:`greedy_generate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import duckdb

from genedx.cases.model import Case
from genedx.errors import GenedxError
from genedx.model.prompts import PromptBuilder, check_mode, load_labels, model_prompt_options
from genedx.predict import GeneScore, Prediction

DEFAULT_MAX_NEW_TOKENS = 160


def greedy_generate(model, tokenizer, prompts: Sequence[Any], max_new_tokens: int, batch_size: int = 16) -> list[str]:
    """Greedy completions of chat prompts or templated texts (left-padded batches); the model's mode and
    the tokenizer's padding side are restored afterwards. Shared by :meth:`ModelPredictor.generate` and
    RFT validation, so a model is decoded the same way wherever it is judged."""
    import torch

    texts = [p if isinstance(p, str) else tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
             for p in prompts]
    old_side, old_trunc = tokenizer.padding_side, tokenizer.truncation_side
    tokenizer.padding_side = tokenizer.truncation_side = "left"   # over-long prompts keep their end
    limit = getattr(model.config, "max_position_embeddings", None)
    max_prompt = limit - max_new_tokens if limit else None
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outs: list[str] = []
    try:
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                enc = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False,
                                truncation=max_prompt is not None, max_length=max_prompt).to(device)
                gen = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                     temperature=None, top_p=None, top_k=None)
                outs += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side, tokenizer.truncation_side = old_side, old_trunc
        if was_training:
            model.train()
    return outs


class ModelPredictor:
    """Ranks genes by asking a causal LM (our from-scratch model or any local HF model).

    ``mode``: ``closed`` (case report only) or ``retrieval`` (plus the ranker's top-``top_k``
    candidates; needs ``ranker``). The prompt layout (``top_k``, ``with_ids``, term caps) defaults to
    the one saved with the model by ``genedx train sft|rft``. ``labels``: HPO id -> label for the case report. The model and
    tokenizer may be passed in (``model=``, ``tokenizer=``) to evaluate a model still in memory.
    ``dtype``: ``auto`` (bf16 where the CPU or GPU runs it natively: ~2.4x faster greedy generation on
    an avx512_bf16 CPU), ``bfloat16`` or ``float32``.
    """

    def __init__(self, model_dir: str | Path, mode: str = "closed", batch_size: int = 16,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, ranker: Any = None,
                 labels: Mapping[str, str] | None = None, adapter: str | Path | None = None,
                 device: str | None = None, top_k: int | None = None, with_ids: bool | None = None,
                 hpo_release: str | None = None, model: Any = None, tokenizer: Any = None,
                 prompt_options: Mapping[str, Any] | None = None, dtype: str = "auto", reranker: Any = None):
        check_mode(mode)
        if batch_size < 1 or max_new_tokens < 1:
            raise GenedxError("batch_size and max_new_tokens must be at least 1")
        if labels is None:
            raise GenedxError("ModelPredictor needs HPO labels (use ModelPredictor.from_db)")
        self.model_dir = str(model_dir)
        self.mode, self.batch_size, self.max_new_tokens = mode, batch_size, max_new_tokens
        self.name = f"model:{self.model_dir}"
        self.hpo_release = hpo_release or getattr(ranker, "hpo_release", None)
        # Prompt layout: explicit arguments, else what the model was trained with (genedx_model.json).
        opts = dict(model_prompt_options(model_dir))
        opts.update(prompt_options or {})
        opts.update({k: v for k, v in (("top_k", top_k), ("with_ids", with_ids)) if v is not None})
        if reranker is not None:
            ranker = reranker.ranker          # the re-ranker's candidates, with its ranker's evidence
        self.prompts = PromptBuilder(labels, mode, ranker, reranker=reranker, **opts)
        self.candidates = "reranker" if reranker is not None else "ranker"
        if reranker is not None and reranker.model_dir:
            self.candidates = f"reranker:{reranker.model_dir}"
        if model is None or tokenizer is None:
            import torch

            from genedx.model.load import load_model
            from genedx.train.hardware import inference_dtype
            if dtype not in ("auto", "bfloat16", "float32"):
                raise GenedxError(f"dtype must be auto, bfloat16 or float32, not {dtype!r}")
            torch_dtype = inference_dtype(device) if dtype == "auto" else getattr(torch, dtype)
            model, tokenizer = load_model(model_dir, adapter=adapter, device=device, dtype=torch_dtype)
        self.model, self.tokenizer = model, tokenizer
        self.adapter = str(adapter) if adapter else None

    @classmethod
    def from_db(cls, con: duckdb.DuckDBPyConnection, model_dir: str | Path, mode: str = "closed",
                profiles: str = "none", **kw: Any) -> "ModelPredictor":
        """Labels (and, in retrieval mode, the phenotype ranker) from the knowledge base."""
        from genedx.home import require_kb
        release = require_kb(con)
        ranker = kw.pop("ranker", None)
        if ranker is None and kw.get("reranker") is not None:
            ranker = kw["reranker"].ranker
        if check_mode(mode) == "retrieval" and ranker is None:
            from genedx.rank.ranker import Ranker
            ranker = Ranker.load(con, profiles=profiles)
        return cls(model_dir, mode, ranker=ranker, labels=load_labels(con), hpo_release=release, **kw)

    def prompt_text(self, case: Case) -> str:
        """The exact model input for a case: the chat template applied to the mode's prompt."""
        return self.tokenizer.apply_chat_template(self.prompts.messages(case), tokenize=False,
                                                  add_generation_prompt=True)

    def generate(self, texts: Sequence[str]) -> list[str]:
        """Greedy completions of already-templated prompts (one batch)."""
        return [t.strip() for t in greedy_generate(self.model, self.tokenizer, texts, self.max_new_tokens,
                                                   batch_size=max(1, len(texts)))]

    def predict(self, cases: Sequence[Case], top: int = 10,
                progress: Callable[[int], None] | None = None) -> list[Prediction]:
        """One Prediction per case (input order); genes parsed from the generated answer."""
        from genedx.grade.parse import parse_answer
        texts, candidates = [], []
        for c in cases:   # prompt and candidates together: the builder caches one case's ranking
            texts.append(self.prompt_text(c))
            candidates.append({g.symbol: g for g in self.prompts.ranked(c)} if self.mode == "retrieval" else {})
        # Similar lengths together: less padding, faster batches.
        order = sorted(range(len(cases)), key=lambda i: len(texts[i]))
        outputs: dict[int, str] = {}
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            for i, text in zip(idx, self.generate([texts[i] for i in idx])):
                outputs[i] = text
            if progress:
                progress(len(idx))
        preds = []
        for i, case in enumerate(cases):
            parsed = parse_answer(outputs[i], max_genes=top)
            known = candidates[i]
            genes = [GeneScore(sym, round(1.0 / r, 6), known[sym].disease if sym in known else None,
                               known[sym].disease_name if sym in known else None)
                     for r, sym in enumerate(parsed.genes, 1)]
            opts: dict[str, Any] = {"mode": self.mode, "well_formed": parsed.well_formed}
            if self.adapter:
                opts["adapter"] = self.adapter
            if self.mode == "retrieval" and self.candidates != "ranker":
                opts["candidates"] = self.candidates
            preds.append(Prediction(case.id, genes, self.name, self.hpo_release, output=outputs[i], options=opts))
        return preds
