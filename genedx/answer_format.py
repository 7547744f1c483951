"""The one answer format genedx asks models for, used by the export's instructions, SFT targets,
the model predictor and the grader's parser.

A completion is brief reasoning inside ``<think>...</think>`` followed by the ranked genes inside
``<answer>...</answer>`` as HGNC symbols separated by commas, most likely first::

    <think>Seizures from infancy with fever sensitivity point to a sodium-channel epilepsy.</think>
    <answer>SCN1A, SCN2A, PCDH19</answer>
"""

from __future__ import annotations

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
MAX_GENES = 20  # default cut of a ranked list (grader and instructions agree)

FORMAT_DESCRIPTION = (
    f"First think briefly inside {THINK_OPEN}...{THINK_CLOSE}: which phenotypes are most specific, and "
    f"which genes and diseases explain them, including the absent symptoms. Then give your final answer "
    f"inside {ANSWER_OPEN}...{ANSWER_CLOSE} as a comma-separated list of at most {{max_genes}} HGNC gene "
    f"symbols, most likely first, for example {ANSWER_OPEN}SCN1A, SCN2A, PCDH19{ANSWER_CLOSE}."
)


def format_answer(genes: list[str], reasoning: str | None = None) -> str:
    """A completion in the documented format.

    >>> format_answer(["SCN1A", "SCN2A"], "Febrile seizures.")
    '<think>Febrile seizures.</think>\\n<answer>SCN1A, SCN2A</answer>'
    """
    answer = f"{ANSWER_OPEN}{', '.join(genes)}{ANSWER_CLOSE}"
    return f"{THINK_OPEN}{reasoning}{THINK_CLOSE}\n{answer}" if reasoning is not None else answer


def format_instructions(max_genes: int = MAX_GENES) -> str:
    return FORMAT_DESCRIPTION.format(max_genes=max_genes)
