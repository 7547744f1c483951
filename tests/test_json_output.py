"""Machine-readable output and exit codes: `data stats --json` (with the knowledge base), `model show
--json`, and 0 ok / 1 user error (one line on stderr) / 2 usage error through the real entry point."""

from __future__ import annotations

import json

import pytest

from tests.model_fixtures import make_tiny_model


def test_data_stats_json_reports_the_knowledge_base(toy_home, run_cli, capsys):
    assert run_cli(["--home", str(toy_home.root), "data", "stats", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    kb = s["knowledge_base"]
    # the toy release: 15 terms (1 obsolete), 3 diseases, 10 annotation rows (1 NOT), 3 genes with a disease
    assert kb["hpo_release"] == "2099-01-01" == s["hpo_release"]
    assert (kb["terms"], kb["obsolete_terms"], kb["diseases"]) == (14, 1, 3)
    assert (kb["annotations"], kb["not_annotations"], kb["genes_with_disease"]) == (10, 1, 3)
    assert kb["genes"] > 40000 and kb["built_at"]          # the shipped HGNC table
    assert s["cases"] == 0
    assert run_cli(["--home", str(toy_home.root), "data", "stats"]) == 0
    assert "knowledge base: HPO 2099-01-01: 14 terms, 3 diseases, 10 annotations" in capsys.readouterr().out


def test_data_stats_json_before_a_build(tmp_home, run_cli, capsys):
    assert run_cli(["--home", str(tmp_home.root), "data", "stats", "--json"]) == 0
    kb = json.loads(capsys.readouterr().out)["knowledge_base"]
    assert kb["hpo_release"] is None and kb["terms"] == kb["genes"] == 0


@pytest.mark.slow   # builds a tiny model (~10 s)
def test_model_show_json(toy_home, tmp_path, run_cli, capsys):
    model = make_tiny_model(toy_home, tmp_path / "tiny")
    made = json.loads((model / "genedx_model.json").read_text())
    assert run_cli(["model", "show", str(model), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["path"] == str(model) and d["architectures"] == ["LlamaForCausalLM"]
    assert d["parameters"] == made["parameters"] > 0          # from the safetensors headers, weights not loaded
    assert d["vocab_size"] >= made["vocab_size"] and d["genedx"]["created_by"] == "genedx model init"  # padded
    assert d["adapter"] is None and "config.json" in d["files"] and d["weights_bytes"] > 0
    assert run_cli(["model", "show", str(model)]) == 0
    assert "LlamaForCausalLM" in capsys.readouterr().out


@pytest.mark.parametrize("args, code, message", [
    (["model", "show", "/nonexistent/model"], 1, "error: model dir /nonexistent/model does not exist"),
    (["rank", "HP:0001250", "HP:1234567"], 1, "HP:1234567"),
    (["runs", "show", "nope"], 1, "error: no run 'nope'"),
    (["score", "x.jsonl", "--out", "o.jsonl", "--shard", "0/2"], 1, "error: --shard '0/2'"),
    (["model", "show"], 2, "Missing argument"),
    (["score", "x.jsonl"], 2, "Missing option"),
    (["runs", "list", "--no-such-option"], 2, "No such option"),
    (["score", "x.jsonl", "--out", "o.jsonl", "--workers", "0"], 2, "--workers"),
])
def test_exit_codes(toy_home, run_cli, capsys, args, code, message):
    assert run_cli(["--home", str(toy_home.root), *args]) == code
    err = capsys.readouterr().err
    assert message in err
    if code == 1:                                             # a user error is one line
        assert err.strip().startswith("error:") and len(err.strip().splitlines()) == 1
