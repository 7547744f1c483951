"""How fast the running app answers "Rank genes", measured in a real browser; also writes the
README screenshot of the Diagnose page.

Starts `genedx app` on a free local port (the home is prepared first with the KB + sample cases),
loads the Diagnose page in headless chromium (Playwright), enters the shipped sample case
PMID_10077612_Family_A_IV_20 (present + absent HPO ids), ranks it once (first ranking after load),
then ranks it N more times, each time with a different number of genes so the answer is a new table;
the time is from the click to the new table being in the page. Prints a JSON summary.

    python bench/app_latency.py --runs 20 --screenshot docs/screenshot-diagnose.png
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for app.lib (the app is not a package)

from genedx.cases.quickstart import quickstart
from genedx.cases.store import load_cases
from genedx.home import Home, connect

CASE = "PMID_10077612_Family_A_IV_20"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_process_timings(home: Home) -> dict:
    """Per-keystroke term search and free-text extraction, timed in this process."""
    import duckdb

    from app.lib import TermIndex
    from genedx.extract import TermExtractor
    con = duckdb.connect(str(home.db_path), read_only=True)
    t = time.perf_counter()
    index = TermIndex.from_db(con)
    t_index = time.perf_counter() - t
    t = time.perf_counter()
    ex = TermExtractor.from_db(con)
    t_ex = time.perf_counter() - t
    con.close()
    queries = ["se", "seiz", "seizure", "atrial sept", "triphalangeal", "short stat", "hypotonia", "HP:0001250",
               "developmental delay", "cleft", "epilepsy", "abnormality of the"]
    search = []
    for q in queries * 5:
        t = time.perf_counter()
        index.search(q)
        search.append(time.perf_counter() - t)
    note = ("3-year-old girl with febrile seizures since 6 months, global developmental delay and hypotonia. "
            "No ataxia. She denies headaches. Cardiomyopathy was absent. Triphalangeal thumbs and an atrial "
            "septal defect, without ventricular septal defect. Short stature, but no microcephaly.") * 4
    t = time.perf_counter()
    for _ in range(20):
        found = ex.extract(note)
    t_note = (time.perf_counter() - t) / 20
    return {"term_index_load_s": round(t_index, 2), "extractor_load_s": round(t_ex, 2),
            "search_per_keystroke_ms": {"median": round(1000 * statistics.median(search), 1),
                                        "max": round(1000 * max(search), 1)},
            "extract_note_ms": round(1000 * t_note, 2), "extract_note_words": len(note.split()),
            "extract_note_terms": len(found)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--home", type=Path, default=None, help="home to use (default: a fresh temp home)")
    ap.add_argument("--screenshot", type=Path, default=None)
    ap.add_argument("--absent", type=int, default=2, help="absent terms entered (the sample case has 7)")
    a = ap.parse_args()

    home = Home(a.home or Path(tempfile.mkdtemp(prefix="genedx-bench-app-"))).ensure()
    con = connect(home)
    try:
        quickstart(con)
        (case,) = load_cases(con, ids=[CASE])
    finally:
        con.close()
    absent = case.absent[:a.absent]
    micro = in_process_timings(home)

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "genedx", "app", "--port", str(port), "--home", str(home.root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1440, "height": 1500})
            t0 = time.perf_counter()
            page.goto(url)
            page.get_by_role("heading", name="Diagnose").wait_for(timeout=120_000)
            first_paint = time.perf_counter() - t0
            time.sleep(3)  # let the ranker warm-up that follows the first page finish

            page.get_by_role("tab", name="HPO ids").click()
            ids = page.get_by_role("textbox", name="HPO ids")
            for terms, status, label in ((case.present, "present", "Present"), (absent, "absent", "Absent")):
                ids.fill(", ".join(terms))
                ids.press("Enter")
                page.get_by_role("button", name=f"Add ids as {status}").click()
                page.get_by_text(f"{label} ({len(terms)})").wait_for(timeout=10_000)
            genes_box = page.get_by_role("spinbutton", name="Genes")
            rows = page.locator("[data-testid='stTable']").first.locator("tbody tr")

            def rank(n_genes: int) -> tuple[float, float]:
                genes_box.fill(str(n_genes))
                genes_box.press("Enter")
                time.sleep(0.6)  # the number input's own rerun
                t = time.perf_counter()
                page.get_by_role("button", name="Rank genes").click()
                expect(rows).to_have_count(n_genes, timeout=30_000)
                wall = time.perf_counter() - t
                cap = page.get_by_text(re.compile(r"answered in [\d.]+ s")).inner_text()
                return wall, float(re.search(r"answered in ([\d.]+) s", cap).group(1))

            first = rank(20)
            walls, servers = [], []
            for i in range(a.runs):
                w, s = rank(10 + (i % 2) * 5)   # 10, 15, 10, ...: every answer is a new table
                walls.append(w)
                servers.append(s)
            top_gene = rows.first.locator("td").nth(1).inner_text()
            again_20 = rank(20)[0]

            if a.screenshot:
                rank(10)
                page.get_by_text(re.compile(rf"^1\. {case.gene} — ")).click()
                page.get_by_text(re.compile(r"^Matched phenotypes")).first.wait_for()
                page.get_by_role("tab", name="Search HPO").click()
                time.sleep(1)
                a.screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(a.screenshot), full_page=False)
            browser.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)

    walls_sorted = sorted(walls)
    print(json.dumps({
        "case": CASE, "present": len(case.present), "absent": len(absent), "true_gene": case.gene,
        "top_gene_in_app": top_gene, "first_page_load_s": round(first_paint, 2),
        "first_rank_click_to_table_s": round(first[0], 3), "first_rank_ranker_s": first[1],
        "rank_20_genes_again_s": round(again_20, 3),
        "runs": a.runs, "click_to_table_s": {
            "median": round(statistics.median(walls), 3), "p90": round(walls_sorted[int(0.9 * (len(walls) - 1))], 3),
            "max": round(max(walls), 3)},
        "ranker_only_s": {"median": round(statistics.median(servers), 3), "max": round(max(servers), 3)},
        **micro,
    }, indent=2))


if __name__ == "__main__":
    main()
