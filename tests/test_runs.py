"""`genedx.train.runs` and `genedx runs list|show|plot`: runs and per-step metrics in DuckDB, curves as PNG."""

from __future__ import annotations

import sys

import pytest

from genedx.errors import GenedxError
from genedx.home import connect
from genedx.train import runs


def _make_run(home, run_id: str, top1: list[float], name: str | None = None, kind: str = "rft") -> None:
    def fill(con):
        runs.start_run(con, run_id, kind, name or run_id, {"seed": 1, "mode": "closed"}, "2025-01-01")
        for i, v in enumerate(top1):
            runs.record_metrics(con, run_id, 10 * i, "validation",
                                {"top1": (v, max(0.0, v - 0.05), min(1.0, v + 0.05)), "top5": v + 0.2, "mean_grade": None})
            runs.record_metrics(con, run_id, 10 * i + 1, "train", {"reward": 0.1 * i, "kl": 0.01})
        runs.finish_run(con, run_id, "done", f"/models/{run_id}")
    runs.write(home, fill)


def test_record_list_show(tmp_home):
    _make_run(tmp_home, "rft-a", [0.1, 0.2, 0.3], name="first")
    _make_run(tmp_home, "rft-b", [0.15, 0.25])
    _make_run(tmp_home, "eval-c", [], kind="eval")
    con = connect(tmp_home)
    listed = runs.list_runs(con, kind="rft")
    assert {r.id for r in listed} == {"rft-a", "rft-b"}
    a = runs.get_run(con, "rft-a")
    assert a.status == "done" and a.name == "first" and a.last_step == 20 and a.last["top1"] == pytest.approx(0.3)
    assert a.config["mode"] == "closed"
    m = runs.run_metrics(con, "rft-a")
    assert m["validation/top1"][10] == pytest.approx((0.2, 0.15, 0.25))
    assert "validation/mean_grade" not in m           # None values are not stored
    assert sorted(m["train/reward"]) == [1, 11, 21]


def test_rerecording_a_step_replaces_it(tmp_home):
    _make_run(tmp_home, "rft-a", [0.1])
    runs.write(tmp_home, lambda con: runs.record_metrics(con, "rft-a", 0, "validation", {"top1": 0.9}))
    con = connect(tmp_home)
    assert con.execute("SELECT count(*), max(value) FROM metric WHERE run_id='rft-a' AND name='top1'").fetchone() \
        == (1, pytest.approx(0.9))


def test_drop_metrics_after_resume_point(tmp_home):
    _make_run(tmp_home, "rft-a", [0.1, 0.2, 0.3])
    runs.write(tmp_home, lambda con: runs.drop_metrics_after(con, "rft-a", 10))
    con = connect(tmp_home)
    assert sorted(runs.run_metrics(con, "rft-a")["validation/top1"]) == [0, 10]


def test_write_rolls_back_on_error(tmp_home):
    def bad(con):
        runs.start_run(con, "rft-x", "rft", "x", {})
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        runs.write(tmp_home, bad)
    con = connect(tmp_home)
    assert con.execute("SELECT count(*) FROM run").fetchone()[0] == 0


def test_unknown_and_ambiguous_run(tmp_home):
    _make_run(tmp_home, "rft-a1", [0.1])
    _make_run(tmp_home, "rft-a2", [0.1])
    con = connect(tmp_home)
    assert runs.get_run(con, "rft-a1").id == "rft-a1"
    with pytest.raises(GenedxError, match="no run 'nope'"):
        runs.get_run(con, "nope")
    with pytest.raises(GenedxError, match="ambiguous"):
        runs.get_run(con, "rft-a")


def test_plot_several_runs(tmp_home, tmp_path):
    _make_run(tmp_home, "rft-a", [0.1, 0.2, 0.3])
    _make_run(tmp_home, "rft-b", [0.15, 0.25])
    con = connect(tmp_home)
    out = runs.plot_runs(con, ["rft-a", "rft-b"], tmp_path / "curves.png", metrics=["top1", "top5"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    with pytest.raises(GenedxError, match="no metric mrr recorded"):
        runs.plot_runs(con, ["rft-a"], tmp_path / "none.png", metrics=["mrr"])




def test_cli_runs_list_show_plot(tmp_home, tmp_path, monkeypatch, capsys, run_cli):
    _make_run(tmp_home, "rft-a", [0.1, 0.2, 0.3], name="first")
    _make_run(tmp_home, "rft-b", [0.15, 0.25])
    h = ["--home", str(tmp_home.root)]
    assert run_cli(h + ["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert "rft-a" in out and "rft-b" in out and "30.0" in out      # last top1 in %
    assert run_cli(h + ["runs", "show", "rft-a"]) == 0
    out = capsys.readouterr().out
    assert "first" in out and "20.0 [15-25]" in out and "closed" in out
    png = tmp_path / "c.png"
    assert run_cli(h + ["runs", "plot", "rft-a", "rft-b", "--out", str(png)]) == 0
    assert png.exists()
    assert run_cli(h + ["runs", "show", "nope"]) == 1          # a user error (2 is a usage error)
    assert "error: no run 'nope'" in capsys.readouterr().err
    assert run_cli(h + ["runs", "show"]) == 2                  # missing argument: usage error


def test_cli_runs_list_show_json(tmp_home, capsys, run_cli):
    import json
    _make_run(tmp_home, "rft-a", [0.1, 0.2, 0.3], name="first")
    _make_run(tmp_home, "eval-c", [], kind="eval")
    h = ["--home", str(tmp_home.root)]
    assert run_cli(h + ["runs", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in listed} == {"rft-a", "eval-c"}
    a = next(r for r in listed if r["id"] == "rft-a")
    assert a["name"] == "first" and a["status"] == "done" and a["last_step"] == 20
    assert a["last"]["top1"] == pytest.approx(0.3) and a["config"] == {"seed": 1, "mode": "closed"}
    assert isinstance(a["started_at"], str) and a["started_at"][:2] == "20"
    assert run_cli(h + ["runs", "list", "--kind", "eval", "--json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == ["eval-c"]
    assert run_cli(h + ["runs", "show", "rft-a", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == "rft-a" and shown["model_dir"] == "/models/rft-a"
    assert shown["metrics"]["validation/top1"][1] == {"step": 10, "value": pytest.approx(0.2),
                                                      "lo": pytest.approx(0.15), "hi": pytest.approx(0.25)}
    assert [m["step"] for m in shown["metrics"]["train/reward"]] == [1, 11, 21]
