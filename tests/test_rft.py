"""RFT (`genedx.train.rft`, `genedx train rft`): recipe validation, a tiny end-to-end GRPO run with
per-step validation metrics and a reloadable model, --resume after an interruption, and a sanity run
where the mean reward rises on an easy synthetic reward with full fine-tuning.

The tiny model (Llama, hidden 64, 2 layers) and its tokenizer are built here from a few strings, so the
tests need neither the hub nor /work/shared.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from genedx.answer_format import format_instructions
from genedx.errors import GenedxError
from genedx.home import Home, connect
from genedx.train import runs
from genedx.train.recipes import load_recipe
from genedx.train.rft import RFTRecipe, build_rewards, check_environment, read_records, run_rft

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

GENES = ["SCN1A", "TBX5", "CRYAB"]
LABELS = ["Seizure", "Ventricular septal defect", "Cataract", "Fever", "Hypotonia"]
CONFIGS = Path(__file__).resolve().parent.parent / "training" / "configs"


def _record(i: int) -> dict:
    gene, label = GENES[i % 3], LABELS[i % 3]
    return {"id": f"case{i}", "correct_answer": gene, "source": "test",
            "prompt": [{"role": "user", "content": f"Symptoms present: {label}.\n\n{format_instructions()}"}]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny from-scratch model plus train/validation RFT record files."""
    from genedx.model.build import TokenizerCorpus, init_model

    root = tmp_path_factory.mktemp("rft")
    texts = [f"Symptoms present: {label}." for label in LABELS] + [format_instructions()] * 2
    init_model(root / "tiny", "tiny", corpus=TokenizerCorpus(texts=texts, genes=GENES, labels=LABELS), seed=0)
    records = [_record(i) for i in range(12)]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:8]))
    (root / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[8:]))
    return root


def _recipe(tiny: Path, out: Path, **kw) -> RFTRecipe:
    base = dict(model=str(tiny / "tiny"), train_file=str(tiny / "train.jsonl"), eval_file=str(tiny / "val.jsonl"),
                use_cpu=True, batch_size=4, num_generations=2, max_steps=4, eval_interval=2,
                max_completion_length=12, save_steps=2, output_dir=str(out), learning_rate_multiplier=100)
    base.update(kw)
    return RFTRecipe(**base)


# --- fail fast ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    (["batch_size=6", "num_generations=4"], r"batch_size \(6\) must be divisible by num_generations \(4\): e.g. batch_size=8"),
    (["num_generations=1", "batch_size=4"], "num_generations .* must be >= 2"),
    (["mode=open"], "mode 'open' must be 'closed' or 'retrieval'"),
    (["learning_rate_multiplier=0"], "learning_rate_multiplier .* must be > 0"),
    (["temperature=0"], "temperature .* must be > 0"),
    (["eval_interval=0"], r"eval_interval \(0\) must be >= 1"),
    (["use_vllm=true"], "use_vllm needs a GPU"),
    (["grpo_args={learning_rate: 1.0}"], "grpo_args may not set .*learning_rate"),
    (["reward_functions=[{grader: {type: format}, wieght: 1}]"], r"unknown key\(s\) \['wieght'\]"),
    (["grader={type: format}", "reward_functions=[{grader: {type: format}}]"], "either grader .* or reward_functions"),
])
def test_invalid_recipe_fails_fast(tiny, tmp_path, overrides, message):
    sets = [f"model={tiny / 'tiny'}", "use_cpu=true", f"train_file={tiny / 'train.jsonl'}",
            f"eval_file={tiny / 'val.jsonl'}"] + overrides
    with pytest.raises(GenedxError, match=message):
        load_recipe(RFTRecipe, None, sets)


def test_missing_model_dir_fails_fast(tmp_path):
    with pytest.raises(GenedxError, match="model dir .*nope does not exist"):
        load_recipe(RFTRecipe, None, [f"model={tmp_path / 'nope'}", "use_cpu=true"])
    with pytest.raises(GenedxError, match="model is not set"):
        load_recipe(RFTRecipe, None, ["use_cpu=true"])


def test_missing_data_file_and_unknown_knob(tiny, tmp_path):
    with pytest.raises(GenedxError, match="train_file .* does not exist"):
        load_recipe(RFTRecipe, None, [f"model={tiny / 'tiny'}", "use_cpu=true", f"train_file={tmp_path / 'x.jsonl'}",
                                      f"eval_file={tiny / 'val.jsonl'}"])
    with pytest.raises(GenedxError, match="unknown recipe knob"):
        load_recipe(RFTRecipe, None, [f"model={tiny / 'tiny'}", "n_epoch=2"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_gpu_recipe_on_cpu_machine_says_use_cpu(tiny, tmp_path):
    recipe = _recipe(tiny, tmp_path / "out", use_cpu=False)
    with pytest.raises(GenedxError, match="no GPU found: set use_cpu=true"):
        check_environment(recipe)


def test_bf16_on_a_cpu_without_native_bf16_is_refused_before_training(tiny, tmp_path, monkeypatch):
    from genedx.train import hardware
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(hardware.platform, "system", lambda: "Linux")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GenedxError, match="no native bf16 instructions"):
        check_environment(_recipe(tiny, tmp_path / "out", bf16=True))
    check_environment(_recipe(tiny, tmp_path / "out", bf16="auto"))   # auto falls back to fp32 here
    with pytest.raises(ValueError, match="bf16 must be true, false or auto"):
        _recipe(tiny, tmp_path / "out", bf16="yes")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    check_environment(_recipe(tiny, tmp_path / "out", bf16=True))


def test_unknown_grpo_arg_and_bad_grader_fail_before_training(tiny, tmp_path):
    with pytest.raises(GenedxError, match="unknown trl.GRPOConfig argument.*not_a_knob"):
        check_environment(_recipe(tiny, tmp_path / "out", grpo_args={"not_a_knob": 1}))
    with pytest.raises(GenedxError, match="reward grade: .*"):
        build_rewards(_recipe(tiny, tmp_path / "out", grader={"type": "no_such_grader"}))
    # and through run_rft: nothing is written (no run row, no output dir)
    home = Home(tmp_path / "home")
    with pytest.raises(GenedxError):
        run_rft(_recipe(tiny, tmp_path / "out", grader={"type": "no_such_grader"}), home)
    assert not (tmp_path / "out").exists()


def test_several_reward_functions_get_trl_weights(tiny, tmp_path):
    funcs, weights = build_rewards(_recipe(tiny, tmp_path / "o", reward_functions=[
        {"name": "rank", "grader": {"type": "ranked_gene"}, "weight": 0.8},
        {"name": "fmt", "grader": {"type": "format"}, "weight": 0.2}]))
    assert [f.__name__ for f in funcs] == ["rank", "fmt"] and weights == [0.8, 0.2]
    out = funcs[0](["<answer>TBX5, SCN1A</answer>"], correct_answer=["SCN1A"], id=["c"])
    assert out == [pytest.approx(0.7)]


def test_bad_record_file_names_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps(_record(0)) + "\n{not json\n")
    with pytest.raises(GenedxError, match=r"bad.jsonl:2: not valid JSON"):
        read_records(f)
    f.write_text(json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(GenedxError, match=r"bad.jsonl:1: .*correct_answer"):
        read_records(f)


def test_resume_without_checkpoint_is_an_error(tiny, tmp_path):
    with pytest.raises(GenedxError, match="nothing to resume"):
        run_rft(_recipe(tiny, tmp_path / "empty"), Home(tmp_path / "home"), resume=True)


def test_shipped_recipes_load(tiny):
    """Every shipped rft recipe parses and validates (model dir pointed at the tiny model)."""
    paths = sorted(CONFIGS.glob("rft-*.yaml")) + [CONFIGS / n for n in ("cpu-small.yaml", "gpu-from-scratch.yaml",
                                                                          "gpu-lora.yaml")]
    assert paths
    for p in paths:
        recipe = load_recipe(RFTRecipe, p, [f"model={tiny / 'tiny'}"])
        assert recipe.batch_size % recipe.num_generations == 0


# --- training -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tiny_end_to_end_records_metrics_and_reloadable_model(tiny, tmp_path, monkeypatch, capsys, run_cli):
    home = Home(tmp_path / "home")
    out = tmp_path / "out"
    # through the CLI: `genedx train rft --config ... --set ...`
    cfg = tmp_path / "r.yaml"
    cfg.write_text(f"model: {tiny / 'tiny'}\ntrain_file: {tiny / 'train.jsonl'}\neval_file: {tiny / 'val.jsonl'}\n"
                   f"use_cpu: true\nbatch_size: 4\nnum_generations: 2\nmax_completion_length: 12\n")
    code = run_cli(["--home", str(home.root), "train", "rft", "--config", str(cfg), "--set", "max_steps=4",
                              "--set", "eval_interval=2", "--set", "save_steps=2", "--set", f"output_dir={out}",
                              "--set", "run_name=tiny-e2e"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "[validation] step 0: top@1" in text and "[validation] step 4" in text and "[train] step 1: reward" in text

    con = connect(home)
    (run,) = runs.list_runs(con, kind="rft")
    assert run.status == "done" and run.name == "tiny-e2e"
    val = runs.run_metrics(con, run.id, "validation")
    assert sorted(val["validation/top1"]) == [0, 2, 4]            # before training, every 2 steps, end
    for name in ("top5", "topmax", "mean_grade", "well_formed"):
        assert sorted(val[f"validation/{name}"]) == [0, 2, 4]
    lo_hi = val["validation/top1"][4]
    assert lo_hi[1] is not None and lo_hi[1] <= lo_hi[0] <= lo_hi[2]
    train = runs.run_metrics(con, run.id, "train")
    assert sorted(train["train/reward"]) == [1, 2, 3, 4]
    assert {"train/kl", "train/frac_reward_zero_std", "train/step_seconds"} <= set(train)
    n_samples = con.execute("SELECT count(*) FROM completion_sample WHERE run_id = ? AND split = 'validation'",
                            [run.id]).fetchone()[0]
    assert n_samples > 0
    # per-case grades of the latest validation: one row per validation case, graded like `genedx eval`
    val_ids = {json.loads(line)["id"] for line in (tiny / "val.jsonl").read_text().splitlines() if line.strip()}
    grades = con.execute("SELECT case_id, grade, well_formed FROM grade WHERE run_id = ?", [run.id]).fetchall()
    assert {g[0] for g in grades} == val_ids and len(grades) == len(val_ids)
    assert all(0.0 <= g[1] <= 1.0 for g in grades)
    mean = sum(g[1] for g in grades) / len(grades)
    assert abs(mean - val["validation/mean_grade"][4][0]) < 1e-9
    con.close()

    assert (out / "checkpoint-2").is_dir() and (out / "checkpoint-4").is_dir()
    model_dir = out / "model"
    card = (model_dir / "README.md").read_text()
    assert "Base model" in card and str(tiny / "tiny") in card and "| 4 |" in card and "validation_curve.png" in card
    assert (model_dir / "validation_curve.png").stat().st_size > 1000

    # the final model reloads and answers through the model predictor (what `genedx score --predictor model:DIR` uses)
    from genedx.model.load import load_model
    model, tok = load_model(model_dir, device="cpu")
    assert model.config.model_type == "llama"
    _score_with_model_predictor(model_dir, tmp_path, monkeypatch, capsys, run_cli)


def _score_with_model_predictor(model_dir: Path, tmp_path: Path, monkeypatch, capsys, run_cli) -> None:
    """The RFT output dir works as a `model:DIR` predictor (the library call and, where the factory has
    the model branch, the `genedx score` command)."""
    from genedx.cases.model import Case
    from genedx.kb.build import build_kb
    from genedx.model.predictor import ModelPredictor
    from tests.conftest import TOY_HPO

    home = Home(tmp_path / "score_home").ensure()
    con = connect(home)
    build_kb(con, TOY_HPO)
    (pred,) = ModelPredictor.from_db(con, model_dir, max_new_tokens=8).predict(
        [Case(id="p1", present=["HP:0001250"], absent=[], gene="SCN1A")])
    con.close()
    assert pred.case_id == "p1" and isinstance(pred.output, str) and pred.predictor == f"model:{model_dir}"

    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"id": "p1", "present": ["HP:0001250"], "absent": [], "gene": "SCN1A"}) + "\n")
    preds = tmp_path / "pred.jsonl"
    capsys.readouterr()
    code = run_cli(["--home", str(home.root), "score", str(cases), "--predictor", f"model:{model_dir}",
                              "--out", str(preds)])
    err = capsys.readouterr().err
    if code == 2 and "use one of ranker or model:DIR" in err:
        pytest.skip("genedx.predictors has no model:DIR branch yet (model engineer's small edit)")
    assert code == 0, err
    line = json.loads(preds.read_text().splitlines()[0])
    assert line["id"] == "p1" and "genes" in line and "output" in line


@pytest.mark.slow
def test_resume_continues_after_interruption(tiny, tmp_path, monkeypatch):
    from genedx.grade.graders import register_grader

    calls = {"n": 0}

    @register_grader("interrupt_on_fourth_batch")
    def _interrupting(output: str, correct_answer: str) -> float:
        calls["n"] += 1
        if calls["n"] == 4 * 4 + 1:         # batch of step 5 (4 completions per step): Ctrl-C
            raise KeyboardInterrupt
        return float("SCN1A" in output)

    home = Home(tmp_path / "home")
    out = tmp_path / "out"
    recipe = _recipe(tiny, out, max_steps=6, save_steps=2, eval_interval=2,
                     grader={"type": "interrupt_on_fourth_batch"})
    with pytest.raises(GenedxError, match="interrupted: continue it with --resume"):
        run_rft(recipe, home)
    con = connect(home)
    (run,) = runs.list_runs(con)
    assert run.status == "interrupted"
    con.close()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]

    with pytest.raises(GenedxError, match="pass --resume"):   # never silently overwrite a run with checkpoints
        run_rft(recipe, home)

    result = run_rft(recipe, home, resume=True)
    assert result.run_id == run.id and result.steps == 6
    con = connect(home)
    (again,) = runs.list_runs(con)
    assert again.status == "done"
    val = runs.run_metrics(con, run.id, "validation")["validation/top1"]
    assert sorted(val) == [0, 2, 4, 6]
    n = con.execute("SELECT count(*) FROM metric WHERE run_id = ? AND split = 'train' AND name = 'reward'",
                    [run.id]).fetchone()[0]
    assert n == 6                                              # steps 1..6, none twice
    con.close()
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6


@pytest.mark.slow
def test_mean_reward_rises_on_easy_reward_with_full_fine_tuning(tiny, tmp_path):
    """Sanity check of the whole loop: a reward for upper-case text is learnt in 40 GRPO steps."""
    from genedx.grade.graders import register_grader

    @register_grader("upper_case_share")
    def _upper(output: str, correct_answer: str) -> float:
        return sum(c.isupper() for c in output) / max(1, len(output))

    home = Home(tmp_path / "home")
    recipe = _recipe(tiny, tmp_path / "out", batch_size=8, num_generations=4, max_steps=40, eval_interval=100,
                     save_steps=1000, beta=0.0, learning_rate_multiplier=1000, grader={"type": "upper_case_share"},
                     log_completions=False)
    before = {k: v.clone() for k, v in _weights(tiny / "tiny").items()}
    result = run_rft(recipe, home, log=lambda s: None)
    con = connect(home)
    rewards = runs.run_metrics(con, result.run_id, "train")["train/reward"]
    con.close()
    series = [rewards[s][0] for s in sorted(rewards)]
    assert len(series) == 40
    first, last = sum(series[:5]) / 5, sum(series[-5:]) / 5
    assert last > first + 0.3, series
    after = _weights(result.model_dir)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    return load_file(str(model_dir / "model.safetensors"))




@pytest.mark.parametrize("mode", ["closed", "retrieval"])
def test_records_from_database_use_the_model_prompts(toy_home, tiny, mode):
    """Without train_file, RFT reads the stored splits and builds prompts as SFT and the predictor do."""
    from genedx.cases.model import Case
    from genedx.cases.split import make_split
    from genedx.cases.store import import_cases
    from genedx.model.prompts import PromptBuilder
    from genedx.train.rft import load_data

    cases = [Case(id=f"c{i}", present=[["HP:0001250", "HP:0001263"], ["HP:0001631", "HP:0001629"],
                                       ["HP:0000518"]][i % 3], gene=GENES[i % 3], source="phenopacket",
                  publication=f"PMID:{i}") for i in range(9)]
    cases.append(Case(id="sim0", present=["HP:0001250"], gene="SCN1A", source="simulated"))
    con = connect(toy_home)
    import_cases(con, cases)
    make_split(con, by="case", seed=0, validation=0.34)
    con.close()
    recipe = RFTRecipe(model=str(tiny / "tiny"), use_cpu=True, mode=mode, include_simulated=False)
    train, val = load_data(recipe, toy_home)
    assert train and val and not {r["id"] for r in train} & {r["id"] for r in val}
    assert all(r["source"] != "simulated" for r in train + val)
    con = connect(toy_home, read_only=True)
    builder = PromptBuilder.from_db(con, mode=mode)
    from genedx.cases.store import load_cases
    by_id = {c.id: c for c in load_cases(con)}
    con.close()
    r = val[0]
    assert r["prompt"] == builder.messages(by_id[r["id"]]) and r["correct_answer"] == by_id[r["id"]].gene
    assert ("Candidate genes" in r["prompt"][0]["content"]) == (mode == "retrieval")


def test_no_validation_cases_is_a_clear_error(toy_home, tiny):
    from genedx.train.rft import load_data
    recipe = RFTRecipe(model=str(tiny / "tiny"), use_cpu=True)
    with pytest.raises(GenedxError, match="no training cases in split 'train'"):
        load_data(recipe, toy_home)


@pytest.mark.slow
def test_lora_on_a_qwen2_architecture_model(tiny, tmp_path):
    """The gpu-lora path on CPU: a tiny random Qwen2 model (the architecture of Qwen2.5 instruct models),
    LoRA adapter trained a few steps, saved alone and merged into a loadable final model."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny / "tiny")
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=(len(tok) + 63) // 64 * 64, hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      tie_word_embeddings=True)
    qwen = tmp_path / "qwen2-tiny"
    Qwen2ForCausalLM(cfg).save_pretrained(qwen)
    tok.save_pretrained(qwen)
    base = _weights(qwen)

    from genedx.grade.graders import register_grader

    @register_grader("upper_case_share_lora")   # a reward with spread, so the adapter gets gradients
    def _upper(output: str, correct_answer: str) -> float:
        return sum(c.isupper() for c in output) / max(1, len(output))

    home = Home(tmp_path / "home")
    result = run_rft(_recipe(tiny, tmp_path / "out", model=str(qwen), use_lora=True, lora_r=4, lora_alpha=8,
                             max_steps=2, eval_interval=2, learning_rate_multiplier=1000,
                             grader={"type": "upper_case_share_lora"}), home, log=lambda s: None)
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").exists()
    from genedx.model.load import load_model
    model, _ = load_model(result.model_dir, device="cpu")
    assert model.config.model_type == "qwen2" and not hasattr(model, "peft_config")
    merged = _weights(result.model_dir)
    changed = [k for k in base if k in merged and not torch.equal(base[k], merged[k])]
    assert changed and all("proj" in k for k in changed)      # only LoRA-wrapped linear layers moved


def test_prompt_layout_is_inherited_from_the_starting_model(tmp_path):
    """RFT asks in the layout SFT trained (genedx_model.json "prompt"); explicit recipe values win."""
    from genedx.train.rft import prompt_options
    start = tmp_path / "sft"
    start.mkdir()
    (start / "genedx_model.json").write_text(json.dumps(
        {"prompt": {"top_k": 7, "with_ids": True, "terms_per_gene": 2, "max_present": 20, "max_absent": 8}}))
    inherited = prompt_options(RFTRecipe(model=str(start), use_cpu=True))
    assert inherited == {"top_k": 7, "with_ids": True, "terms_per_gene": 2, "max_present": 20, "max_absent": 8}
    over = prompt_options(RFTRecipe(model=str(start), use_cpu=True, retrieval_top_k=3, with_ids=False))
    assert over["top_k"] == 3 and over["with_ids"] is False and over["max_absent"] == 8
    assert prompt_options(RFTRecipe(model=str(tmp_path), use_cpu=True)) == {}   # not a genedx model: defaults
