"""Prompts for the model, in two modes, and the SFT target built from the ranker's explanation.

* ``closed``: the case report and the instructions only (as in the public RFT demo);
* ``retrieval``: also the phenotype ranker's top-K candidate genes with their best-matching
  annotated phenotypes, so the model re-ranks candidates instead of recalling 5,000 genes.

The text itself comes from :mod:`genedx.cases.export` (``rft_record``); this module only adds the
candidate block (as ``extra_context``) and the training target. Export, SFT, RFT and the model
predictor all build prompts here, so a model always sees the prompt it was trained on. The candidate block and
the reasoning paragraph are hand-written text templates (no library writes clinical prose from
ranker evidence).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import duckdb

from genedx.answer_format import MAX_GENES, format_answer
from genedx.cases.export import rft_record
from genedx.cases.model import Case
from genedx.errors import GenedxError
from genedx.predict import GeneScore

MODES = ("closed", "retrieval")
# The knobs that shape a model's prompt. Training writes them into the model dir (genedx_model.json,
# key "prompt") and the model predictor and RFT read them back, so a model is always asked in the
# layout it was trained on without the user repeating the training recipe's values.
PROMPT_KEYS = ("top_k", "with_ids", "terms_per_gene", "max_present", "max_absent", "layout")
LAYOUTS = ("full", "compact")
# The layout a converted pretrained base starts with (genedx model init --from): compact, so a GRPO step
# stays affordable on 2 cores (a retrieval prompt of ~300 tokens through SmolLM2's chat template
# instead of ~550; bench/RESULTS.md, "Pretrained base").
DEFAULT_PROMPT_LAYOUT: dict[str, Any] = {"layout": "compact", "top_k": 6, "with_ids": False, "terms_per_gene": 2,
                                         "max_present": 10, "max_absent": 4}
COMPACT_INSTRUCTIONS = ("Rank the candidate genes, best fit first. Reply as <think>one short reason</think>"
                        "<answer>GENE1, GENE2, ...</answer>")
COMPACT_INSTRUCTIONS_CLOSED = ("Name the genes most likely to cause this disease, best first (up to 10 HGNC "
                               "symbols). Reply as <think>one short reason</think><answer>GENE1, GENE2, ...</answer>")
CANDIDATES_HEADER = "Candidate genes from the phenotype ranker, best first (the causal gene may be missing):"


def load_labels(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """HPO id -> label of the built knowledge base."""
    from genedx.cases.terms import TermMapper
    return TermMapper.from_db(con).labels


def model_prompt_options(model_dir: str | Path | None) -> dict[str, Any]:
    """The prompt knobs a model was trained with (empty for models genedx did not train). An adapter-only
    dir (a LoRA run's ``adapter/``) carries no ``genedx_model.json``: its base model's knobs apply, so the
    adapter is prompted exactly as it was trained."""
    from genedx.model.load import read_model_meta, resolve_model_dirs
    meta = read_model_meta(model_dir)
    if not meta and model_dir is not None:
        try:
            base, adapter = resolve_model_dirs(model_dir)
        except GenedxError:
            base, adapter = None, None
        if adapter is not None:
            meta = read_model_meta(base)
    saved = meta.get("prompt") or {}
    return {k: saved[k] for k in PROMPT_KEYS if k in saved}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise GenedxError(f"unknown prompt mode {mode!r} (choose {' or '.join(MODES)})")
    return mode


def _match_labels(matches, labels: Mapping[str, str], annotated: bool, n: int) -> list[str]:
    """Labels of the ``n`` strongest term matches, strongest first, without repeats."""
    out: list[str] = []
    for m in sorted(matches, key=lambda m: -abs(m.contribution)):
        term = m.annotated_term if annotated else m.patient_term
        label = (m.annotated_label if annotated else m.patient_label) or labels.get(term) or term
        if label not in out:
            out.append(label)
        if len(out) == n:
            break
    return out


def short_disease(name: str | None, words: int = 6) -> str | None:
    """A disease name cut at its first comma and to ``words`` words (prompt length, not meaning).

    >>> short_disease("Spondyloepimetaphyseal dysplasia with joint laxity, type 1, with or without fractures")
    'Spondyloepimetaphyseal dysplasia with joint laxity'
    """
    if not name:
        return name
    return " ".join(name.split(",")[0].split()[:words])


def candidate_block(candidates: Sequence[GeneScore], labels: Mapping[str, str], terms_per_gene: int = 3,
                    header: str = CANDIDATES_HEADER, compact: bool = False) -> str:
    """The retrieval-mode context: one line per candidate gene with its disease and key phenotypes.

    >>> from genedx.predict import Evidence, TermMatch
    >>> ev = Evidence("OMIM:1", "Dravet syndrome", matched=[TermMatch("HP:1", "HP:2", 2.0, "Seizure", "Febrile seizure")])
    >>> print(candidate_block([GeneScore("SCN1A", 3.1, "OMIM:1", "Dravet syndrome", ev)], {}))
    Candidate genes from the phenotype ranker, best first (the causal gene may be missing):
    1. SCN1A (Dravet syndrome): Febrile seizure

    The compact form (pretrained bases) shortens disease names and leaves out the "absent but expected"
    term: in phenopacket-store absent terms are mostly features of the patient's own disease (a curation
    habit a clinician's note does not carry), so showing them per candidate teaches a shortcut.
    """
    lines = [header]
    for i, g in enumerate(candidates, 1):
        ev = g.evidence
        name = short_disease(g.disease_name) if compact else g.disease_name
        disease = f" ({name})" if name else ""
        line = f"{i}. {g.symbol}{disease}"
        if ev is not None:
            matched = _match_labels(ev.matched, labels, annotated=True, n=terms_per_gene)
            if matched:
                line += ": " + ", ".join(matched)
            against = [] if compact else _match_labels(ev.excluded, labels, annotated=False, n=1)
            if against:
                line += f"; absent but expected: {against[0]}"
        lines.append(line)
    return "\n".join(lines)


def reasoning_for(case: Case, true_gene: GeneScore | None, others: Sequence[str], labels: Mapping[str, str],
                  max_terms: int = 3, compact: bool = False) -> str:
    """A short reasoning paragraph built from the ranker's explanation for the true gene.

    Matched phenotypes (strongest first), excluded phenotypes that count against it, other candidates.
    ``compact``: one sentence (matched phenotypes and the disease only), so answers stay short to
    generate; it leaves out the absent-term habit (see :func:`candidate_block`).
    """
    gene = case.gene or "the causal gene"
    ev = true_gene.evidence if true_gene is not None else None
    if ev is not None and ev.matched:
        found = _match_labels(ev.matched, labels, annotated=False, n=max_terms)
        dname = None if compact else (ev.disease_name or true_gene.disease_name)   # compact: named in the prompt
        disease = f" ({dname})" if dname else ""
        text = f"{', '.join(found)} fit {gene}{disease}."
        if compact:
            return text
        against = _match_labels(ev.excluded, labels, annotated=False, n=1)
        if against:
            text += f" {against[0]} is absent although often seen there."
    else:
        found = [labels.get(t, t) for t in case.present[:max_terms]]
        text = f"{', '.join(found)} point to {gene}." if found else f"The findings point to {gene}."
        if compact:
            return text
    if others:
        text += f" Other candidates: {', '.join(others[:3])}."
    return text


@dataclass
class PromptBuilder:
    """Builds prompts (and SFT targets) for cases in one mode.

    ``ranker`` (a :class:`genedx.rank.ranker.Ranker`) is needed for ``retrieval`` mode and for SFT
    targets; ``top_k`` candidates are listed in retrieval prompts; ``with_ids`` adds HPO ids to the
    case report (off by default: labels are whole tokens for our own tokenizer, ids only cost length).
    ``max_present`` / ``max_absent`` cap the terms listed in the case report (case order; None: all):
    a few published cases list 50+ absent terms, which would push a small model's answer past its
    context. The ranker behind retrieval candidates and targets always sees every term.
    ``reranker`` (a :class:`genedx.rank.reranker.RerankerPredictor`, optional): retrieval candidates
    come in the learned re-ranker's order instead of the ranker's (the best candidate list we have),
    with the ranker's evidence per gene; ``ranker`` must then be the re-ranker's own ranker.
    """

    labels: Mapping[str, str]
    mode: str = "closed"
    ranker: Any = None
    top_k: int = 10
    with_ids: bool = False
    terms_per_gene: int = 3
    max_genes: int = MAX_GENES
    max_present: int | None = None
    max_absent: int | None = None
    layout: str = "full"
    reranker: Any = None
    _cache: dict[str, tuple[Any, list[GeneScore]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if self.layout not in LAYOUTS:
            raise GenedxError(f"prompt layout must be one of {', '.join(LAYOUTS)}, not {self.layout!r}")
        for knob in ("top_k", "terms_per_gene", "max_present", "max_absent"):
            v = getattr(self, knob)
            if v is not None and v < 1:
                raise GenedxError(f"prompt option {knob} must be at least 1, not {v}")
        if self.mode == "retrieval" and self.ranker is None:
            raise GenedxError("retrieval mode needs the phenotype ranker (pass ranker=...)")
        if self.reranker is not None and self.ranker is not self.reranker.ranker:
            raise GenedxError("prompt candidates from a re-ranker need that re-ranker's own ranker (ranker=rr.ranker)")

    @classmethod
    def from_db(cls, con: duckdb.DuckDBPyConnection, mode: str = "closed", profiles: str = "none",
                need_ranker: bool = False, **kw: Any) -> "PromptBuilder":
        ranker = None
        if check_mode(mode) == "retrieval" or need_ranker:
            from genedx.rank.ranker import Ranker
            ranker = Ranker.load(con, profiles=profiles)
        return cls(labels=load_labels(con), mode=mode, ranker=ranker, **kw)

    def ranked(self, case: Case, top: int | None = None) -> list[GeneScore]:
        """The candidates of a case, explained: the ranker's, or the re-ranker's order when one is set
        (the last case is cached: prompt and target share it)."""
        n = max(top or self.top_k, self.top_k)
        hit = self._cache.get(case.id)
        if hit is None or len(hit[1]) < n:
            try:
                q = self.ranker.query(case.present, case.absent)
            except GenedxError as e:
                raise GenedxError(f"case {case.id}: {e}") from None
            genes = (self.reranker.rerank(q, top=n, explain=True) if self.reranker is not None
                     else self.ranker.rank_query(q, top=n, explain=True))
            hit = (q, genes)
            self._cache.clear()
            self._cache[case.id] = hit
        return hit[1][:n]

    def explain_gene(self, case: Case, gene: str) -> GeneScore | None:
        """The ranker's explanation for one gene, wherever it ranks (None when the ranker lacks it)."""
        for g in self.ranked(case):
            if g.symbol == gene:
                return g
        # Beyond the cached top genes: the ranker scores and explains any one gene itself.
        g = self.ranker.score_gene(self._cache[case.id][0], gene)
        return g if g is not None and g.score > float("-inf") else None

    def context(self, case: Case) -> str | None:
        if self.mode != "retrieval":
            return None
        if self.layout == "compact":
            return candidate_block(self.ranked(case), self.labels, self.terms_per_gene,
                                   header="Candidate genes (ranker order; the causal gene may be missing):",
                                   compact=True)
        return candidate_block(self.ranked(case), self.labels, self.terms_per_gene)

    def compact_report(self, case: Case) -> str:
        """The case report on three lines (labels joined by '; '): about half the tokens of the full one."""
        from genedx.cases.export import age_in_words
        sex = case.sex if case.sex in ("female", "male") else "sex not reported"
        age = age_in_words(case.age)

        def terms(ids: Sequence[str]) -> str:
            shown = [self.labels.get(t) or t for t in ids]
            if self.with_ids:
                shown = [f"{lab} ({t})" if lab != t else t for lab, t in zip(shown, ids)]
            return "; ".join(shown) if shown else "none reported"
        return (f"Patient: {sex}, {'age ' + age if age else 'age not reported'}.\n"
                f"Present: {terms(case.present)}.\nAbsent: {terms(case.absent)}.")

    def record(self, case: Case) -> dict:
        """The RFT/TRL record (``prompt`` as chat messages) with the mode's context."""
        shown = case
        if self.max_present is not None or self.max_absent is not None:
            shown = replace(case, present=list(case.present[:self.max_present]),
                            absent=list(case.absent[:self.max_absent]))
        ctx = self.context(case)
        rec = rft_record(shown, self.labels, extra_context=ctx, max_genes=self.max_genes, with_ids=self.with_ids)
        if self.layout == "compact":
            report = self.compact_report(shown)
            instr = COMPACT_INSTRUCTIONS if self.mode == "retrieval" else COMPACT_INSTRUCTIONS_CLOSED
            rec["prompt"] = [{"role": "user", "content": report + "\n\n" + (ctx + "\n\n" if ctx else "") + instr}]
            rec["case_report"], rec["instructions"] = report, instr
        rec["present"], rec["absent"] = list(case.present), list(case.absent)
        rec["mode"] = self.mode
        return rec

    def options(self) -> dict[str, Any]:
        """The prompt knobs (``PROMPT_KEYS``) to save with a model trained on these prompts."""
        return {k: getattr(self, k) for k in PROMPT_KEYS}

    def messages(self, case: Case) -> list[dict[str, str]]:
        return self.record(case)["prompt"]

    def target(self, case: Case, answer_genes: int = 10) -> str:
        """The SFT completion: reasoning from the ranker's explanation for the true gene, then the
        answer in the documented format (true gene first, then the ranker's other top genes)."""
        if not case.gene:
            raise GenedxError(f"case {case.id}: no causal gene, cannot build a training target")
        if self.ranker is None:
            raise GenedxError("SFT targets need the phenotype ranker (PromptBuilder(..., ranker=...))")
        ranked = self.ranked(case, top=max(answer_genes, self.top_k))
        true = self.explain_gene(case, case.gene)
        others = [g.symbol for g in ranked if g.symbol != case.gene]
        genes = [case.gene] + others[: answer_genes - 1]
        return format_answer(genes, reasoning_for(case, true, others, self.labels,
                                                  max_terms=2 if self.layout == "compact" else 3,
                                                  compact=self.layout == "compact"))


def build_prompt(case: Case, labels: Mapping[str, str], mode: str = "closed", ranker: Any = None,
                 top_k: int = 10, with_ids: bool = False) -> str:
    """The user message of a case (the prompt text before the chat template)."""
    return PromptBuilder(labels, mode, ranker, top_k, with_ids).messages(case)[0]["content"]
