"""Write one benchmark's section of bench/RESULTS.md, keeping the rest of the file.

A script's section starts at its ``## `` heading and runs to the next ``## `` heading. Re-running the
script replaces the section's measured part; hand-written notes below the script's ``notes_mark``
(tuning log, known limits) survive the re-run.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(head: str, text: str, notes_mark: str, path: Path = RESULTS) -> None:
    """Replace the section that starts with ``head`` by ``text`` (append it when there is none)."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    if head in old:
        start = old.index(head)
        nxt = old.find("\n## ", start + len(head))
        section = old[start:nxt if nxt >= 0 else len(old)]
        notes = section[section.index(notes_mark):].rstrip() + "\n" if notes_mark in section else ""
        old = old[:start] + text.rstrip() + "\n" + ("\n" + notes if notes else "") + (old[nxt:] if nxt >= 0 else "")
    else:
        old = old.rstrip() + "\n\n" + text.rstrip() + "\n"
    path.write_text(old)
