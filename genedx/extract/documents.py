"""Inputs of `genedx extract`: one text (a file or stdin), or a JSONL of ``{"id", "text"}`` lines,
and the JSON answer per document."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from genedx.errors import GenedxError
from genedx.extract.text import ExtractedTerm, TermExtractor


@dataclass
class TextRecord:
    id: str | None
    text: str | None
    problem: str | None = None   # set when the line could not be used (the text is then None)


def read_text_input(path: str) -> str:
    """The whole text of a file, or of stdin for ``-``."""
    if path == "-":
        return sys.stdin.read()
    p = Path(path)
    if not p.is_file():
        raise GenedxError(f"{path}: no such file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise GenedxError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def json_object_lines(lines: Iterable[str], origin: str) -> Iterator[tuple[int, str, dict | None, str | None]]:
    """``(line number, "origin:line", object, None)`` per non-blank JSONL line, or ``(n, where, None,
    problem)`` when the line is not valid JSON or not a JSON object (shared by the free-text readers)."""
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{origin}:{n}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            yield n, where, None, f"malformed JSON ({e.msg})"
            continue
        if not isinstance(obj, dict):
            yield n, where, None, "expected a JSON object"
            continue
        yield n, where, obj, None


def read_jsonl_records(lines: Iterator[str], origin: str) -> Iterator[TextRecord]:
    """``{"id", "text"}`` records; a bad line comes back with ``problem`` naming the line and why."""
    for n, where, obj, problem in json_object_lines(lines, origin):
        if obj is None:
            yield TextRecord(None, None, f"{where}: {problem}")
            continue
        rid, text = obj.get("id"), obj.get("text")
        if rid is None or not isinstance(text, str):
            yield TextRecord(str(rid) if rid is not None else None, None,
                             f"{where}: {'record ' + str(rid) + ': ' if rid is not None else ''}"
                             "needs an \"id\" and a string \"text\"")
            continue
        yield TextRecord(str(rid), text)


def terms_json(terms: list[ExtractedTerm]) -> list[dict]:
    return [t.to_dict() for t in terms]


def answer_line(extractor: TermExtractor, record: TextRecord) -> str:
    """The one JSON line answering a record: ``{"id", "terms": [...]}``."""
    return json.dumps({"id": record.id, "terms": terms_json(extractor.extract(record.text or ""))},
                      ensure_ascii=False)
