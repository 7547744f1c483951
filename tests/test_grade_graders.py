"""Graders: the ranked-gene curve, string_check, format, multi, config validation, the registry,
the TRL reward adapter, and the modules' doctests."""

from __future__ import annotations

import doctest
import importlib
import json

import pytest

from genedx.answer_format import format_answer
from genedx.errors import GenedxError
from genedx.grade import grader_from_config, make_reward, register_grader
from genedx.grade.graders import curve_value

TEN = ["MECP2", "FBN1", "TBX5", "CRYAB", "COL1A1", "PAH", "CFTR", "DMD", "NF1", "SCN1A"]


def answer(genes):
    return format_answer(genes, "reasoning")


OTHERS = ["MECP2", "FBN1", "TBX5", "CRYAB", "COL1A1", "PAH", "CFTR", "DMD", "NF1", "RB1", "TP53", "BRCA1",
          "BRCA2", "PTEN", "APC", "MLH1", "MSH2", "KRAS", "NRAS", "HRAS", "GJB2"]


@pytest.mark.parametrize("rank,expected", [(1, 1.0), (2, 0.7), (3, 0.49), (20, 0.7 ** 19), (21, 0.0)])
def test_default_curve_pins(rank, expected):
    g = grader_from_config({"type": "ranked_gene"})
    output = answer(OTHERS[:rank - 1] + ["SCN1A"])
    assert g(output, "SCN1A") == pytest.approx(expected)


def test_absent_unparseable_and_beyond_max_are_zero():
    g = grader_from_config({"type": "ranked_gene", "max_rank": 5})
    assert g(answer(["TBX5"]), "SCN1A") == 0.0
    assert g("", "SCN1A") == 0.0
    assert g("I am not sure.", "SCN1A") == 0.0
    assert g(answer(TEN[:5] + ["SCN1A"]), "SCN1A") == 0.0      # rank 6 > max_rank 5
    assert g(answer(TEN[:4] + ["SCN1A"]), "SCN1A") == pytest.approx(0.7 ** 4)
    assert g(answer(["SCN1A"]), "") == 0.0                       # no truth: nothing to credit


def test_curve_values_table():
    assert curve_value(21) == 0.0 and curve_value(None) == 0.0 and curve_value(0) == 0.0
    assert curve_value(4, "reciprocal") == 0.25
    assert curve_value(3, "linear", max_rank=4) == 0.5
    assert curve_value(4, "linear", max_rank=4) == 0.25
    assert curve_value(5, "linear", max_rank=4) == 0.0
    g = grader_from_config({"type": "ranked_gene", "curve": "reciprocal", "max_rank": 10})
    assert g(answer(TEN), "SCN1A") == pytest.approx(0.1)


def test_correct_answer_is_normalised():
    g = grader_from_config("ranked_gene")
    assert g(answer(["TBXT"]), "T") == 1.0          # previous symbol as the truth
    assert g(answer(["t"]), "TBXT") == 1.0          # previous symbol in the answer
    assert g(answer(["scn1a"]), "SCN1A") == 1.0


def test_duplicates_do_not_shift_rank():
    g = grader_from_config("ranked_gene")
    assert g(answer(["TBX5", "tbx5", "SCN1A"]), "SCN1A") == pytest.approx(0.7)


@pytest.mark.parametrize("cfg,output,truth,expected", [
    ({"operation": "eq"}, answer(["scn1a", "TBX5"]), "SCN1A", 1.0),
    ({"operation": "eq"}, answer(["TBX5", "SCN1A"]), "SCN1A", 0.0),
    ({"operation": "ne"}, answer(["TBX5", "SCN1A"]), "SCN1A", 1.0),
    ({"operation": "like", "input": "genes"}, answer(["TBX5", "SCN1A"]), "SCN1A", 1.0),
    ({"operation": "like", "input": "output"}, "gene scn1a", "SCN1A", 0.0),
    ({"operation": "ilike", "input": "output"}, "gene scn1a", "SCN1A", 1.0),
    ({"operation": "eq", "input": "answer"}, "<think>x</think><answer> SCN1A, TBX5 </answer>", "SCN1A, TBX5", 1.0),
    ({"operation": "eq", "input": "output", "reference": "ok"}, "ok", "SCN1A", 1.0),
])
def test_string_check(cfg, output, truth, expected):
    assert grader_from_config({"type": "string_check", **cfg})(output, truth) == expected


def test_format_grader():
    g = grader_from_config({"type": "format"})
    assert g(answer(["SCN1A"]), "anything") == 1.0
    assert g("SCN1A", "SCN1A") == 0.0
    assert g("<answer>SCN1A</answer> trailing", "SCN1A") == 0.0
    assert grader_from_config({"type": "format", "max_genes": 2})(answer(TEN[:3]), "") == 0.0


def test_multi_weighted_sum():
    cfg = {"type": "multi", "graders": {"rank": {"type": "ranked_gene"}, "fmt": {"type": "format"},
                                        "top": {"type": "string_check", "operation": "eq"}},
           "weights": {"rank": 0.5, "fmt": 0.2, "top": 0.3}}
    g = grader_from_config(cfg)
    assert g(answer(["TBX5", "SCN1A"]), "SCN1A") == pytest.approx(0.5 * 0.7 + 0.2 * 1 + 0.3 * 0)
    assert g("SCN1A, TBX5", "SCN1A") == pytest.approx(0.5 * 1 + 0.2 * 0 + 0.3 * 1)
    assert g("nothing", "SCN1A") == 0.0
    equal = grader_from_config({"type": "multi", "graders": {"a": {"type": "format"}, "b": {"type": "ranked_gene"}}})
    assert equal(answer(["TBX5", "SCN1A"]), "SCN1A") == pytest.approx(0.5 * 1 + 0.5 * 0.7)


@pytest.mark.parametrize("cfg,message", [
    ({}, "unknown type None"),
    ({"type": "python", "code": "import os"}, "unknown type 'python'"),
    ({"type": "ranked_gene", "decay": 0}, "decay must be a number in (0, 1]"),
    ({"type": "ranked_gene", "decay": "0.7"}, "decay must be float"),
    ({"type": "ranked_gene", "max_rank": 0}, "max_rank must be an integer >= 1"),
    ({"type": "ranked_gene", "max_rank": 2.5}, "max_rank must be int"),
    ({"type": "ranked_gene", "max_rank": True}, "max_rank must be int"),
    ({"type": "ranked_gene", "curve": "cubic"}, "curve must be one of exponential, reciprocal, linear"),
    ({"type": "ranked_gene", "decya": 0.5}, "unknown key(s) ['decya']"),
    ({"type": "string_check", "operation": "regex"}, "operation must be one of eq, ne, like, ilike"),
    ({"type": "string_check", "input": "prompt"}, "input must be one of"),
    ({"type": "format", "extra": 1}, "unknown key(s) ['extra']"),
    ({"type": "multi"}, "missing required key(s) ['graders']"),
    ({"type": "multi", "graders": {}}, "graders must be a non-empty object"),
    ({"type": "multi", "graders": {"a": {"type": "format"}}, "weights": {"b": 1}}, "missing ['a'], unknown ['b']"),
    ({"type": "multi", "graders": {"a": {"type": "format"}}, "weights": {"a": -1}}, "weight 'a' must be a non-negative"),
    ({"type": "multi", "graders": {"a": {"type": "nope"}}, "weights": {"a": 1}}, "'multi.a': unknown type 'nope'"),
    ({"type": "multi", "graders": {"a": []}, "weights": {"a": 1}}, "'multi.a' must be an object"),
    ({"type": "format", "name": 3}, "name must be a string"),
    ({"type": "multi", "graders": {"a": {"type": "format"}}, "_path": "x"}, "unknown key(s) ['_path']"),
])
def test_config_validation_errors(cfg, message):
    with pytest.raises(GenedxError) as e:
        grader_from_config(cfg)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_config_sources(tmp_path):
    cfg = {"type": "ranked_gene", "decay": 0.5, "name": "half"}
    p = tmp_path / "g.json"
    p.write_text(json.dumps(cfg))
    y = tmp_path / "g.yaml"
    y.write_text("type: ranked_gene\ndecay: 0.5\n")
    for src in (p, str(p), y, json.dumps(cfg)):
        g = grader_from_config(src)
        assert g(answer(["TBX5", "SCN1A"]), "SCN1A") == 0.5
    assert grader_from_config(p).name == "half"
    assert grader_from_config(None)(answer(["TBX5", "SCN1A"]), "SCN1A") == pytest.approx(0.7)
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(GenedxError, match="not valid JSON"):
        grader_from_config(bad)
    with pytest.raises(GenedxError, match="no such file"):
        grader_from_config(tmp_path / "missing.json")
    with pytest.raises(GenedxError, match="not valid JSON"):
        grader_from_config("{broken")
    with pytest.raises(GenedxError, match="must be a JSON object"):
        grader_from_config(_write(tmp_path / "list.json", "[1, 2]"))


def _write(path, text):
    path.write_text(text)
    return path


def test_registry_plain_and_factory():
    @register_grader("test_exact_output")
    def exact(output, correct_answer):
        return float(output == correct_answer)

    @register_grader("test_length")
    def length(max_chars: int = 10):
        return lambda output, correct_answer: 1.0 if len(output) <= max_chars else 0.0

    assert grader_from_config({"type": "test_exact_output"})("A", "A") == 1.0
    with pytest.raises(GenedxError, match="takes no parameters"):
        grader_from_config({"type": "test_exact_output", "x": 1})
    assert grader_from_config({"type": "test_length", "max_chars": 3})("abcd", "") == 0.0
    with pytest.raises(GenedxError, match="max_chars must be int"):
        grader_from_config({"type": "test_length", "max_chars": "3"})
    g = grader_from_config({"type": "multi", "graders": {"x": {"type": "test_exact_output"}, "r": {"type": "ranked_gene"}},
                            "weights": {"x": 1, "r": 1}})
    assert g("SCN1A", "SCN1A") == 2.0


def test_reward_adapter_plain_and_chat():
    reward = make_reward()
    assert reward.__name__ == "genedx_reward"
    plain = [answer(["SCN1A"]), answer(["TBX5", "SCN1A"]), "SCN1A", "nothing"]
    scores = reward(plain, correct_answer=["SCN1A"] * 4, prompts=["p"] * 4)
    assert scores == pytest.approx([1.0, 0.9 * 0.7 + 0.1, 0.9, 0.0])
    chat = [[{"role": "assistant", "content": t}] for t in plain]
    assert reward(chat, correct_answer=["SCN1A"] * 4) == scores
    assert reward(plain[:1], correct_answer="SCN1A") == [1.0]
    assert all(isinstance(s, float) for s in scores)


def test_reward_adapter_errors_and_config():
    reward = make_reward({"type": "ranked_gene", "name": "rank_only"})
    assert reward.__name__ == "rank_only"
    assert reward([answer(["TBX5", "SCN1A"])], correct_answer=["SCN1A"]) == [0.7]
    with pytest.raises(GenedxError, match="correct_answer"):
        reward(["x"])
    with pytest.raises(GenedxError, match="2 completions but 1 correct answers"):
        reward(["x", "y"], correct_answer=["SCN1A"])


@pytest.mark.parametrize("module", ["genedx.grade.parse", "genedx.grade.graders", "genedx.grade.reward",
                                    "genedx.grade.metrics"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
