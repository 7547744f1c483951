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

PREDICTOR_SPECS = ("ranker", "model:DIR")


def load_predictor(spec: str, con: duckdb.DuckDBPyConnection, home: Home | None = None, **opts: Any) -> Predictor:
    """Load the predictor named by ``spec``.

    - ``ranker``: the phenotype ranker; opts ``profiles`` (none | train | all, default none),
      ``config`` (a :class:`genedx.rank.ranker.RankerConfig`), ``explain`` (bool, default False).
    - ``model:DIR``: a local causal LM (:class:`genedx.model.predictor.ModelPredictor`); opts ``mode``
      (closed | retrieval, default closed), ``batch_size``, ``max_new_tokens``, ``adapter``, ``device``,
      ``top_k``; ``profiles`` is used by the ranker that lists retrieval candidates.
    """
    spec = (spec or "").strip()
    if spec == "ranker":
        from genedx.rank.ranker import Ranker, RankerPredictor

        ranker = Ranker.load(con, profiles=opts.get("profiles") or "none", config=opts.get("config"))
        return RankerPredictor(ranker, explain=bool(opts.get("explain", False)))
    if spec.startswith("model:"):
        from genedx.model.predictor import ModelPredictor

        model_dir = spec[len("model:"):].strip()
        if not model_dir:
            raise GenedxError("predictor model:DIR needs a model directory after 'model:'")
        kw = {k: opts[k] for k in ("batch_size", "max_new_tokens", "adapter", "device", "top_k") if opts.get(k) is not None}
        return ModelPredictor.from_db(con, model_dir, mode=opts.get("mode") or "closed",
                                      profiles=opts.get("profiles") or "none", **kw)
    raise GenedxError(f"unknown predictor {spec!r}: use one of {', '.join(PREDICTOR_SPECS)} or model:DIR")
