"""`genedx extract FILE|- [--json]`: HPO terms (present / absent, with spans) in free text.

A ``.jsonl`` file of ``{"id", "text"}`` lines is answered by one ``{"id", "terms": [...]}`` line per
record on stdout; a bad line is reported on stderr (file, line, problem) and skipped.
"""

from __future__ import annotations

import json
import sys

import typer
from rich.table import Table

from genedx.cli.common import console, db, err_console


def register(app: typer.Typer) -> None:
    app.command("extract")(extract_cmd)


def extract_cmd(path: str = typer.Argument(..., help="A text file, '-' for stdin, or a .jsonl of {\"id\", \"text\"} lines."),
                json_out: bool = typer.Option(False, "--json", help="Print the terms as JSON."),
                jsonl: bool = typer.Option(False, "--jsonl", help="Read the input as JSONL (implied by a .jsonl name).")) -> None:
    """Recognise HPO terms in a clinical note or case report: id, label, present/absent, span."""
    from genedx.extract.documents import answer_line, read_jsonl_records, read_text_input, terms_json
    from genedx.extract.text import TermExtractor
    from genedx.home import require_kb

    with db(read_only=True) as con:
        require_kb(con)
        extractor = TermExtractor.from_db(con)
    if jsonl or path.endswith(".jsonl"):
        lines = sys.stdin if path == "-" else _open_lines(path)
        bad = 0
        for rec in read_jsonl_records(lines, "stdin" if path == "-" else path):
            if rec.problem:
                bad += 1
                err_console.print(f"[yellow]warning:[/yellow] {rec.problem}; skipped", highlight=False, soft_wrap=True)
                continue
            sys.stdout.write(answer_line(extractor, rec) + "\n")
        sys.stdout.flush()
        if bad:
            err_console.print(f"{bad} bad record(s) skipped", highlight=False)
        return
    terms = extractor.extract(read_text_input(path))
    if json_out:
        console.print_json(json.dumps({"terms": terms_json(terms)}))
        return
    t = Table(title=f"{len(terms)} HPO terms")
    for c in ("id", "label", "status", "text", "span"):
        t.add_column(c)
    for term in terms:
        status = "[red]absent[/red]" if term.negated else "[green]present[/green]"
        t.add_row(term.id, term.label, status, term.text, f"{term.start}-{term.end}")
    console.print(t)


def _open_lines(path: str):
    from pathlib import Path

    from genedx.errors import GenedxError

    p = Path(path)
    if not p.is_file():
        raise GenedxError(f"{path}: no such file")
    with open(p, encoding="utf-8", errors="replace") as f:
        yield from f
