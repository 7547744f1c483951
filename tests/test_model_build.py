"""`genedx.model.build` / `genedx.model.load`: from-scratch tiny model, tokenizer round-trip, broken dirs."""

from __future__ import annotations

import json
import os

import pytest
import torch

from genedx.errors import GenedxError
from genedx.home import connect
from genedx.model.build import IM_END, PAD, TokenizerCorpus, corpus_from_db, init_model, train_tokenizer
from genedx.model.load import load_model, load_tokenizer

torch.set_num_threads(1)

SAMPLES = [
    "<think>Seizures and Seizure with Ventricular septal defect; SCN1A but not SCN1AB.</think>\n<answer>SCN1A, TBX5</answer>",
    "Symptoms present: Seizure (HP:0001250), Hypotonia.\nSymptoms absent: none. Ünïcödé — ok?",
    "  leading spaces, tabs\tand\nnewlines  ",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A tiny model built from the toy knowledge base (module-scoped: built once)."""
    from genedx.home import Home
    from genedx.kb.build import build_kb
    from tests.conftest import TOY_HPO
    home = Home(tmp_path_factory.mktemp("toy")).ensure()
    con = connect(home)
    build_kb(con, TOY_HPO)
    out = tmp_path_factory.mktemp("models") / "tiny"
    report = init_model(out, "tiny", con=con, seed=1)
    con.close()
    assert report.parameters > 0
    return out


def test_corpus_from_toy_kb(toy_home):
    con = connect(toy_home)
    corpus = corpus_from_db(con)
    assert {"SCN1A", "TBX5", "CRYAB"} <= set(corpus.genes)
    assert "Seizure" in corpus.labels and "Seizure" in corpus.texts
    assert any("<answer>" in t for t in corpus.texts)  # instructions describe the format


def test_corpus_needs_kb(tmp_home):
    with pytest.raises(GenedxError, match="data build"):
        corpus_from_db(connect(tmp_home))


def test_tiny_saves_reloads_offline_and_generates(tiny_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert (tiny_dir / "config.json").exists() and (tiny_dir / "tokenizer.json").exists()
    meta = json.loads((tiny_dir / "genedx_model.json").read_text())
    assert meta["size"] == "tiny" and meta["parameters"] < 2_000_000
    model, tok = load_model(tiny_dir, device="cpu")
    assert model.config.model_type == "llama" and not model.training
    assert tok.eos_token == IM_END and tok.pad_token == PAD
    assert model.config.eos_token_id == tok.eos_token_id and model.config.pad_token_id == tok.pad_token_id
    prompt = tok.apply_chat_template([{"role": "user", "content": "Symptoms present: Seizure."}],
                                     tokenize=False, add_generation_prompt=True)
    assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("<|im_start|>assistant\n")
    enc = tok(prompt, return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=6, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]
    # same seed -> same initial weights; another seed differs
    w = model.model.layers[0].self_attn.q_proj.weight
    torch.manual_seed(0)
    m2, _ = load_model(tiny_dir, device="cpu")
    assert torch.equal(w, m2.model.layers[0].self_attn.q_proj.weight)


def test_tokenizer_ids_round_trip(tiny_dir):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    auto = AutoTokenizer.from_pretrained(tiny_dir, local_files_only=True)
    explicit = PreTrainedTokenizerFast.from_pretrained(tiny_dir, local_files_only=True)
    for s in SAMPLES:
        ids = auto(s)["input_ids"]
        assert ids == explicit(s)["input_ids"]
        assert auto.decode(ids) == s
    ids = auto(SAMPLES[0])["input_ids"]
    toks = auto.convert_ids_to_tokens(ids)
    # genes, labels and markup are whole tokens; a gene never matches inside a longer word
    for whole in ("SCN1A", "TBX5", "<think>", "</answer>", "Ventricular septal defect", "Seizure"):
        assert whole in toks
    assert "SCN1AB" not in toks and toks.count("SCN1A") == 2


def test_tokenizer_round_trip_after_save(tmp_path):
    corpus = TokenizerCorpus(texts=["hello world", "gene symbols here", "hello genes"] * 5,
                             genes=["ABC1", "XYZ-2"], labels=["Long label text"])
    tok = train_tokenizer(corpus, bpe_vocab=300, n_labels=10)
    s = "hello ABC1 and XYZ-2: Long label text."
    ids = tok(s)["input_ids"]
    tok.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))  # the trap the issue warns about
    from genedx.model.build import _fix_tokenizer_class
    _fix_tokenizer_class(tmp_path)
    again = load_tokenizer(tmp_path)
    assert again(s)["input_ids"] == ids and again.decode(ids) == s


def test_empty_corpus_is_an_error():
    with pytest.raises(GenedxError, match="corpus is empty"):
        train_tokenizer(TokenizerCorpus())


def test_init_refuses_bad_size_and_nonempty_dir(tmp_path, toy_home):
    con = connect(toy_home)
    with pytest.raises(GenedxError, match="unknown model size"):
        init_model(tmp_path / "m", "huge", con=con)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(GenedxError, match="not empty"):
        init_model(tmp_path / "full", "tiny", con=con)


@pytest.mark.parametrize("breakage", ["missing", "file", "no_config", "bad_json", "bad_weights", "no_tokenizer",
                                      "vocab_mismatch", "bad_adapter"])
def test_broken_model_dir_is_one_line_error(tiny_dir, tmp_path, breakage):
    import shutil
    d = tmp_path / "m"
    shutil.copytree(tiny_dir, d)
    adapter = None
    if breakage == "missing":
        d = tmp_path / "nope"
    elif breakage == "file":
        d = tmp_path / "f.txt"
        d.write_text("x")
    elif breakage == "no_config":
        os.remove(d / "config.json")
    elif breakage == "bad_json":
        (d / "config.json").write_text("{not json")
    elif breakage == "bad_weights":
        (d / "model.safetensors").write_bytes(b"garbage")
    elif breakage == "no_tokenizer":
        for f in ("tokenizer.json", "tokenizer_config.json"):
            os.remove(d / f)
    elif breakage == "vocab_mismatch":
        cfg = json.loads((d / "config.json").read_text())
        cfg["vocab_size"] = 64
        (d / "config.json").write_text(json.dumps(cfg))
    elif breakage == "bad_adapter":
        adapter = tmp_path / "adapter"
        adapter.mkdir()
    with pytest.raises(GenedxError) as e:
        load_model(d, adapter=adapter, device="cpu")
    assert "\n" not in str(e.value) and len(str(e.value)) < 400


def test_adapter_only_dir_loads_its_base(tiny_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    model, _ = load_model(tiny_dir, device="cpu")
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    peft_model.save_pretrained(tmp_path / "lora")
    cfg = json.loads((tmp_path / "lora" / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(tiny_dir)
    (tmp_path / "lora" / "adapter_config.json").write_text(json.dumps(cfg))
    loaded, tok = load_model(tmp_path / "lora", device="cpu")
    from peft import PeftModel
    assert isinstance(loaded, PeftModel) and tok.pad_token == PAD


def test_cli_model_init(toy_home, tmp_path):
    from typer.testing import CliRunner
    from genedx.cli import app
    out = tmp_path / "cli-tiny"
    r = CliRunner().invoke(app, ["--home", str(toy_home.root), "model", "init", "--out", str(out), "--size", "tiny", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["size"] == "tiny"
    model, tok = load_model(out, device="cpu")
    assert len(tok) <= model.get_input_embeddings().num_embeddings


def test_init_gives_unit_norm_token_rows(tiny_dir):
    """Token rows of norm ~1 (std hidden**-0.5), not Llama's 0.02: with 0.02 no gene logit can rise
    high enough to copy a gene from the prompt (see scale_vocab_init)."""
    model, tok = load_model(tiny_dir, device="cpu")
    emb = model.get_input_embeddings().weight
    norms = emb.norm(dim=1)
    assert norms[tok.pad_token_id] == 0
    live = torch.cat([norms[:tok.pad_token_id], norms[tok.pad_token_id + 1:]])
    assert 0.8 < live.mean().item() < 1.2
    # initial logits have std ~1, so the untrained loss is near ln(vocab), not far above it
    enc = tok("Seizure SCN1A TBX5 CRYAB", return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    assert 0.5 < logits.std().item() < 2.0


def test_scale_vocab_init_redraws_untied_head():
    from transformers import LlamaConfig, LlamaForCausalLM
    from genedx.model.build import scale_vocab_init
    cfg = LlamaConfig(vocab_size=500, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=96, tie_word_embeddings=False, pad_token_id=0)
    model = LlamaForCausalLM(cfg)
    assert scale_vocab_init(model) == 64 ** -0.5
    for w in (model.get_input_embeddings().weight[1:], model.get_output_embeddings().weight):
        assert abs(w.std().item() - 0.125) < 0.01
