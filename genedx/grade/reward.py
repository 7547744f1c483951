"""TRL reward adapter: a grader config becomes ``reward(completions, correct_answer, **kwargs)``.

TRL's ``GRPOTrainer`` calls each reward function with ``prompts``, ``completions`` and every extra
dataset column as keyword arguments; the export's ``correct_answer`` column arrives that way.
Completions are plain strings or, for conversational datasets, lists of chat messages
(``[{"role": "assistant", "content": "..."}]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from genedx.errors import GenedxError
from genedx.grade.graders import DEFAULT_REWARD_CONFIG, grader_from_config

RewardFunc = Callable[..., list[float]]


def completion_text(completion: Any) -> str:
    """The text of one completion: a string, or the assistant messages of a chat completion.

    >>> completion_text([{"role": "assistant", "content": "<answer>SCN1A</answer>"}])
    '<answer>SCN1A</answer>'
    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "TBX5"}]}])
    'TBX5'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)):
        parts = []
        for msg in completion:
            if not isinstance(msg, dict) or msg.get("role", "assistant") != "assistant":
                continue
            content = msg.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):  # multimodal-style content parts
                parts.extend(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        return "\n".join(parts)
    return ""


def make_reward(config: dict[str, Any] | str | Path | None = None) -> RewardFunc:
    """A TRL reward function grading each completion against its ``correct_answer``.

    Default config: ``multi`` of ``ranked_gene`` (weight 0.9) and ``format`` (weight 0.1).

    >>> reward = make_reward()
    >>> reward(["<think>fever</think><answer>SCN1A</answer>", "TBX5, SCN1A"], correct_answer=["SCN1A", "SCN1A"])
    [1.0, 0.63]
    >>> reward.__name__
    'genedx_reward'
    """
    grader = grader_from_config(DEFAULT_REWARD_CONFIG if config is None else config)

    def reward(completions: Sequence[Any], correct_answer: Sequence[str] | str | None = None,
               **kwargs: Any) -> list[float]:
        if correct_answer is None:
            raise GenedxError("the reward needs a `correct_answer` column in the training dataset "
                              "(export cases with `genedx data export`)")
        answers = [correct_answer] * len(completions) if isinstance(correct_answer, str) else list(correct_answer)
        if len(answers) != len(completions):
            raise GenedxError(f"reward got {len(completions)} completions but {len(answers)} correct answers")
        return [round(grader(completion_text(c), a), 10) for c, a in zip(completions, answers)]

    reward.__name__ = grader.name  # TRL logs rewards/<__name__>/mean
    reward.__qualname__ = grader.name
    reward.grader = grader  # type: ignore[attr-defined]
    return reward
