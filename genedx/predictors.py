"""Predictor factory: a spec string (``ranker``, ``model:DIR``) -> a loaded ``genedx.predict.Predictor``.

Batch scoring, evaluation and the app pick predictors by these strings, so a new predictor kind is
one branch here.
"""

from __future__ import annotations

from typing import Any

import duckdb

from genedx.errors import GenedxError
from genedx.home import Home
from genedx.predict import Predictor

PREDICTOR_SPECS = ("ranker", "reranker[:DIR]", "model:DIR")


def load_predictor(spec: str, con: duckdb.DuckDBPyConnection, home: Home | None = None, **opts: Any) -> Predictor:
    """Load the predictor named by ``spec``.

    - ``ranker``: the phenotype ranker; opts ``profiles`` (none | train | all, default none),
      ``config`` (a :class:`genedx.rank.ranker.RankerConfig`), ``explain`` (bool, default False).
    - ``reranker[:DIR]``: the ranker's top-K re-ordered by a trained LightGBM model
      (:class:`genedx.rank.reranker.RerankerPredictor`; DIR defaults to ``<home>/models/reranker``);
      opts ``profiles`` (train | all; anything else means the model's own, train), ``explain``.
    - ``model:DIR``: a local causal LM (:class:`genedx.model.predictor.ModelPredictor`); opts ``mode``
      (closed | retrieval, default closed), ``batch_size``, ``max_new_tokens``, ``adapter``, ``device``,
      ``top_k``; ``profiles`` is used by the ranker that lists retrieval candidates; ``candidates``
      (``ranker``, the default, or ``reranker[:DIR]``: retrieval candidates in the learned re-ranker's
      order, so the model re-ranks the best list we have).
    """
    spec = (spec or "").strip()
    if spec == "ranker":
        from genedx.rank.ranker import Ranker, RankerPredictor

        ranker = Ranker.load(con, profiles=opts.get("profiles") or "none", config=opts.get("config"))
        return RankerPredictor(ranker, explain=bool(opts.get("explain", False)))
    if spec == "reranker" or spec.startswith("reranker:"):
        from genedx.rank.reranker import default_model_dir, load_reranker

        model_dir = spec[len("reranker:"):].strip() if ":" in spec else ""
        if not model_dir:
            from genedx.home import resolve_home
            model_dir = str(default_model_dir(home or resolve_home(None)))
        return load_reranker(con, model_dir, profiles=opts.get("profiles"), explain=bool(opts.get("explain", False)))
    if spec.startswith("model:"):
        from genedx.model.predictor import ModelPredictor

        model_dir = spec[len("model:"):].strip()
        if not model_dir:
            raise GenedxError("predictor model:DIR needs a model directory after 'model:'")
        kw = {k: opts[k] for k in ("batch_size", "max_new_tokens", "adapter", "device", "top_k", "dtype")
              if opts.get(k) is not None}
        source = (opts.get("candidates") or "ranker").strip()
        if source != "ranker":
            if (opts.get("mode") or "closed") != "retrieval":
                raise GenedxError("--candidates applies to retrieval mode only (add --mode retrieval)")
            kw["reranker"] = _candidate_reranker(source, con, home, opts.get("profiles"))
        return ModelPredictor.from_db(con, model_dir, mode=opts.get("mode") or "closed",
                                      profiles=opts.get("profiles") or "none", **kw)
    raise GenedxError(f"unknown predictor {spec!r}: use one of {', '.join(PREDICTOR_SPECS)} or model:DIR")


def _candidate_reranker(source: str, con: duckdb.DuckDBPyConnection, home: Home | None, profiles: str | None) -> Any:
    """The re-ranker behind a model's retrieval candidates (``reranker[:DIR]``)."""
    if source != "reranker" and not source.startswith("reranker:"):
        raise GenedxError(f"unknown candidate source {source!r}: use ranker or reranker[:DIR]")
    pred = load_predictor(source, con, home, profiles=profiles, explain=True)
    return pred
