"""The RFT record: a case as a readable case report + instructions + correct answer (one JSONL line).

The record is usable by TRL directly (``prompt`` in conversational form; the extra columns reach
reward functions as keyword arguments) and is close to the OpenAI RFT format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Mapping

import duckdb

from genedx.answer_format import MAX_GENES, format_instructions
from genedx.cases.model import Case
from genedx.cases.store import load_cases
from genedx.cases.terms import TermMapper
from genedx.errors import GenedxError

_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T.*)?$")


def age_in_words(age: str | None) -> str | None:
    """ISO 8601 duration -> words.

    >>> age_in_words("P2Y6M"), age_in_words("P3M"), age_in_words("P1Y"), age_in_words("P0D")
    ('2 years 6 months', '3 months', '1 year', 'newborn')
    """
    if not age:
        return None
    m = _DURATION.match(age.strip())
    if not m or not any(m.groups()[:4]):
        return age  # not a duration we understand: show it as written
    parts = []
    for value, unit in zip(m.groups()[:4], ("year", "month", "week", "day")):
        if value and int(value):
            n = int(value)
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(parts) if parts else "newborn"


def _term_line(term: str, labels: Mapping[str, str], with_ids: bool) -> str:
    label = labels.get(term) or term
    return f"- {label} ({term})" if with_ids and label != term else f"- {label}"


def case_report(case: Case, labels: Mapping[str, str], with_ids: bool = True) -> str:
    """A clinician-style note: basic information, symptoms present, symptoms absent (HPO labels).

    >>> print(case_report(Case("c1", present=["HP:1"], sex="female", age="P3Y"), {"HP:1": "Seizure"}))
    Basic information: female, age 3 years.
    <BLANKLINE>
    Symptoms present:
    - Seizure (HP:1)
    <BLANKLINE>
    Symptoms absent:
    - none reported
    """
    sex = case.sex if case.sex in ("female", "male") else ("sex other" if case.sex == "other" else "sex not reported")
    age = age_in_words(case.age)
    basic = f"Basic information: {sex}, {'age ' + age if age else 'age not reported'}."
    present = [_term_line(t, labels, with_ids) for t in case.present] or ["- none reported"]
    absent = [_term_line(t, labels, with_ids) for t in case.absent] or ["- none reported"]
    return "\n".join([basic, "", "Symptoms present:", *present, "", "Symptoms absent:", *absent])


def instructions(max_genes: int = MAX_GENES) -> str:
    """The task for the model, ending in the one documented answer format."""
    return ("You are a clinical geneticist. Based on the case report above, list the genes most likely to "
            "cause this patient's rare disease. " + format_instructions(max_genes))


def rft_record(case: Case, labels: Mapping[str, str], extra_context: str | None = None,
               max_genes: int = MAX_GENES, with_ids: bool = True) -> dict:
    """One JSONL record: ``id``, ``prompt`` (chat messages), ``case_report``, ``instructions``,
    ``correct_answer`` (the approved HGNC symbol) and the case's fields as extra columns.

    ``extra_context`` (e.g. the ranker's candidate genes in retrieval mode) goes between the report
    and the instructions.
    """
    report = case_report(case, labels, with_ids)
    instr = instructions(max_genes)
    content = report + "\n\n" + (extra_context.strip() + "\n\n" if extra_context else "") + instr
    return {"id": case.id, "prompt": [{"role": "user", "content": content}], "case_report": report,
            "instructions": instr, "correct_answer": case.gene, "present": list(case.present),
            "absent": list(case.absent), "sex": case.sex, "age": case.age, "source": case.source,
            "split": case.split, "disease": case.disease}


def export_split(con: duckdb.DuckDBPyConnection, split: str | None, out: str | Path,
                 source: str | None = None, extra_context: Callable[[Case], str | None] | None = None,
                 max_genes: int = MAX_GENES, with_ids: bool = True, limit: int | None = None) -> int:
    """Write the RFT records of one stored split (``None``: all cases) to ``out``; returns the count.

    Written to a temporary file first and renamed, so a failure never leaves a half-written file.
    """
    labels = TermMapper.from_db(con).labels
    cases = load_cases(con, split=split, source=source)
    if limit is not None:
        cases = cases[:limit]
    if not cases:
        stored = [s for (s,) in con.execute("SELECT DISTINCT split FROM case_split ORDER BY 1").fetchall()]
        raise GenedxError(f"no cases to export in split {split or 'all'!r}"
                          + (f" (source {source!r})" if source else "")
                          + (f"; stored splits: {', '.join(stored)}" if stored else
                             "; no split stored yet: run `genedx data split`"))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "w", encoding="utf-8") as f:
        for c in cases:
            ctx = extra_context(c) if extra_context else None
            f.write(json.dumps(rft_record(c, labels, ctx, max_genes, with_ids), ensure_ascii=False) + "\n")
    tmp.replace(out)
    return len(cases)
