"""Runs stored in DuckDB: create / finish a run, record metrics per step, list, show and plot them.

A *run* is one row of the ``run`` table (kind ``rft``, ``sft``, ``eval``, ...); its numbers are rows of
``metric`` (run_id, step, split, name, value, lo, hi): ``split='validation'`` holds the graded greedy
generations (top1, top5, topmax, mean_grade, well_formed with 95% intervals), ``split='train'`` the
trainer's logs (reward, kl, frac_reward_zero_std, loss, step_seconds). Sample completions go to
``completion_sample``.

Writers open the database only for the moment of a write (:func:`write`), so ``genedx runs list``
from another shell works while a training run is going (DuckDB allows one writing process at a time).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import duckdb
from rich.table import Table

from genedx.errors import GenedxError
from genedx.home import Home, connect, transaction

T = TypeVar("T")

# Validation metrics shown by `runs list/show` and plotted by default, in display order.
VALIDATION_METRICS = ("top1", "top5", "topmax", "mean_grade", "well_formed")
# Recipe knobs shown by `runs show` (the full recipe is in the run's config and the model card).
SUMMARY_KNOBS = ("model", "adapter", "use_lora", "mode", "n_train", "n_validation", "train_file", "batch_size",
                 "num_generations", "learning_rate_multiplier", "learning_rate", "max_steps", "n_epochs", "beta",
                 "temperature", "max_completion_length", "seed")
TRAIN_METRICS = ("reward", "reward_std", "frac_reward_zero_std", "kl", "loss", "completion_length", "step_seconds")


def new_run_id(kind: str) -> str:
    """A sortable, unique run id such as ``rft-20261125-111500-3f2a``."""
    return f"{kind}-{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"


def write(home: Home, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Run ``fn(con)`` in one transaction on a short-lived connection (rolled back on error)."""
    con = connect(home)
    try:
        with transaction(con):
            return fn(con)
    finally:
        con.close()


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, kind: str, name: str, config: dict[str, Any],
              hpo_release: str | None = None, model_dir: str | None = None, predictor: str | None = None) -> None:
    """Insert (or, on resume, mark running again) a run row."""
    exists = con.execute("SELECT 1 FROM run WHERE id = ?", [run_id]).fetchone()
    if exists:
        con.execute("UPDATE run SET status = 'running', finished_at = NULL WHERE id = ?", [run_id])
        return
    con.execute(
        "INSERT INTO run (id, kind, name, predictor, config, hpo_release, model_dir, status) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'running')",
        [run_id, kind, name, predictor, json.dumps(config, default=str), hpo_release, model_dir])


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, status: str = "done", model_dir: str | None = None) -> None:
    con.execute("UPDATE run SET status = ?, finished_at = current_timestamp, model_dir = coalesce(?, model_dir) "
                "WHERE id = ?", [status, model_dir, run_id])


def record_metrics(con: duckdb.DuckDBPyConnection, run_id: str, step: int, split: str,
                   values: dict[str, float | tuple[float, float | None, float | None] | None]) -> None:
    """Store one step's metrics; a value is a number or ``(value, lo, hi)``; ``None`` values are skipped.

    Re-recording a (run, step, split, name) replaces the old row, so a resumed run never duplicates.
    """
    for name, v in values.items():
        if v is None:
            continue
        value, lo, hi = v if isinstance(v, tuple) else (v, None, None)
        con.execute("DELETE FROM metric WHERE run_id = ? AND step = ? AND split = ? AND name = ?",
                    [run_id, step, split, name])
        con.execute("INSERT INTO metric VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [run_id, step, split, name, float(value), lo, hi])


def drop_metrics_after(con: duckdb.DuckDBPyConnection, run_id: str, step: int) -> None:
    """On resume from a checkpoint at ``step``: forget what the interrupted run logged after it."""
    con.execute("DELETE FROM metric WHERE run_id = ? AND step > ?", [run_id, step])
    con.execute("DELETE FROM completion_sample WHERE run_id = ? AND step > ?", [run_id, step])


def record_samples(con: duckdb.DuckDBPyConnection, run_id: str, step: int, split: str,
                   samples: Iterable[dict[str, Any]]) -> None:
    """Store sample completions: dicts with case_id, prompt, completion, correct_answer, reward."""
    for s in samples:
        con.execute("INSERT INTO completion_sample VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_id, step, split, s.get("case_id"), s.get("prompt"), s.get("completion"),
                     s.get("correct_answer"), s.get("reward")])


@dataclass
class RunInfo:
    id: str
    kind: str | None
    name: str | None
    status: str | None
    started_at: Any
    finished_at: Any
    model_dir: str | None
    config: dict[str, Any] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)   # latest validation metrics
    last_step: int | None = None

    def summary(self) -> Table:
        t = Table(title=f"run {self.id}", show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value")
        for k, v in (("kind", self.kind), ("name", self.name), ("status", self.status),
                     ("started", self.started_at), ("finished", self.finished_at), ("output model", self.model_dir)):
            t.add_row(k, "" if v is None else str(v))
        for k in SUMMARY_KNOBS:
            v = self.config.get(k)
            if v not in (None, "", [], {}):
                t.add_row("start model" if k == "model" else k, json.dumps(v) if isinstance(v, (dict, list)) else str(v))
        return t


def _run_from_row(con: duckdb.DuckDBPyConnection, row: Sequence[Any]) -> RunInfo:
    run_id, kind, name, status, started, finished, model_dir, config = row
    last_step_row = con.execute("SELECT max(step) FROM metric WHERE run_id = ? AND split = 'validation'",
                                [run_id]).fetchone()
    last_step = last_step_row[0] if last_step_row else None
    last: dict[str, float] = {}
    if last_step is not None:
        last = dict(con.execute("SELECT name, value FROM metric WHERE run_id = ? AND split = 'validation' AND step = ?",
                                [run_id, last_step]).fetchall())
    try:
        cfg = json.loads(config) if isinstance(config, str) else (config or {})
    except json.JSONDecodeError:
        cfg = {}
    return RunInfo(run_id, kind, name, status, started, finished, model_dir, cfg if isinstance(cfg, dict) else {},
                   last, last_step)


_RUN_COLS = "id, kind, name, status, started_at, finished_at, model_dir, config"


def list_runs(con: duckdb.DuckDBPyConnection, kind: str | None = None, limit: int = 50) -> list[RunInfo]:
    """Runs, newest first."""
    sql = f"SELECT {_RUN_COLS} FROM run" + (" WHERE kind = ?" if kind else "") + " ORDER BY started_at DESC, id DESC LIMIT ?"
    rows = con.execute(sql, ([kind] if kind else []) + [limit]).fetchall()
    return [_run_from_row(con, r) for r in rows]


def get_run(con: duckdb.DuckDBPyConnection, run_id: str) -> RunInfo:
    """One run by id, unique id prefix, or name (the newest run of that name); a clear error otherwise."""
    rows = con.execute(f"SELECT {_RUN_COLS} FROM run WHERE id = ?", [run_id]).fetchall()
    if not rows:
        rows = con.execute(f"SELECT {_RUN_COLS} FROM run WHERE starts_with(id, ?) ORDER BY id", [run_id]).fetchall()
    if not rows:
        rows = con.execute(f"SELECT {_RUN_COLS} FROM run WHERE name = ? ORDER BY started_at DESC, id DESC LIMIT 1",
                           [run_id]).fetchall()
    if not rows:
        raise GenedxError(f"no run {run_id!r} in the database (see `genedx runs list`)")
    if len(rows) > 1:
        raise GenedxError(f"run prefix {run_id!r} is ambiguous: {', '.join(r[0] for r in rows[:5])}")
    return _run_from_row(con, rows[0])


def run_metrics(con: duckdb.DuckDBPyConnection, run_id: str, split: str | None = None) -> dict[str, dict[int, tuple]]:
    """``{split/name: {step: (value, lo, hi)}}`` of one run."""
    sql = "SELECT split, name, step, value, lo, hi FROM metric WHERE run_id = ?" + (" AND split = ?" if split else "")
    out: dict[str, dict[int, tuple]] = {}
    for sp, name, step, value, lo, hi in con.execute(sql + " ORDER BY step", [run_id] + ([split] if split else [])).fetchall():
        out.setdefault(f"{sp}/{name}", {})[int(step if step is not None else 0)] = (value, lo, hi)
    return out


def _fmt(v: tuple | None, pct: bool) -> str:
    if v is None or v[0] is None:
        return ""
    value, lo, hi = v
    if pct:
        s = f"{100 * value:.1f}"
        return s + (f" [{100 * lo:.0f}-{100 * hi:.0f}]" if lo is not None and hi is not None else "")
    return f"{value:.3g}"


_PCT = {"top1", "top5", "top10", "topmax", "mean_grade", "well_formed", "mrr"}


_SHORT = {"top1": "top@1", "top5": "top@5", "topmax": "top@max", "mean_grade": "grade", "well_formed": "formed",
          "reward": "reward", "frac_reward_zero_std": "0-spread", "kl": "kl", "step_seconds": "step s"}


def run_metrics_table(con: duckdb.DuckDBPyConnection, run_id: str) -> Table:
    """Per-step table: validation metrics (%, 95% interval) and the main training signals of that step."""
    m = run_metrics(con, run_id)
    val_names = [n for n in VALIDATION_METRICS if f"validation/{n}" in m]
    train_names = [n for n in ("reward", "frac_reward_zero_std", "kl", "step_seconds") if f"train/{n}" in m]
    steps = sorted({s for k in m for s in m[k]})
    t = Table(title=f"metrics of {run_id} (validation %, 95% CI; train: reward, share of zero-spread groups, KL)")
    t.add_column("step", justify="right")
    for n in val_names:
        t.add_column(_SHORT.get(n, n), justify="right", style="cyan", no_wrap=True)
    for n in train_names:
        t.add_column(_SHORT.get(n, n), justify="right")
    for s in steps:
        row = [str(s)]
        row += [_fmt(m[f"validation/{n}"].get(s), n in _PCT) for n in val_names]
        row += [_fmt(m[f"train/{n}"].get(s), False) for n in train_names]
        if any(row[1:]):
            t.add_row(*row)
    return t


def run_other_metrics_table(con: duckdb.DuckDBPyConnection, run_id: str) -> Table | None:
    """Metrics outside the validation / train splits (e.g. a re-ranker's ``holdout_*`` metrics and
    feature ``importance``), one row per split and name; None when there are none."""
    rows = con.execute("SELECT split, name, value FROM metric WHERE run_id = ? AND split NOT IN ('validation', 'train') "
                       "ORDER BY split, value DESC, name", [run_id]).fetchall()
    if not rows:
        return None
    t = Table(title=f"other metrics of {run_id} (holdout: train-internal; importance: share of LightGBM gain)")
    for c in ("split", "name", "value"):
        t.add_column(c, justify="right" if c == "value" else "left")
    for split, name, value in rows:
        t.add_row(split, name, f"{value:.3g}")
    return t


def runs_table(runs: Sequence[RunInfo]) -> Table:
    t = Table(title="runs (validation metrics of the last evaluated step; `genedx runs show RUN` for more)")
    t.add_column("id", no_wrap=True)
    t.add_column("kind")
    t.add_column("name", overflow="fold")
    t.add_column("status")
    t.add_column("started", no_wrap=True)
    for c in ("step", "top1 %", "top5 %"):
        t.add_column(c, justify="right")
    for r in runs:
        def pct(name: str) -> str:
            return f"{100 * r.last[name]:.1f}" if name in r.last else ""
        t.add_row(r.id, r.kind or "", r.name or "", r.status or "", str(r.started_at)[5:16],
                  "" if r.last_step is None else str(r.last_step), pct("top1"), pct("top5"))
    return t


def plot_runs(con: duckdb.DuckDBPyConnection, run_ids: Sequence[str], out: str | Path,
              metrics: Sequence[str] = ("top1", "top5"), title: str | None = None) -> Path:
    """A PNG of validation curves (one panel per metric, one line per run, 95% band when known)."""
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    runs = [get_run(con, r) for r in run_ids]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    plotted = 0
    for ax, name in zip(axes[0], metrics):
        for run in runs:
            series = run_metrics(con, run.id).get(f"validation/{name}") or run_metrics(con, run.id).get(f"train/{name}")
            if not series:
                continue
            steps = sorted(series)
            scale = 100.0 if name in _PCT else 1.0
            ys = [series[s][0] * scale for s in steps]
            ax.plot(steps, ys, marker="o", label=run.name or run.id)
            if all(series[s][1] is not None and series[s][2] is not None for s in steps):
                ax.fill_between(steps, [series[s][1] * scale for s in steps], [series[s][2] * scale for s in steps],
                                alpha=0.15)
            plotted += 1
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{name} (%)" if name in _PCT else name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if not plotted:
        plt.close(fig)
        raise GenedxError(f"no metric {', '.join(metrics)} recorded for run(s) {', '.join(r.id for r in runs)}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
