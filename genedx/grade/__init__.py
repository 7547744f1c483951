"""Grading: parse model outputs, score them with configurable graders, aggregate metrics.

The same code scores GRPO rollouts (:func:`make_reward`), evaluations and batch scoring
(:func:`metrics_from_rankings`, :func:`grade_predictions`, :func:`compute_metrics`) and the app.
See docs/grader.md for the config schema and the curve table.
"""

from genedx.grade.graders import (DEFAULT_REWARD_CONFIG, ConfiguredGrader, Grader, curve_value,
                                  grader_from_config, load_config, register_grader, registered_graders)
from genedx.grade.metrics import (METRIC_LABELS, METRIC_NAMES, Estimate, GradedCase, Metrics, compute_metrics,
                                  grade_genes, grade_output, grade_predictions, metrics_from_rankings,
                                  metrics_table)
from genedx.grade.parse import ParsedAnswer, parse_answer
from genedx.grade.reward import completion_text, make_reward
from genedx.grade.store import save_grades

__all__ = [
    "DEFAULT_REWARD_CONFIG", "METRIC_LABELS", "METRIC_NAMES", "ConfiguredGrader", "Estimate", "GradedCase",
    "Grader", "Metrics", "ParsedAnswer", "completion_text", "compute_metrics", "curve_value", "grade_genes",
    "grade_output", "grade_predictions", "grader_from_config", "load_config", "make_reward", "metrics_from_rankings",
    "metrics_table", "parse_answer", "register_grader", "registered_graders", "save_grades",
]
