"""Shared helpers of the Streamlit app: the home, database access, cached resources, case state.

Database access: the app never keeps the DuckDB file open. DuckDB lets one process write OR several
read, so a connection held by the app would lock out `genedx train`, `genedx data import` (and
`genedx.train.runs.write`) in another shell. Everything needed for ranking (ranker, term index,
extractor, id mapper) is loaded ONCE per process into memory with ``st.cache_resource``; pages that
browse tables open a short-lived read-only connection for one script run (:func:`read_db`), so each
session/thread gets its own connection and never shares one across threads.

The Streamlit-free parts (term search, case <-> table conversion) are plain functions, tested without
Streamlit.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import duckdb
import streamlit as st

from genedx.errors import GenedxError
from genedx.home import Home, connect, meta_get, resolve_home

RANKER = "ranker"
RERANKER = "reranker"   # the learned re-ranker in <home>/models/reranker (genedx train reranker)
SEXES = ("unknown", "female", "male", "other")


# ----------------------------------------------------------------------------------------------
# Home and database
# ----------------------------------------------------------------------------------------------
def app_home() -> Home:
    """The home the app serves: ``$GENEDX_HOME`` (set by `genedx app --home`), else ~/.genedx."""
    return resolve_home(os.environ.get("GENEDX_HOME")).ensure()


@contextmanager
def read_db(home: Home | None = None, tries: int = 60) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection for one script run; waits briefly while another process writes."""
    home = home or app_home()
    if not home.db_path.exists():
        raise GenedxError(f"no database at {home.db_path}: run `genedx data build` first")
    for attempt in range(tries):
        try:
            con = duckdb.connect(str(home.db_path), read_only=True)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as e:  # a writer holds the file (import,
            # training step, or this process's own first-start build)
            if attempt == tries - 1:
                raise GenedxError(f"the database {home.db_path} is busy (another genedx command is writing): "
                                  f"try again in a moment ({e})") from e
            time.sleep(0.25)
    try:
        yield con
    finally:
        con.close()


def kb_release(home: Home | None = None) -> str | None:
    """The HPO release of the home's knowledge base, or None when it is not built yet."""
    home = home or app_home()
    if not home.db_path.exists():
        return None
    with read_db(home) as con:
        try:
            return meta_get(con, "hpo_release")
        except duckdb.CatalogException:
            return None


@st.cache_resource(show_spinner=False)
def _setup_lock(root: str) -> threading.Lock:
    return threading.Lock()


def setup_home(home: Home, report: Callable[[str], None] = lambda msg: None) -> str:
    """First start: build the knowledge base and import the bundled sample cases when missing
    (``genedx.cases.quickstart``, as `genedx data quickstart`).

    Returns the HPO release. Serialised per home so two first visitors do not build twice.
    """
    from genedx.cases.quickstart import quickstart
    with _setup_lock(str(home.root)):
        release = kb_release(home)
        if release is not None:
            return release
        con = connect(home)
        try:
            report("Building the HPO knowledge base and importing the sample cases…")
            quickstart(con)
            release = meta_get(con, "hpo_release")
        finally:
            con.close()
        return release or "unknown"


# ----------------------------------------------------------------------------------------------
# Cached resources (one per process and home/release)
# ----------------------------------------------------------------------------------------------
@dataclass
class TermIndex:
    """Search-as-you-type over current HPO terms by label, synonym or id, in memory (~19k terms).

    A cached filter, not a multiselect: each keystroke scans plain Python strings (~10 ms).
    """

    ids: list[str]
    labels: list[str]
    synonyms: list[list[str]]
    id_map: dict[str, str] = field(default_factory=dict)  # any id (alt, obsolete) -> current id
    _low_labels: list[str] = field(default_factory=list, repr=False)
    _hay: list[str] = field(default_factory=list, repr=False)
    _pos: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._low_labels = [s.lower() for s in self.labels]
        self._hay = [" | ".join([lab, *syn]).lower() for lab, syn in zip(self.labels, self.synonyms)]
        self._pos = {t: i for i, t in enumerate(self.ids)}

    @classmethod
    def from_db(cls, con: duckdb.DuckDBPyConnection) -> "TermIndex":
        rows = con.execute("SELECT id, label, coalesce(synonyms, []) FROM hpo_term "
                           "WHERE NOT coalesce(obsolete, false) ORDER BY id").fetchall()
        id_map = dict(con.execute("SELECT id, term FROM hpo_id_map WHERE term IS NOT NULL").fetchall())
        return cls([r[0] for r in rows], [r[1] or r[0] for r in rows], [list(r[2]) for r in rows], id_map)

    def label(self, term: str) -> str:
        i = self._pos.get(term)
        return self.labels[i] if i is not None else term

    def current(self, term: str) -> str | None:
        """The current id for any HPO id a user may type (``hp_0001250``, alt or obsolete ids)."""
        t = term.strip().upper().replace("_", ":")
        if re.fullmatch(r"\d{1,7}", t):
            t = f"HP:{int(t):07d}"
        t = self.id_map.get(t, t)
        return t if t in self._pos else None

    def search(self, query: str, limit: int = 15) -> list[tuple[str, str]]:
        """(display text, id) of the best matches, in this order: an id (any form, alt ids mapped), the
        exact label, an exact synonym, labels / synonyms starting with the query, labels containing
        every word, synonyms containing every word; shorter labels first within each group."""
        q = (query or "").strip().lower()
        if len(q) < 2:
            return []
        if re.fullmatch(r"(hp[:_]?)?\d{3,7}", q):
            t = self.current(q if ":" in q or "_" in q else q.removeprefix("hp"))
            return [(self.display(t), t)] if t else []
        words = q.split()
        scored = []
        for i, hay in enumerate(self._hay):
            if all(w in hay for w in words):
                lab = self._low_labels[i]
                syns = hay.split(" | ")[1:]
                rank = (0 if lab == q else 1 if q in syns else 2 if lab.startswith(q)
                        else 3 if any(s.startswith(q) for s in syns) else 4 if all(w in lab for w in words) else 5)
                scored.append((rank, len(lab), i))
        scored.sort()
        out = []
        for rank, _, i in scored[:limit]:
            syn = ""
            if rank in (1, 3, 5):  # say which synonym matched, so "Epilepsy" -> Seizure is not a surprise
                syn = next((s for s in self.synonyms[i] if all(w in s.lower() for w in words)), "")
            out.append((self.display(self.ids[i]) + (f" — synonym: {syn}" if syn else ""), self.ids[i]))
        return out

    def display(self, term: str) -> str:
        return f"{self.label(term)} ({term})"


@st.cache_resource(show_spinner="Loading the HPO terms…")
def term_index(root: str, release: str) -> TermIndex:
    with read_db(Home(Path(root))) as con:
        return TermIndex.from_db(con)


@st.cache_resource(show_spinner="Loading the text extractor…")
def term_extractor(root: str, release: str):
    from genedx.extract import TermExtractor
    with read_db(Home(Path(root))) as con:
        return TermExtractor.from_db(con)


@st.cache_resource(show_spinner="Loading the HPO id mapper…")
def term_mapper(root: str, release: str):
    from genedx.cases.terms import TermMapper
    with read_db(Home(Path(root))) as con:
        return TermMapper.from_db(con)


@st.cache_resource(show_spinner=False)
def gene_normalizer():
    from genedx.kb.genes import GeneNormalizer
    return GeneNormalizer.default()


@dataclass
class Loaded:
    """A predictor loaded once per process, with a lock: a predictor may hold a DuckDB cursor or a
    torch model, neither of which is safe to call from two session threads at once."""

    name: str
    kind: str            # "ranker" or "model"
    obj: Any
    hpo_release: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)


@st.cache_resource(show_spinner="Loading the phenotype ranker (first use only)…")
def load_ranker(root: str, release: str) -> Loaded:
    from genedx.rank.ranker import Ranker
    # The ranker reads the KB into memory arrays, so the connection closes right after loading.
    with read_db(Home(Path(root))) as con:
        ranker = Ranker.load(con)
    return Loaded(RANKER, RANKER, ranker, getattr(ranker, "hpo_release", release))


@st.cache_resource(show_spinner="Loading the model (first use only)…")
def load_model(root: str, release: str, model_dir: str, mode: str = "closed") -> Loaded:
    from genedx.predictors import load_predictor
    home = Home(Path(root))
    if not (Path(model_dir) / "config.json").is_file():
        raise GenedxError(f"no model at {model_dir} (a model folder holds config.json)")
    with read_db(home) as con:
        pred = load_predictor(f"model:{model_dir}", con, home, mode=mode)
    return Loaded(f"{Path(model_dir).name} ({mode})", "model", pred, getattr(pred, "hpo_release", release))


@st.cache_resource(show_spinner="Loading the re-ranker (first use only)…")
def load_reranker(root: str, release: str) -> Loaded:
    from genedx.predictors import load_predictor
    home = Home(Path(root))
    with read_db(home) as con:
        pred = load_predictor(RERANKER, con, home, explain=True)
    return Loaded(RERANKER, RERANKER, pred, pred.hpo_release)


def has_reranker(home: Home) -> bool:
    """Whether a re-ranker was trained into this home (it then is the app's default predictor)."""
    from genedx.rank.reranker import META_FILE, default_model_dir
    return (default_model_dir(home) / META_FILE).is_file()


def predictor_choices(home: Home) -> list[str]:
    """The app's predictor list, default first: the re-ranker once one is trained, the ranker, models."""
    return ([RERANKER] if has_reranker(home) else []) + [RANKER, *find_models(home)]


def get_predictor(home: Home, release: str, choice: str, mode: str = "closed") -> Loaded:
    """The ranker, the re-ranker, or the trained model ``choice`` (a folder name in the home's models dir)."""
    if choice == RANKER:
        return load_ranker(str(home.root), release)
    if choice == RERANKER:
        return load_reranker(str(home.root), release)
    try:
        return load_model(str(home.root), release, str(home.models_dir / choice), mode)
    except GenedxError:
        raise
    except Exception as e:  # a broken model folder (bad config, missing weights): one line, not a traceback
        raise GenedxError(f"cannot load model {choice}: {type(e).__name__}: {e}") from e


def find_models(home: Home) -> list[str]:
    """Trained models in the home's models directory (each a folder holding config.json)."""
    if not home.models_dir.is_dir():
        return []
    return sorted(p.name for p in home.models_dir.iterdir() if (p / "config.json").is_file())


# ----------------------------------------------------------------------------------------------
# Ranking and results
# ----------------------------------------------------------------------------------------------
def age_to_iso(years: float | None) -> str | None:
    """Age in years -> ISO 8601 duration (``P3Y``, ``P1Y6M``, ``P4M``).

    >>> [age_to_iso(a) for a in (None, 3, 1.5, 0.25)]
    [None, 'P3Y', 'P1Y6M', 'P3M']
    """
    if years is None:
        return None
    months = round(float(years) * 12)
    y, m = divmod(months, 12)
    return "P" + (f"{y}Y" if y else "") + (f"{m}M" if m or not y else "")


def iso_to_years(age: str | None) -> float | None:
    """ISO 8601 duration -> years (``P1Y6M`` -> 1.5); None when absent or unreadable.

    >>> [iso_to_years(a) for a in ("P3Y", "P1Y6M", "P2W", None, "adult")]
    [3.0, 1.5, 0.04, None, None]
    """
    m = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T.*)?", (age or "").strip())
    if not age or not m or not any(m.groups()):
        return None
    y, mo, w, d = (int(g or 0) for g in m.groups())
    return round(y + mo / 12 + w / 52.18 + d / 365.25, 2)


def rank_case(loaded: Loaded, case, top: int = 20):
    """Rank one case with the chosen predictor -> ``genedx.predict.Prediction`` (with evidence)."""
    from genedx.predict import Prediction
    with loaded.lock:
        if loaded.kind == RANKER:
            genes = loaded.obj.rank(case.present, case.absent, sex=case.sex, age=case.age, top=top, explain=True)
            return Prediction(case.id, list(genes), RANKER, loaded.hpo_release)
        return loaded.obj.predict([case], top=top)[0]   # a model, or the re-ranker (loaded with explanations)


def rank_many(loaded: Loaded, cases: Sequence, top: int = 20,
              progress: Callable[[int], None] | None = None, chunk: int = 8) -> list:
    """Rank cases in order, calling ``progress(n_done)`` as it goes (models work in small batches)."""
    from genedx.predict import Prediction
    out = []
    for i in range(0, len(cases), chunk):
        part = cases[i:i + chunk]
        with loaded.lock:
            if loaded.kind == RANKER:
                out.extend(Prediction(c.id, list(loaded.obj.rank(c.present, c.absent, sex=c.sex, age=c.age,
                                                                   top=top, explain=False)),
                                      RANKER, loaded.hpo_release) for c in part)
            else:
                out.extend(loaded.obj.predict(list(part), top=top))
        if progress:
            progress(len(out))
    return out


def result_rows(prediction) -> list[dict[str, Any]]:
    """The ranked table of one prediction: rank, gene, score, disease id and name."""
    return [{"rank": i, "gene": g.symbol, "score": round(float(g.score), 4), "disease": g.disease or "",
             "disease name": g.disease_name or ""} for i, g in enumerate(prediction.genes, 1)]


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def prediction_json(prediction, case) -> str:
    """Download format of one ranked case: the batch-scoring line plus the case and evidence."""
    d = prediction.to_json(evidence=True)
    d["case"] = case.to_dict()
    return json.dumps(d, indent=2)


def evidence_picture(result: dict[str, Any], home: Home, release: str,
                     label: Callable[[str], str]) -> tuple[Any, bytes] | None:
    """(``EvidenceMatrix``, its PNG) of a Diagnose result, drawn once and kept in the result (every
    widget click reruns the page); None when the predictor gave no per-term evidence (a model).

    The ontology (direct match vs through an ancestor) and the no-match LR come from the phenotype
    ranker, whose evidence every explaining predictor (ranker, re-ranker) reports.
    """
    import math

    from app.evidence_matrix import evidence_matrix, matrix_png, ranker_is_at_or_below
    if "matrix" not in result:
        ranker = load_ranker(str(home.root), release).obj
        case = result["case"]
        m = evidence_matrix(case.present, case.absent, result["prediction"].genes,
                            is_at_or_below=ranker_is_at_or_below(ranker.kb),
                            no_match_contribution=math.log10(ranker.config.no_match_lr), label=label)
        result["matrix"] = (m, matrix_png(m)) if m is not None else None
    return result["matrix"]


def true_gene_rank(prediction, gene: str | None) -> int | None:
    """1-based rank of the true gene in a prediction, None when not listed (or no true gene)."""
    if not gene:
        return None
    for i, g in enumerate(prediction.genes, 1):
        if g.symbol.upper() == gene.upper():
            return i
    return None


def disease_link(disease: str | None) -> str:
    """A markdown link to the disease's public page (OMIM / Orphanet), or the id as it is."""
    if not disease:
        return "—"
    if disease.startswith("OMIM:"):
        return f"[{disease}](https://omim.org/entry/{disease.split(':', 1)[1]})"
    if disease.startswith("ORPHA:"):
        return f"[{disease}](https://www.orpha.net/en/disease/detail/{disease.split(':', 1)[1]})"
    return disease


# ----------------------------------------------------------------------------------------------
# Batch uploads
# ----------------------------------------------------------------------------------------------
BATCH_SUFFIXES = (".json", ".jsonl", ".jsonl.gz", ".json.gz", ".zip")
# Upload limits: the uploaders refuse bigger files in the browser (max_upload_size), and the readers
# below check again (a script or proxy may bypass the browser). Larger batches: `genedx score` on the CLI.
MAX_BATCH_MB = 50          # one batch file as uploaded (compressed or not)
MAX_UNPACKED_MB = 500      # what a zip may expand to (a small zip can hold gigabytes of JSON)
MAX_CASE_MB = 5            # one phenopacket / case JSON on Diagnose


def too_big(name: str, size: int, limit_mb: int, what: str = "file") -> str | None:
    """A one-line message when ``size`` bytes exceed ``limit_mb``, else None."""
    if size <= limit_mb * 1024 * 1024:
        return None
    return (f"{name}: the {what} is {size / 1024 / 1024:.1f} MB, over the app's {limit_mb} MB limit; "
            f"split it, or score it with `genedx score` on the command line")


def zip_unpacked_size(data: bytes) -> int | None:
    """The total size a zip's members expand to, from its directory (None when not a readable zip)."""
    import zipfile
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def read_upload(name: str, data: bytes, mapper, genes=None) -> tuple[list, list]:
    """Cases (current HPO ids, approved gene symbols when known) and bad records of one uploaded
    file (JSON / JSONL / .jsonl.gz / zip of phenopackets or cases). Never raises on bad content:
    every problem is a ``BadRecord``; a case with only some unknown terms keeps the rest."""
    import tempfile

    from genedx.cases.model import BadRecord
    from genedx.cases.readers import read_cases
    from genedx.cases.store import normalize_case

    safe = Path(name).name or "upload"
    if not safe.lower().endswith(BATCH_SUFFIXES):
        return [], [BadRecord(safe, "-", f"unsupported file type (expected {', '.join(BATCH_SUFFIXES)})")]
    problem = too_big(safe, len(data), MAX_BATCH_MB)
    if problem is None and safe.lower().endswith(".zip"):
        problem = too_big(safe, zip_unpacked_size(data) or 0, MAX_UNPACKED_MB, "unpacked content")
    if problem:
        return [], [BadRecord(safe, "-", problem)]
    cases, bad = [], []
    with tempfile.TemporaryDirectory(prefix="genedx-upload-") as tmp:
        path = Path(tmp) / safe
        path.write_bytes(data)
        items = read_cases([path], require_gene=False)
        while True:
            try:
                item = next(items)
            except StopIteration:
                break
            except Exception as e:  # noqa: BLE001 - an uploaded file is untrusted: whatever breaks the reader
                # (e.g. JSON nested thousands deep) is reported as a problem, never shown as a traceback
                why = "JSON nested too deeply" if isinstance(e, RecursionError) else f"{type(e).__name__}: {str(e)[:200]}"
                bad.append(BadRecord(safe, "-", f"cannot read the file (after {len(cases)} case(s)): {why}"))
                break
            if isinstance(item, BadRecord):
                bad.append(BadRecord(item.origin.replace(str(path), safe), item.record, item.problem))
                continue
            case, problems = normalize_case(item, mapper, None, safe)
            bad.extend(problems)  # skipped cases, and dropped unknown terms of kept ones
            if case is None:
                continue
            if case.gene and genes is not None:
                sym, how = genes.lookup(case.gene)
                if sym is None:
                    bad.append(BadRecord(safe, case.id, f"gene {case.gene!r} is {how} in HGNC; scored without a true gene"))
                case.gene = sym
            cases.append(case)
    return cases, bad


def batch_rows(predictions: Sequence, cases: Sequence, show: int = 5) -> list[dict[str, Any]]:
    """One table row per scored case: id, true gene and its rank, the first ``show`` genes."""
    by_id = {c.id: c for c in cases}
    rows = []
    for p in predictions:
        c = by_id.get(p.case_id)
        gene = c.gene if c else None
        rows.append({"case": p.case_id, "true gene": gene or "", "rank of true gene": true_gene_rank(p, gene),
                     "top genes": ", ".join(g.symbol for g in p.genes[:show]),
                     "present terms": len(c.present) if c else None})
    return rows


RANK_BUCKETS = ("1", "2", "3", "4", "5", "6-10", "11-20", "21+", "not found")


def rank_distribution(ranks: Sequence[int | None]) -> dict[str, int]:
    """Counts of the true gene's rank in display buckets (for the bar chart).

    >>> rank_distribution([1, 1, 3, 7, None, 25])["1"], rank_distribution([7])["6-10"]
    (2, 1)
    """
    out = dict.fromkeys(RANK_BUCKETS, 0)
    for r in ranks:
        b = ("not found" if r is None else str(r) if r <= 5 else "6-10" if r <= 10 else "11-20" if r <= 20
             else "21+")
        out[b] += 1
    return out


def topk_curve(ranks: Sequence[int | None], max_k: int = 20) -> list[dict[str, float]]:
    """top@k for k = 1..max_k: the share of cases whose true gene ranks at k or better (None = not listed).

    >>> [round(p["top@k"], 2) for p in topk_curve([1, 2, None, 5], max_k=5)]
    [0.25, 0.5, 0.5, 0.5, 0.75]
    """
    n = len(ranks)
    if not n:
        return []
    return [{"k": k, "top@k": sum(1 for r in ranks if r is not None and r <= k) / n} for k in range(1, max_k + 1)]
