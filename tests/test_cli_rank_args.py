"""`genedx rank ... --absent A B`: every id after --absent is absent, never silently present."""

from __future__ import annotations

import json
import subprocess
import sys

from genedx.cli.rank import expand_absent_args


def test_expand_absent_args_takes_every_following_id():
    argv = ["rank", "HP:0001250", "--absent", "HP:0001631", "HP:0001629", "--top", "3"]
    assert expand_absent_args(argv) == ["rank", "HP:0001250", "--absent", "HP:0001631", "--absent",
                                        "HP:0001629", "--top", "3"]
    # Ids before --absent stay present; other options end the absent run.
    assert expand_absent_args(["rank", "HP:0001250", "--top", "3"]) == ["rank", "HP:0001250", "--top", "3"]


def test_rank_cli_marks_all_ids_after_absent_as_absent(toy_home):
    out = subprocess.run(
        [sys.executable, "-m", "genedx", "--home", str(toy_home.root), "rank", "HP:0001250",
         "--absent", "HP:0001631", "HP:0001629", "--json", "--top", "3"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    genes = json.loads(out.stdout)["genes"]
    tbx5 = next(g for g in genes if g["symbol"] == "TBX5")
    matched = {m["patient_term"] for g in genes for m in g["evidence"]["matched"]}
    # Neither septal defect may be used as a present (matched) term.
    assert "HP:0001631" not in matched and "HP:0001629" not in matched
    assert genes[0]["symbol"] == "SCN1A"
    assert {m["patient_term"] for m in tbx5["evidence"]["excluded"]} == {"HP:0001631", "HP:0001629"}


def test_locked_database_is_a_one_line_error(tmp_home):
    """A second process writing to a home in use gets a clear GenedxError, not a traceback."""
    import pytest

    from genedx.errors import GenedxError
    from genedx.home import connect

    connect(tmp_home).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); print('ok', flush=True); "
         "time.sleep(30)", str(tmp_home.db_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(GenedxError, match="in use by another genedx process"):
            connect(tmp_home)
    finally:
        holder.kill()
        holder.wait()
