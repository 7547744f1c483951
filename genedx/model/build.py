"""Build a small domain model from scratch: a Llama-architecture causal LM from a config, plus a
tokenizer the project trains on its own text (HPO labels, gene symbols, case reports, answers).

No weights are ever downloaded. The tokenizer is a byte-level BPE trained with HF ``tokenizers``;
gene symbols, common HPO labels and the answer-format markup are added as whole tokens so a gene is
one id (easy to copy, easy to rank). It is saved as a ``PreTrainedTokenizerFast`` with
``tokenizer_class`` set explicitly, so ``AutoTokenizer`` loads exactly the trained pipeline (with a
Qwen2 config ``AutoTokenizer`` would rebuild a Qwen2 tokenizer whose pre-tokeniser differs and
silently change the ids; the tests check that ids round-trip).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from genedx.answer_format import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, format_answer, format_instructions
from genedx.errors import GenedxError
from genedx.model.load import GENEDX_META  # written beside config.json: how the model was made

PAD, IM_START, IM_END = "<|pad|>", "<|im_start|>", "<|im_end|>"
MARKUP = [THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE]

# ChatML, as Qwen uses: <|im_start|>role\ncontent<|im_end|>\n ; generation prompt opens the assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class ModelSize:
    """Llama config knobs and BPE vocabulary size of one named size."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    max_position_embeddings: int
    bpe_vocab: int          # BPE merges budget; gene/label tokens come on top
    n_labels: int           # most-annotated HPO labels added as whole tokens
    tie_word_embeddings: bool = True


SIZES: dict[str, ModelSize] = {
    # tests: builds in seconds, ~0.5M parameters (mostly embeddings)
    "tiny": ModelSize(64, 2, 4, 2, 128, 1024, bpe_vocab=1000, n_labels=200),
    # CPU demo: ~5M parameters, trains in minutes on 2 cores (the LM head over the vocabulary is
    # ~40% of the compute, so the BPE part of the vocabulary is kept small; genes are whole tokens anyway)
    "small": ModelSize(256, 4, 8, 4, 640, 1536, bpe_vocab=3000, n_labels=1500),
    # GPU: ~100M parameters. Tied like the others: with tied rows, copying a gene from the prompt is one
    # generic identity map; an untied head must learn each rare gene's output row separately (on a
    # 4-gene copy task the untied small model was still at 0% after 360-1,200 steps, tied 100% by step 300)
    "base": ModelSize(768, 12, 12, 4, 2048, 2048, bpe_vocab=16000, n_labels=6000),
}


@dataclass
class TokenizerCorpus:
    """What the tokenizer learns from: free text for BPE merges, and whole-token vocabularies."""

    texts: list[str] = field(default_factory=list)
    genes: list[str] = field(default_factory=list)    # each becomes one token
    labels: list[str] = field(default_factory=list)   # HPO labels, most annotated first


def corpus_from_db(con: duckdb.DuckDBPyConnection, max_cases: int = 3000, seed: int = 0) -> TokenizerCorpus:
    """The tokenizer corpus from a built knowledge base (and its stored cases, when there are any):
    every current HPO label, gene symbols with annotations or cases, instructions, and the prompts and
    target texts of up to ``max_cases`` stored cases (closed mode; a tenth also get retrieval candidate blocks)."""
    from genedx.home import require_kb
    require_kb(con)
    labels = [r[0] for r in con.execute(
        "SELECT t.label FROM hpo_term t JOIN disease_phenotype dp ON dp.term = t.id "
        "WHERE NOT t.obsolete AND dp.aspect = 'P' GROUP BY t.label ORDER BY count(*) DESC, t.label").fetchall()]
    all_labels = [r[0] for r in con.execute(
        "SELECT label FROM hpo_term WHERE NOT obsolete AND label IS NOT NULL ORDER BY id").fetchall()]
    genes = [r[0] for r in con.execute(
        "SELECT DISTINCT gene FROM gene_disease UNION SELECT DISTINCT gene FROM \"case\" WHERE gene IS NOT NULL "
        "ORDER BY 1").fetchall()]
    texts = list(all_labels)
    texts.append(format_instructions())
    texts += [r[0] for r in con.execute("SELECT name FROM disease WHERE name IS NOT NULL").fetchall()]
    texts += _case_texts(con, max_cases, seed)
    return TokenizerCorpus(texts=texts, genes=genes, labels=labels)


def _case_texts(con: duckdb.DuckDBPyConnection, max_cases: int, seed: int) -> list[str]:
    """Prompts and example targets of a sample of stored cases (empty when none are stored)."""
    n = con.execute('SELECT count(*) FROM "case"').fetchone()[0]
    if not n or max_cases <= 0:
        return []
    from genedx.cases.store import load_cases
    from genedx.model.prompts import PromptBuilder, build_prompt, load_labels
    cases = [c for c in load_cases(con) if c.present]
    random.Random(seed).shuffle(cases)
    labels = load_labels(con)
    out = []
    for case in cases[:max_cases]:
        out.append(build_prompt(case, labels, mode="closed"))
        if case.gene:
            out.append(format_answer([case.gene], f"The patient shows {', '.join(labels.get(t, t) for t in case.present[:5])}."))
    # Retrieval-mode candidate blocks of a few cases, so their phrasing gets BPE merges too (a ranker
    # load + ~5 ms per case; skipped with fewer cases than that is worth).
    n_retrieval = min(len(cases), max_cases // 10)
    if n_retrieval >= 20:
        builder = PromptBuilder.from_db(con, mode="retrieval")
        for c in cases[:n_retrieval]:
            try:
                out.append(builder.context(c))
            except GenedxError:   # a case the ranker cannot score adds nothing to the corpus
                continue
    return out


def train_tokenizer(corpus: TokenizerCorpus, bpe_vocab: int = 6000, n_labels: int = 3000):
    """A byte-level BPE tokenizer trained on ``corpus`` with genes, labels and markup as whole tokens.

    Hand-written glue only: training, pre-tokenisation and decoding are HF ``tokenizers``.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not corpus.texts:
        raise GenedxError("the tokenizer corpus is empty: build the knowledge base first (`genedx data build`)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=bpe_vocab, min_frequency=2, show_progress=False,
                                  special_tokens=[PAD, IM_START, IM_END],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus.texts, trainer=trainer)
    # Markup may touch words ("<think>Seizures"), so it is not single_word; genes and labels are,
    # so "SCN1A" never matches inside "SCN1AB" and "Seizure" not inside "Seizures".
    tok.add_tokens([AddedToken(m, normalized=False) for m in MARKUP])
    seen = set(MARKUP)
    whole = []
    for t in list(dict.fromkeys(corpus.genes)) + list(dict.fromkeys(corpus.labels))[:n_labels]:
        if t and t not in seen and t.strip() == t:
            seen.add(t)
            whole.append(AddedToken(t, single_word=True, normalized=False))
    tok.add_tokens(whole)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=PAD,
                                   additional_special_tokens=[IM_START], model_max_length=1 << 30)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _llama_config(size: ModelSize, vocab_size: int, tokenizer):
    from transformers import LlamaConfig
    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=size.hidden_size, num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads, num_key_value_heads=size.num_key_value_heads,
        intermediate_size=size.intermediate_size, max_position_embeddings=size.max_position_embeddings,
        tie_word_embeddings=size.tie_word_embeddings, rms_norm_eps=1e-5, rope_theta=10000.0,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.convert_tokens_to_ids(IM_START), use_cache=True)


@dataclass
class InitReport:
    out_dir: str
    size: str
    parameters: int
    vocab_size: int
    whole_word_tokens: int
    seconds: float


def init_model(out_dir: str | Path, size: str = "tiny", corpus: TokenizerCorpus | None = None,
               con: duckdb.DuckDBPyConnection | None = None, seed: int = 0, overwrite: bool = False) -> InitReport:
    """Build and save a from-scratch Llama model and its trained tokenizer in ``out_dir``.

    ``corpus`` defaults to :func:`corpus_from_db` of ``con``. The directory then loads offline with
    ``transformers`` (``AutoModelForCausalLM`` / ``AutoTokenizer``) or :func:`genedx.model.load.load_model`.
    """
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    if size not in SIZES:
        raise GenedxError(f"unknown model size {size!r} (choose {', '.join(SIZES)})")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise GenedxError(f"{out} exists and is not empty (choose another --out or pass --overwrite)")
    if corpus is None:
        if con is None:
            raise GenedxError("init_model needs a tokenizer corpus or a database connection")
        corpus = corpus_from_db(con, seed=seed)
    t0 = time.perf_counter()
    spec = SIZES[size]
    tokenizer = train_tokenizer(corpus, spec.bpe_vocab, spec.n_labels)
    vocab = len(tokenizer)
    vocab_padded = (vocab + 63) // 64 * 64    # multiple of 64: faster matmuls, room for later tokens
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_llama_config(spec, vocab_padded, tokenizer))
    scale_vocab_init(model)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.convert_tokens_to_ids(IM_START), do_sample=False)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _fix_tokenizer_class(out)
    n_params = sum(p.numel() for p in model.parameters())
    report = InitReport(str(out), size, n_params, vocab, len(tokenizer.get_added_vocab()), round(time.perf_counter() - t0, 2))
    (out / GENEDX_META).write_text(json.dumps({"created_by": "genedx model init", "seed": seed,
                                               "size_spec": asdict(spec), **asdict(report)}, indent=2))
    return report


def scale_vocab_init(model) -> float:
    """Re-draw the token embeddings (and an untied LM head) with std ``hidden_size ** -0.5``.

    Why: Llama's default std 0.02 gives each embedding row a norm of ~0.3 at hidden 256. Logits are the
    final-RMS-normed state (norm ~sqrt(hidden)) dotted with those rows, so no token can get a logit much
    above 5 - under 2% probability over ~10k tokens - until rows grow, and a rare gene token's row grows
    only on the few steps that see it. The model then cannot copy a gene from its prompt: on a pure
    4-gene copy task the 0.02 init reached 4% gene accuracy after 600 steps, std hidden**-0.5 reached 100%
    by step 300 (bench/RESULTS.md, "Why the small model did not copy"). Unit-norm rows give initial
    logits of std ~1 (loss near ln(vocab)).
    """
    import torch

    std = model.config.hidden_size ** -0.5
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, std)
        head = model.get_output_embeddings()
        if head is not None and head.weight is not model.get_input_embeddings().weight:
            head.weight.normal_(0.0, std)
        pad = model.config.pad_token_id
        if pad is not None:
            model.get_input_embeddings().weight[pad].zero_()
    return std


def _fix_tokenizer_class(out: Path) -> None:
    """Pin ``tokenizer_class`` so AutoTokenizer never swaps in an architecture-specific tokenizer."""
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2))

