"""The learned re-ranker: the phenotype ranker's top-K genes re-ordered by a LightGBM LambdaRank model.

The ranker finds the candidates and keeps every piece of evidence (matched / excluded terms per gene);
the model only re-orders them from features of that evidence (:mod:`genedx.rank.features`). A model
directory holds ``model.txt`` (the LightGBM booster) and ``reranker.json`` (feature list, HPO release,
top-K, profiles, data summary); it is refused with a one-line error when it does not fit the code or
the knowledge base. Training: :mod:`genedx.train.reranker`; docs/reranker.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genedx.cases.model import Case
from genedx.errors import GenedxError
from genedx.predict import GeneScore, Prediction
from genedx.rank.features import FEATURES, Candidates, FeatureContext, candidate_features, feature_columns
from genedx.rank.ranker import Query, Ranker

MODEL_FILE = "model.txt"
META_FILE = "reranker.json"
FORMAT = 1


@dataclass
class RerankerModel:
    """A trained booster with what it was trained on."""

    booster: Any                         # lightgbm.Booster
    features: tuple[str, ...]            # the columns it reads, in order
    hpo_release: str
    top_k: int
    profiles: str = "train"              # the profiles its training features used
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out: str | Path) -> Path:
        out = Path(out).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(out / MODEL_FILE))
        meta = dict(self.meta)
        meta.update(format=FORMAT, features=list(self.features), hpo_release=self.hpo_release,
                    top_k=self.top_k, profiles=self.profiles)
        (out / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        return out

    @classmethod
    def load(cls, path: str | Path, hpo_release: str | None = None) -> "RerankerModel":
        """Read a model directory; a missing or incompatible model is a one-line GenedxError."""
        import lightgbm as lgb

        d = Path(path).expanduser()
        if not (d / META_FILE).is_file() or not (d / MODEL_FILE).is_file():
            raise GenedxError(f"no re-ranker at {d} (a re-ranker folder holds {META_FILE} and {MODEL_FILE}; "
                              "train one with `genedx train reranker`)")
        try:
            meta = json.loads((d / META_FILE).read_text())
        except json.JSONDecodeError as e:
            raise GenedxError(f"re-ranker {d}: {META_FILE} is not valid JSON ({e.msg})") from None
        if meta.get("format") != FORMAT:
            raise GenedxError(f"re-ranker {d}: format {meta.get('format')!r}, this genedx reads {FORMAT}")
        feats = tuple(meta.get("features") or ())
        unknown = [f for f in feats if f not in FEATURES]
        if not feats or unknown:
            raise GenedxError(f"re-ranker {d} was trained on features this genedx does not compute "
                              f"({', '.join(unknown[:5]) or 'none listed'}): retrain it with `genedx train reranker`")
        if hpo_release is not None and meta.get("hpo_release") != hpo_release:
            raise GenedxError(f"re-ranker {d} was trained on HPO {meta.get('hpo_release')}, the knowledge base is "
                              f"HPO {hpo_release}: retrain it with `genedx train reranker`")
        try:
            booster = lgb.Booster(model_file=str(d / MODEL_FILE))
        except lgb.basic.LightGBMError as e:
            raise GenedxError(f"re-ranker {d}: cannot read {MODEL_FILE} ({str(e).splitlines()[0]})") from None
        if booster.num_feature() != len(feats):
            raise GenedxError(f"re-ranker {d}: {MODEL_FILE} reads {booster.num_feature()} features, "
                              f"{META_FILE} lists {len(feats)}")
        return cls(booster, feats, meta.get("hpo_release"), int(meta.get("top_k", 50)),
                   meta.get("profiles", "train"), meta)


class RerankerPredictor:
    """Ranker -> top-K candidates -> re-ordered by the model (the ``Predictor`` protocol).

    Scores are the model's relevance scores (comparable within a case only); each gene keeps the
    ranker's evidence, with a note saying the order comes from the re-ranker and why.
    """

    name = "reranker"

    def __init__(self, ranker: Ranker, model: RerankerModel, explain: bool = False, model_dir: str | None = None):
        if model.hpo_release != ranker.hpo_release:
            raise GenedxError(f"re-ranker trained on HPO {model.hpo_release}, ranker has HPO {ranker.hpo_release}")
        self.ranker = ranker
        self.model = model
        self.ctx = FeatureContext(ranker)
        self.cols = feature_columns(model.features)
        self.hpo_release = ranker.hpo_release
        self.explain = explain
        self.model_dir = model_dir
        self.top_k = model.top_k

    @property
    def options(self) -> dict[str, Any]:
        opts = dict(self.ranker.options)
        opts.update(reranker=self.model_dir, top_k=self.top_k)
        return opts

    def candidates(self, q: Query) -> Candidates:
        return candidate_features(self.ctx, q, self.top_k)

    def _order(self, cands: Candidates, margin: np.ndarray) -> np.ndarray:
        # best model score first; the ranker's order breaks ties (stable)
        return np.argsort(-margin, kind="stable")

    def rerank(self, case_or_query: Case | Query, top: int = 10, explain: bool | None = None) -> list[GeneScore]:
        """The re-ranked genes of one case (a :class:`Case` or a resolved :class:`Query`), best first.

        Genes beyond the model's top-K (when ``top`` > K) follow in the ranker's order, scored below them.
        """
        q = case_or_query if isinstance(case_or_query, Query) else self._query(case_or_query)
        cands = self.candidates(q)
        margin = self.model.booster.predict(cands.X[:, self.cols], num_threads=1)
        return self._genes(q, cands, margin, top, self.explain if explain is None else explain)

    def _query(self, case: Case) -> Query:
        try:
            return self.ranker.query(case.present, case.absent)
        except GenedxError as e:
            raise GenedxError(f"case {case.id}: {e}") from None

    def _genes(self, q: Query, cands: Candidates, margin: np.ndarray, top: int, explain: bool) -> list[GeneScore]:
        r = self.ranker
        order = self._order(cands, margin)[:top]
        contrib = None
        if explain and len(order):
            contrib = self.model.booster.predict(cands.X[order][:, self.cols], pred_contrib=True, num_threads=1)
        out: list[GeneScore] = []
        for n, j in enumerate(order):
            row = int(cands.rows[j])
            d, name = r._row_disease_label(row, cands.row_scores)
            gs = GeneScore(cands.genes[j], float(margin[j]), d, name)
            if explain:
                gs.evidence = r.explain(q, row, cands.row_scores)
                gs.evidence.notes = list(q.notes) + gs.evidence.notes + [self._why(j, cands, contrib[n])]
            out.append(gs)
        if top > len(cands.genes):
            # beyond K: the ranker's own order, below every re-ranked gene
            more = r.rank_query(q, top=top, explain=explain)[len(cands.genes):]
            floor = float(margin.min()) if len(margin) else 0.0
            for i, g in enumerate(more, 1):
                g.score = floor - i
                if g.evidence is not None:
                    g.evidence.notes.append("beyond the re-ranker's candidates: ranker order")
                out.append(g)
        return out

    def _why(self, j: int, cands: Candidates, contrib: np.ndarray) -> str:
        """One line for the explanation: the order is learned; the features that moved this gene most."""
        feats = self.model.features
        c = contrib[:-1]                           # last column: the model's bias
        top3 = np.argsort(-np.abs(c))[:3]
        parts = [f"{feats[i]}={cands.X[j, self.cols[i]]:.3g} ({c[i]:+.2f})" for i in top3]
        return (f"order from the learned re-ranker (LightGBM LambdaRank over the ranker's top {self.top_k}): "
                f"ranker rank {j + 1}, ranker score {cands.scores[j]:.2f}; strongest features: " + ", ".join(parts))

    def predict(self, cases: Sequence[Case], top: int = 10) -> list[Prediction]:
        """One Prediction per case; a case the ranker cannot use raises GenedxError naming it.

        All cases' candidates go through the booster in one call (its per-call overhead dominates K rows).
        """
        queries = [self._query(c) for c in cases]
        cands = [self.candidates(q) for q in queries]
        if not cands:
            return []
        X = np.vstack([cs.X for cs in cands])[:, self.cols]
        margin = self.model.booster.predict(X, num_threads=1)
        bounds = np.cumsum([0] + [len(cs.genes) for cs in cands])
        options = self.options
        out = []
        for i, (case, q, cs) in enumerate(zip(cases, queries, cands)):
            genes = self._genes(q, cs, margin[bounds[i]:bounds[i + 1]], top, self.explain)
            opts = dict(options)
            if q.notes:
                opts["notes"] = q.notes
            out.append(Prediction(case.id, genes, self.name, self.hpo_release, options=opts))
        return out


def default_model_dir(home: Any) -> Path:
    """Where ``genedx train reranker`` saves by default and ``--predictor reranker`` looks."""
    return Path(home.models_dir) / "reranker"


def load_reranker(con: Any, model_dir: str | Path, profiles: str | None = None,
                  explain: bool = False) -> RerankerPredictor:
    """A ready predictor: the model at ``model_dir`` over a ranker loaded from ``con``.

    The ranker uses gene profiles (the model's features include them): the model's own choice
    (``train``) unless ``profiles='all'`` is asked for (new patients); ``none`` is not meaningful here
    and means the model's choice.
    """
    from genedx.home import require_kb

    release = require_kb(con)
    model = RerankerModel.load(model_dir, hpo_release=release)
    which = profiles if profiles in ("train", "all") else model.profiles
    ranker = Ranker.load(con, profiles=which)
    return RerankerPredictor(ranker, model, explain=explain, model_dir=str(model_dir))
