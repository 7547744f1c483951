"""`genedx train sft`: recipe validation, a few real SFTTrainer steps that change the weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from genedx.cli import app
from genedx.errors import GenedxError
from genedx.home import connect
from genedx.train.recipes import load_recipe
from genedx.train.sft import SFTRecipe, run_sft, training_cases
from tests.model_fixtures import make_tiny_model, make_toy_cases_home

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return make_toy_cases_home(tmp_path_factory.mktemp("sftcases"))


@pytest.mark.parametrize("override,message", [
    ("mode=open", "mode must be one of"),
    ("init_size=huge", "init_size must be one of"),
    ("batch_size=0", "batch_size must be at least 1"),
    ("learning_rate=0", "learning_rate and epochs must be positive"),
    ("max_steps=0", "max_steps must be at least 1"),
    ("retrieval_share=1.5", "retrieval_share must be in"),
    ("ranker_profiles=some", "ranker_profiles must be"),
    ("colour=blue", "unknown recipe knob"),
])
def test_invalid_recipes_fail_fast(override, message):
    with pytest.raises(GenedxError, match=message):
        load_recipe(SFTRecipe, None, [override])


def test_bf16_on_cpu_follows_what_the_cpu_supports(monkeypatch):
    """bf16 on a CPU is allowed where the CPU runs it natively, refused (one line) where it would be emulated."""
    from genedx.train import hardware
    from genedx.train.hardware import bf16_problem
    load_recipe(SFTRecipe, None, ["bf16=true", "use_cpu=true"])   # the recipe itself is valid
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512f"})
    monkeypatch.setattr(hardware.platform, "system", lambda: "Linux")
    assert "no native bf16" in bf16_problem(use_cpu=True)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert bf16_problem(use_cpu=True) is None


def test_bf16_auto_picks_bf16_only_where_native(monkeypatch):
    """The CPU recipes say bf16: auto, so they run on a CI machine without avx512_bf16 (in fp32)."""
    from genedx.train import hardware
    from genedx.train.hardware import resolve_bf16
    monkeypatch.setattr(hardware.platform, "system", lambda: "Linux")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2"})
    use, note = resolve_bf16("auto", use_cpu=True)
    assert use is False and "fp32 here" in note and "\n" not in note
    with pytest.raises(GenedxError, match="no native bf16.*or bf16=auto"):
        resolve_bf16(True, use_cpu=True)
    assert resolve_bf16(False, use_cpu=True) == (False, None)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert resolve_bf16("auto", use_cpu=True) == (True, None)
    assert resolve_bf16(True, use_cpu=True) == (True, None)
    assert load_recipe(SFTRecipe, None, ["bf16=auto"]).bf16 == "auto"
    with pytest.raises(GenedxError, match="bf16 must be true, false or auto"):
        load_recipe(SFTRecipe, None, ["bf16=fast"])
    for cfg in ("sft-smollm-cpu.yaml", "rft-smollm-cpu.yaml"):
        text = (Path(__file__).resolve().parent.parent / "training" / "configs" / cfg).read_text()
        assert "\nbf16: auto" in text, cfg


def test_shipped_sft_recipes_load():
    from pathlib import Path
    recipes = sorted(Path(__file__).parent.parent.glob("training/configs/sft-*.yaml"))
    assert recipes
    for path in recipes:
        load_recipe(SFTRecipe, path)


def test_training_cases_caps_and_errors(home):
    con = connect(home)
    try:
        r = load_recipe(SFTRecipe, None, ["max_simulated_cases=4"])
        assert len(training_cases(con, r)) == 4
        with pytest.raises(GenedxError, match="no training cases"):
            training_cases(con, load_recipe(SFTRecipe, None, ["train_split=nosuchsplit"]))
    finally:
        con.close()


def test_nonempty_output_dir_is_refused(home, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(GenedxError, match="not empty"):
        run_sft(load_recipe(SFTRecipe, None, [f"output_dir={tmp_path / 'out'}"]), home, log=lambda m: None)


@pytest.mark.slow
def test_sft_few_steps_changes_weights_and_stores_run(home, tmp_path):
    from genedx.model.load import load_model
    base = make_tiny_model(home, tmp_path / "base")
    before = {k: v.clone() for k, v in load_model(base, device="cpu")[0].state_dict().items()}
    out = tmp_path / "sft"
    recipe = load_recipe(SFTRecipe, None, [f"model={base}", f"output_dir={out}", "mode=mixed", "max_steps=3",
                                           "batch_size=4", "learning_rate=0.01", "eval_samples=3", "max_new_tokens=8",
                                           "logging_steps=1", "use_cpu=true"])
    logs: list[str] = []
    result = run_sft(recipe, home, log=logs.append)
    assert result.steps == 3 and result.n_train == 13 and result.final_loss is not None
    after, tok = load_model(out, device="cpu")
    changed = [k for k, v in after.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) > len(before) // 2    # SFT moved most tensors
    assert tok("SCN1A")["input_ids"] == load_model(base, device="cpu")[1]("SCN1A")["input_ids"]
    meta = json.loads((out / "genedx_model.json").read_text())
    assert meta["base_model"] == str(base) and set(meta["validation"]) == {"closed", "retrieval"}
    assert meta["prompt"] == {"top_k": recipe.top_k, "with_ids": recipe.with_ids, "terms_per_gene": recipe.terms_per_gene,
                              "max_present": recipe.max_present, "max_absent": recipe.max_absent, "layout": recipe.layout}
    con = connect(home)
    try:
        run = con.execute("SELECT kind, status, model_dir FROM run WHERE id = ?", [result.run_id]).fetchone()
        assert run == ("sft", "done", str(out))
        losses = con.execute("SELECT count(*) FROM metric WHERE run_id = ? AND name = 'loss'", [result.run_id]).fetchone()
        assert losses[0] == 3
        for mode in ("closed", "retrieval"):
            n = con.execute("SELECT count(*) FROM grade WHERE run_id = ?", [f"{result.run_id}/{mode}"]).fetchone()[0]
            assert n == 3
            names = {r[0] for r in con.execute("SELECT name FROM metric WHERE run_id = ?", [f"{result.run_id}/{mode}"]).fetchall()}
            assert {"top1", "top5", "topmax", "well_formed"} <= names
    finally:
        con.close()
    assert any("validation, retrieval mode" in m for m in logs)


@pytest.mark.slow
def test_cli_train_sft_from_scratch(home, tmp_path):
    out = tmp_path / "cli-sft"
    r = CliRunner().invoke(app, ["--home", str(home.root), "train", "sft", "--set", "init_size=tiny",
                                 "--set", f"output_dir={out}", "--set", "max_steps=2", "--set", "batch_size=4",
                                 "--set", "eval_samples=0", "--set", "mode=closed"])
    assert r.exit_code == 0, r.output
    assert "2 steps" in r.stdout and (out / "model.safetensors").exists() and (out / "init" / "config.json").exists()
    r = CliRunner().invoke(app, ["--home", str(home.root), "train", "sft", "--set", "mode=wrong"])
    assert r.exit_code != 0


def test_model_loss_trainer_matches_trl_fused_loss(home, tmp_path):
    """The CPU trainer (model's own loss) computes the same completion-only loss as TRL's fused LM head."""
    from datasets import Dataset
    from trl import SFTConfig

    from genedx.model.load import load_model
    from genedx.train.sft import _trainer_class
    base = make_tiny_model(home, tmp_path / "base")
    rows = [{"prompt": [{"role": "user", "content": f"case {i}: seizures"}],
             "completion": [{"role": "assistant", "content": "<think>x</think>\n<answer>SCN1A</answer>"}]}
            for i in range(4)]
    losses = {}
    for fused in (True, False):
        model, tok = load_model(base, device="cpu", trainable=True)
        cfg = SFTConfig(output_dir=str(tmp_path / f"o{fused}"), per_device_train_batch_size=4, max_length=128,
                        completion_only_loss=True, report_to=[], use_cpu=True, bf16=False,
                        activation_checkpointing=False, train_sampling_strategy="random")
        trainer = _trainer_class(fused)(model=model, args=cfg, train_dataset=Dataset.from_list(rows),
                                        processing_class=tok)
        batch = next(iter(trainer.get_train_dataloader()))
        assert (batch["labels"] == -100).any() and (batch["labels"] != -100).any()   # prompt masked
        with torch.no_grad():
            losses[fused] = float(trainer.compute_loss(trainer.model, dict(batch)))
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_retrieval_examples_only_when_the_true_gene_is_shown(home):
    """retrieval_shown_only: a case whose gene is not among the shown candidates gets a closed prompt
    (mixed) or no example (retrieval only); without it, the target leads with an unseen gene."""
    from genedx.cases.model import Case
    from genedx.model.prompts import CANDIDATES_HEADER, PromptBuilder
    from genedx.train.sft import sft_rows
    con = connect(home, read_only=True)
    try:
        first = PromptBuilder.from_db(con, "retrieval", need_ranker=True, top_k=1)
        builders = {m: PromptBuilder(first.labels, m, first.ranker, top_k=1) for m in ("closed", "retrieval")}
        shown = Case("shown", present=["HP:0001250", "HP:0001263"], gene="SCN1A")
        hidden = Case("hidden", present=["HP:0001250"], gene="CRYAB")     # seizure: SCN1A is the one candidate
        assert [g.symbol for g in first.ranked(hidden)] == ["SCN1A"]
        is_retrieval = lambda row: CANDIDATES_HEADER in row["prompt"][0]["content"]
        rows = sft_rows([shown, hidden], builders, 3, retrieval_share=1.0, retrieval_shown_only=True)
        assert [r["mode"] for r in rows] == ["retrieval", "closed"] and [is_retrieval(r) for r in rows] == [True, False]
        only = sft_rows([shown, hidden], {"retrieval": builders["retrieval"]}, 3, retrieval_shown_only=True)
        assert len(only) == 1 and is_retrieval(only[0])
        off = sft_rows([shown, hidden], builders, 3, retrieval_share=1.0, retrieval_shown_only=False)
        assert [r["mode"] for r in off] == ["retrieval", "retrieval"]
    finally:
        con.close()


def test_copy_rows_list_random_genes_and_copy_them():
    from genedx.grade.parse import parse_answer
    from genedx.model.prompts import CANDIDATES_HEADER
    from genedx.train.copy_warmup import copy_rows
    genes = ["SCN1A", "SCN2A", "TBX5", "CRYAB", "GLI3", "FBN1", "KCNJ2", "ZFX", "ANKRD11", "ATP13A2", "NIPBL", "SETD5"]
    rows = copy_rows(genes, 50, seed=1)
    assert rows == copy_rows(genes, 50, seed=1) and rows != copy_rows(genes, 50, seed=2)
    for r in rows:
        prompt = r["prompt"][0]["content"]
        listed = [ln.split(". ", 1)[1] for ln in prompt.splitlines()[1:] if ". " in ln and ln[0].isdigit()]
        assert prompt.startswith(CANDIDATES_HEADER) and 3 <= len(listed) <= 10 and len(set(listed)) == len(listed)
        assert parse_answer(r["completion"][0]["content"]).genes == listed
    assert all(len(parse_answer(r["completion"][0]["content"]).genes) == 3 for r in copy_rows(genes[:3], 5))
    with pytest.raises(ValueError, match="at least 3 distinct genes"):
        copy_rows(genes[:2], 1)


@pytest.mark.slow
def test_sft_with_copy_warmup(home, tmp_path):
    out = tmp_path / "warm"
    recipe = load_recipe(SFTRecipe, None, ["init_size=tiny", f"output_dir={out}", "max_steps=1", "batch_size=2",
                                           "copy_warmup_steps=2", "eval_samples=0", "use_cpu=true"])
    logs: list[str] = []
    result = run_sft(recipe, home, log=logs.append)
    assert result.steps == 1 and any(m.startswith("copy warm-up: 2 steps") for m in logs)
    assert json.loads((out / "genedx_model.json").read_text())["recipe"]["copy_warmup_steps"] == 2
