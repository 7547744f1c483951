"""`genedx.model.predictor.ModelPredictor`: same output schema as the ranker, raw text kept, batching,
`genedx score --predictor model:DIR`."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from genedx.cases.model import Case
from genedx.cli import app
from genedx.errors import GenedxError
from genedx.home import connect
from genedx.model.predictor import ModelPredictor
from genedx.predictors import load_predictor
from tests.model_fixtures import make_tiny_model, make_toy_cases_home

torch.set_num_threads(1)

CASES = [Case("a", present=["HP:0001250", "HP:0001263"], gene="SCN1A"),
         Case("b", present=["HP:0001631"], absent=["HP:0001250"], gene="TBX5"),
         Case("c", present=["HP:0000518"], gene="CRYAB")]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return make_toy_cases_home(tmp_path_factory.mktemp("predcases"))


@pytest.fixture(scope="module")
def tiny(home, tmp_path_factory):
    return make_tiny_model(home, tmp_path_factory.mktemp("predmodel") / "tiny")


@pytest.fixture
def con(home):
    c = connect(home)
    yield c
    c.close()


def _schema(pred_json: dict) -> tuple[set, set]:
    return set(pred_json) - {"output", "options"}, {k for g in pred_json["genes"] for k in g}


def test_output_schema_matches_ranker(con, tiny, monkeypatch):
    ranker = load_predictor("ranker", con)
    model = load_predictor(f"model:{tiny}", con, mode="retrieval", batch_size=2)
    assert isinstance(model, ModelPredictor) and model.name == f"model:{tiny}"
    # A fixed completion (the random tiny model writes noise) to exercise parsing.
    answer = "<think>Seizure fits SCN1A.</think>\n<answer>SCN1A, TBX5, NOTAGENE, scn1a</answer>"
    monkeypatch.setattr(model, "generate", lambda texts: [answer] * len(texts))
    r_preds, m_preds = ranker.predict(CASES, top=5), model.predict(CASES, top=5)
    assert [p.case_id for p in m_preds] == [c.id for c in CASES]
    for rp, mp in zip(r_preds, m_preds):
        rj, mj = rp.to_json(), mp.to_json()
        assert _schema(rj) == _schema(mj)
        assert mj["output"] == answer and mj["options"] == {"mode": "retrieval", "well_formed": True}
        assert [g["symbol"] for g in mj["genes"]] == ["SCN1A", "TBX5"]     # unknown dropped, duplicate removed
        assert mj["genes"][0]["score"] > mj["genes"][1]["score"]
        assert mj["hpo_release"] == rj["hpo_release"]
    # retrieval mode carries the ranker's disease for a candidate it re-ranked
    assert m_preds[0].genes[0].disease == "OMIM:100001"


def test_real_generation_batches_and_keeps_text(con, tiny):
    pred = ModelPredictor.from_db(con, tiny, mode="closed", batch_size=2, max_new_tokens=5)
    seen = []
    orig = pred.generate
    pred.generate = lambda texts: seen.append(len(texts)) or orig(texts)
    preds = pred.predict(CASES, top=3)
    assert seen == [2, 1]                                   # batched
    assert all(isinstance(p.output, str) and p.predictor == f"model:{tiny}" for p in preds)
    assert pred.prompt_text(CASES[0]).endswith("<|im_start|>assistant\n")
    # greedy: the same input gives the same text, alone or in a batch (left padding)
    alone = ModelPredictor.from_db(con, tiny, mode="closed", batch_size=1, max_new_tokens=5).predict(CASES[1:2])
    assert alone[0].output == preds[1].output


def test_bad_predictor_specs(con, tmp_path):
    with pytest.raises(GenedxError, match="does not exist"):
        load_predictor(f"model:{tmp_path / 'missing'}", con)
    with pytest.raises(GenedxError, match="needs a model directory"):
        load_predictor("model:", con)
    with pytest.raises(GenedxError, match="unknown prompt mode"):
        load_predictor(f"model:{tmp_path}", con, mode="bogus")


def test_cli_score_with_model(home, tiny, tmp_path):
    inp = tmp_path / "cases.jsonl"
    inp.write_text("".join(json.dumps(c.to_dict()) + "\n" for c in CASES))
    out = tmp_path / "pred.jsonl"
    r = CliRunner().invoke(app, ["--home", str(home.root), "score", str(inp), "--out", str(out),
                                 "--predictor", f"model:{tiny}", "--top", "3"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a", "b", "c"]
    assert all("output" in x and x["predictor"] == f"model:{tiny}" for x in lines)
    out2 = tmp_path / "pred-retrieval.jsonl"
    r = CliRunner().invoke(app, ["--home", str(home.root), "score", str(inp), "--out", str(out2),
                                 "--predictor", f"model:{tiny}", "--mode", "retrieval", "--profiles", "none"])
    assert r.exit_code == 0, r.output
    assert all(json.loads(x)["options"]["mode"] == "retrieval" for x in out2.read_text().splitlines())


def test_cli_score_broken_model_dir_is_one_line(home, tmp_path):
    import subprocess
    import sys
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "config.json").write_text("{oops")
    inp = tmp_path / "cases.jsonl"
    inp.write_text(json.dumps(CASES[0].to_dict()) + "\n")
    p = subprocess.run([sys.executable, "-m", "genedx", "--home", str(home.root), "score", str(inp), "--out",
                        str(tmp_path / "o.jsonl"), "--predictor", f"model:{bad}"], capture_output=True, text=True)
    assert p.returncode == 1   # user error (2 is for usage errors)
    assert p.stderr.strip().startswith("error: model dir") and "config.json is not valid JSON" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_prompt_layout_comes_from_the_model_dir_unless_overridden(con, tiny, tmp_path):
    import shutil
    trained = tmp_path / "trained"
    shutil.copytree(tiny, trained)
    meta_path = trained / "genedx_model.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta["prompt"] = {"top_k": 1, "with_ids": True, "terms_per_gene": 1, "max_present": 1, "max_absent": None}
    meta_path.write_text(json.dumps(meta))
    pred = ModelPredictor.from_db(con, trained, mode="retrieval", max_new_tokens=2)
    assert pred.prompts.options() == meta["prompt"] | {"layout": "full"}   # no saved layout: the full one
    text = pred.prompt_text(CASES[0])
    assert "HP:0001250" in text and "HP:0001263" not in text.split("Candidate genes")[0]   # ids on, one term
    assert "\n2. " not in text.split("Candidate genes")[1]                                  # one candidate
    over = ModelPredictor.from_db(con, trained, mode="retrieval", max_new_tokens=2, top_k=3, with_ids=False)
    assert over.prompts.top_k == 3 and over.prompts.with_ids is False and over.prompts.max_present == 1
