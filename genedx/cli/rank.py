"""CLI: `genedx rank` (one case from HPO terms) and `genedx score` (batch scoring to JSONL).

Thin wrappers over :mod:`genedx.rank.ranker`, :mod:`genedx.rank.batch` and :mod:`genedx.predictors`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from genedx.cli.common import console, db, err_console, get_home, progress
from genedx.errors import GenedxError

PROFILES_HELP = "Gene profiles learned from stored real cases: none | train (train split only) | all."


def register(app: typer.Typer) -> None:
    """Add `rank` and `score` to the root app."""
    app.command("rank")(rank_cmd)
    app.command("score")(score_cmd)


_HPO_ID = re.compile(r"^HP:\d{7}(,HP:\d{7})*,?$", re.IGNORECASE)


def expand_absent_args(argv: list[str]) -> list[str]:
    """Let ``--absent`` take several ids, as clinicians write it: ``--absent HP:1 HP:2``.

    Click options take one value each, so without this the second id would silently become a
    *present* term. Ids following ``--absent``/``-a`` are rewritten as repeated options.

    >>> expand_absent_args(["rank", "HP:0000001", "--absent", "HP:0000002", "HP:0000003", "--top", "5"])
    ['rank', 'HP:0000001', '--absent', 'HP:0000002', '--absent', 'HP:0000003', '--top', '5']
    """
    out: list[str] = []
    in_absent = False
    for arg in argv:
        if arg in ("--absent", "-a"):
            in_absent = True
            out.append(arg)
            continue
        if in_absent and _HPO_ID.match(arg):
            if out and out[-1] not in ("--absent", "-a"):
                out.append("--absent")
            out.append(arg)
            continue
        in_absent = False
        out.append(arg)
    return out


def _split_ids(values: List[str] | None) -> list[str]:
    """Terms may be given as separate arguments or comma-separated."""
    return [t.strip() for v in values or [] for t in v.split(",") if t.strip()]


def rank_cmd(
    terms: List[str] = typer.Argument(..., help="Present HPO terms, e.g. HP:0001250 HP:0001263."),
    absent: Optional[List[str]] = typer.Option(None, "--absent", "-a", help="Excluded (absent) HPO terms: --absent HP:1 HP:2, comma-separated, or repeated."),
    top: int = typer.Option(10, "--top", "-n", min=1, help="How many genes to show."),
    profiles: str = typer.Option("none", "--profiles", help=PROFILES_HELP),
    explain: bool = typer.Option(False, "--explain", help="Show every matched / excluded term per gene."),
    json_out: bool = typer.Option(False, "--json", help="Print genes with their evidence as JSON."),
    predictor: str = typer.Option("ranker", "--predictor", "-p",
                                  help="ranker | reranker[:DIR] (the learned re-ranker; uses train profiles unless --profiles all)."),
) -> None:
    """Rank every gene for a case given as HPO terms (present, and --absent ones)."""
    from genedx.rank.ranker import Ranker

    rerank = None
    with db(read_only=True) as con:
        if predictor.strip().startswith("reranker"):
            from genedx.predictors import load_predictor
            rerank = load_predictor(predictor.strip(), con, get_home(), profiles=profiles, explain=True)
            ranker = rerank.ranker
        elif predictor.strip() == "ranker":
            ranker = Ranker.load(con, profiles=profiles)
        else:
            raise GenedxError(f"genedx rank takes --predictor ranker or reranker[:DIR], not {predictor!r} "
                              "(models: genedx score / eval)")
    q = ranker.query(_split_ids(terms), _split_ids(absent))
    genes = rerank.rerank(q, top=top, explain=True) if rerank else ranker.rank_query(q, top=top, explain=True)
    options = rerank.options if rerank else ranker.options
    if json_out:
        console.print_json(json.dumps({"hpo_release": ranker.hpo_release, "options": options,
                                       "notes": q.notes, "genes": [asdict(g) for g in genes]}))
        return
    for note in q.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    if rerank:
        err_console.print(f"order from the learned re-ranker ({rerank.model_dir}) over the ranker's top "
                          f"{rerank.top_k}; scores are its relevance scores; evidence is the ranker's",
                          highlight=False)
    t = Table(title=f"genedx {'re-ranker' if rerank else 'ranker'} (HPO {ranker.hpo_release}, profiles: {ranker.profiles})")
    t.add_column("rank", justify="right")
    t.add_column("gene", style="bold")
    t.add_column("score", justify="right")
    t.add_column("disease")
    t.add_column("key matched terms (patient ~ annotated)")
    for i, g in enumerate(genes, 1):
        ev = g.evidence
        key = "; ".join(_pair(m) for m in ev.matched[:3]) if ev else ""
        if ev and ev.excluded:
            key += f"; [red]against: {', '.join(m.patient_label or m.patient_term for m in ev.excluded[:2])}[/red]"
        t.add_row(str(i), g.symbol, f"{g.score:.2f}", f"{g.disease or ''} {g.disease_name or ''}".strip(), key)
    console.print(t)
    if explain:
        for i, g in enumerate(genes, 1):
            _print_evidence(i, g)


def _pair(m) -> str:
    p, a = m.patient_label or m.patient_term, m.annotated_label or m.annotated_term
    return p if p == a else f"{p} ~ {a}"


def _print_evidence(i: int, g) -> None:
    ev = g.evidence
    t = Table(title=f"{i}. {g.symbol} via {g.disease or ''} {g.disease_name or ''} (score {g.score:.2f})",
              title_justify="left")
    t.add_column("patient term")
    t.add_column("annotated term")
    t.add_column("log10 LR", justify="right")
    for m in ev.matched:
        t.add_row(f"{m.patient_term} {m.patient_label or ''}", f"{m.annotated_term} {m.annotated_label or ''}",
                  f"{m.contribution:+.2f}")
    for tid in ev.unmatched:
        t.add_row(tid, "[dim]no informative match[/dim]", "")
    for m in ev.excluded:
        t.add_row(f"[red]absent[/red] {m.patient_term} {m.patient_label or ''}",
                  f"{m.annotated_term} {m.annotated_label or ''}", f"{m.contribution:+.2f}")
    console.print(t)
    for note in ev.notes:
        console.print(f"  [dim]{note}[/dim]", highlight=False)


def score_cmd(
    inputs: List[Path] = typer.Argument(..., help="Cases: phenopacket files/folders/zips, .jsonl(.gz), genedx exports."),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL, one prediction per case."),
    predictor: str = typer.Option("ranker", "--predictor", "-p", help="ranker | reranker[:DIR] | model:DIR"),
    mode: str = typer.Option("closed", "--mode", help="model:DIR prompt mode: closed | retrieval (ranker candidates)."),
    top: int = typer.Option(10, "--top", "-n", min=1, help="Genes kept per case."),
    profiles: str = typer.Option("train", "--profiles", help=PROFILES_HELP),
    resume: bool = typer.Option(False, "--resume", help="Keep OUT's lines and skip the ids already there."),
    evidence: bool = typer.Option(False, "--evidence", help="Add each gene's evidence to the output lines."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Cases per predictor call (model generation batch)."),
    candidates: str = typer.Option("ranker", "--candidates", help="model:DIR retrieval candidates: ranker | "
                                   "reranker[:DIR] (the learned re-ranker's order)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary (and metrics) as JSON."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Processes scoring in parallel, each loading "
                                "the predictor once; output order and --resume are the same as with one."),
    shard: Optional[str] = typer.Option(None, "--shard", help="Score only shard K of N (K/N, e.g. 2/8): a "
                                        "deterministic split by case id, for fanning a file out over jobs."),
) -> None:
    """Score many cases into a JSONL file; bad records are reported and skipped."""
    from genedx.cases.readers import read_cases
    from genedx.cases.terms import TermMapper
    from genedx.predictors import load_predictor
    from genedx.rank.batch import PredictorSpec, score_cases
    from genedx.rank.shards import parse_shard, select_shard

    home = get_home()
    which = parse_shard(shard) if shard else None
    opts = {"profiles": profiles, "explain": evidence, "mode": mode}
    if candidates != "ranker":
        opts["candidates"] = candidates
    with db(read_only=True) as con:
        if workers > 1:     # each worker process loads its own predictor; this one only maps term ids
            pred = PredictorSpec(predictor, str(home.root), opts)
            mapper = TermMapper.from_db(con)
        else:
            with err_console.status(f"loading predictor {predictor}"):
                pred = load_predictor(predictor, con, home, **opts)
            # The ranker already holds the id map; load it only for other predictors.
            ranker = getattr(pred, "ranker", None)
            mapper = ranker.kb.mapper if ranker is not None else TermMapper.from_db(con)
    with progress() as bar:
        task = bar.add_task(f"scoring{f' shard {which}' if which else ''}"
                            f"{f' ({workers} workers)' if workers > 1 else ''}", total=None)
        report = score_cases(select_shard(read_cases(inputs, require_gene=False), which), pred, out, top=top,
                             resume=resume, mapper=mapper, evidence=evidence, batch_size=batch_size,
                             progress=lambda n: bar.update(task, completed=n), workers=workers)
    metrics = None
    if report.rankings:
        from genedx.grade.metrics import metrics_from_rankings
        metrics = metrics_from_rankings(report.rankings, max_genes=top)
    if json_out:
        d = report.to_dict()
        if metrics is not None:
            d["metrics"] = metrics.to_dict()
        console.print_json(json.dumps(d))
        return
    for p in report.problems:
        err_console.print(f"[yellow]problem:[/yellow] {p}", highlight=False, soft_wrap=True)
    msg = (f"scored {report.scored} case(s) into {report.out}"
           + (f", {report.resumed} already there" if report.resumed else "")
           + (f", {report.skipped} skipped" if report.skipped else "") + f" in {report.seconds:.1f} s"
           + (f"; {len(report.ungraded)} with a true gene unknown to HGNC (not graded)" if report.ungraded else ""))
    console.print(msg, soft_wrap=True, highlight=False)
    if metrics is not None:
        from genedx.grade.metrics import metrics_table
        console.print(metrics_table(metrics, title=f"{predictor} on {metrics.n} case(s) with a known gene "
                                                   f"(top@max = in the first {top})"))
