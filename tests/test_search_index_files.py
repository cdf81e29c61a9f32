"""The search index shared by every worker as memory-mapped files under KB_HOME/index.

Each test plays several workers with fresh ``IndexCache`` objects (what a new worker process
starts with), and one with a real second process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from kb.config import get_settings
from kb.models import Role
from kb.services import search_index
from kb.services.access import Principal
from kb.services.analysis import passage_hook
from kb.services.embedding import embedder_for
from kb.services.ingest import IngestOptions, ingest_paths
from kb.services.search import INDEXES, IndexCache, search
from kb.services.search_index import CURRENT, IndexFiles
from nlp.embeddings import get_embedder
from tests.test_kb_search import ingest_docs

VIEWER = Principal(username="v", role=Role.VIEWER)
ADMIN = Principal(username="a", role=Role.ADMIN)
QUERIES = ["boyfriend nobody knew", "criminal exploitation school", "zebrawood", "health visitor"]
LOGGER = "kb.services.search_index"

EXTRA = """# Serious Case Review: Child D

## Findings

1. The quillwort assessment of the household was never completed by children's social care.
"""


@pytest.fixture
def corpus(engine: Engine, tmp_path: Path) -> Engine:
    INDEXES.clear()
    return ingest_docs(engine, tmp_path)  # type: ignore[no-any-return]


def _files(engine: Engine) -> IndexFiles:
    files = IndexFiles.for_engine(get_settings(), engine)
    assert files is not None
    return files


def _results(engine: Engine, cache: IndexCache | None = None, principal: Principal = VIEWER):
    """Every query in every mode, as the JSON contract shows them (through ``cache``)."""
    if cache is not None:
        _index(engine, cache)
    out = []
    with Session(engine) as session:
        for query in QUERIES:
            for mode in ("hybrid", "bm25", "dense"):
                hits = search(session, principal=principal, query=query, mode=mode, top_k=20)
                out.append([h.as_dict() for h in hits])
    return out


def _index(engine: Engine, cache: IndexCache):  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return cache.get(engine, embedder_for(), session)


def _ingest_extra(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "child-d.md").write_text(EXTRA, encoding="utf-8")
    report = ingest_paths(
        engine=engine,
        paths=[folder],
        options=IngestOptions(
            manifest={"child-d.md": {"status": "published", "incident_date": "2024-02-01"}}
        ),
        on_passages=passage_hook(get_settings()),
    )
    assert not report.failed


def test_index_files_are_written_under_kb_home_and_memory_mapped(
    corpus: Engine, kb_env: Path
) -> None:
    index = _index(corpus, INDEXES)
    files = _files(corpus)
    assert files.root.parent == kb_env / "index"
    generation = files.current()
    assert generation is not None
    folder = files.root / generation
    names = {p.name for p in folder.iterdir()}
    assert {"manifest.json", "vecs.npy", "tf_data.npy", "tf_indices.npy", "tf_indptr.npy"} <= names
    assert index.base_rows == len(index) > 0 and index.delta_rows == 0
    assert isinstance(index._base.vecs, np.memmap)  # shared through the page cache, not copied
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["meta"]["model"] == embedder_for().model_id
    assert manifest["rows"] == len(index)


def test_a_new_worker_reuses_the_files_without_rebuilding(
    corpus: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    first = _results(corpus, INDEXES)
    files = _files(corpus)
    generation = files.current()
    mtimes = {p.name: p.stat().st_mtime_ns for p in (files.root / str(generation)).iterdir()}
    caplog.set_level(logging.INFO, logger=LOGGER)
    caplog.clear()
    worker = IndexCache()
    index = _index(corpus, worker)
    assert "built from the database" not in caplog.text
    assert files.current() == generation
    assert {p.name: p.stat().st_mtime_ns for p in (files.root / str(generation)).iterdir()} == (
        mtimes
    )
    assert isinstance(index._base.vecs, np.memmap)
    INDEXES.clear()  # the searches below go through a cache that opens the files afresh
    assert _results(corpus) == first


def test_a_second_process_maps_the_same_generation(corpus: Engine) -> None:
    _index(corpus, INDEXES)
    files = _files(corpus)
    generation = files.current()
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout)\n"
        "from sqlmodel import Session\n"
        "from kb.db import get_engine\n"
        "from kb.services.search import INDEXES\n"
        "from kb.services.embedding import embedder_for\n"
        "engine = get_engine()\n"
        "with Session(engine) as s:\n"
        "    index = INDEXES.get(engine, embedder_for(), s)\n"
        "print('ROWS', index.base_rows, index.delta_rows, type(index._base.vecs).__name__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "built from the database" not in done.stdout + done.stderr
    rows = len(_index(corpus, INDEXES))
    assert f"ROWS {rows} 0 memmap" in done.stdout
    assert files.current() == generation


def test_new_passages_are_searched_from_a_small_delta_without_rebuilding(
    corpus: Engine, tmp_path: Path
) -> None:
    before = len(_index(corpus, INDEXES))
    generation = _files(corpus).current()
    _ingest_extra(corpus, tmp_path)
    with Session(corpus) as session:
        hits = search(session, principal=VIEWER, query="quillwort assessment", mode="bm25")
    assert hits and hits[0].pseudonym == "Child D"
    index = _index(corpus, INDEXES)
    assert _files(corpus).current() == generation  # under the threshold: no new generation
    assert index.base_rows == before and index.delta_rows > 0
    fresh = IndexCache()  # another worker: maps the same base, adds the same delta
    assert _index(corpus, fresh).delta_rows == index.delta_rows


def test_a_large_delta_writes_a_new_generation_and_old_ones_are_cleaned(
    corpus: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _index(corpus, INDEXES)
    files = _files(corpus)
    first = files.current()
    monkeypatch.setattr(search_index, "DELTA_MIN_ROWS", 0)
    monkeypatch.setattr(search_index, "DELTA_SHARE", 0.0)
    _ingest_extra(corpus, tmp_path)
    index = _index(corpus, INDEXES)
    second = files.current()
    assert second != first
    assert index.delta_rows == 0 and index.base_rows == len(index)
    with Session(corpus) as session:
        hits = search(session, principal=VIEWER, query="quillwort", mode="bm25")
    assert hits and hits[0].pseudonym == "Child D"
    # a third generation: the first goes, the one before the current stays for slow readers
    files.publish(
        index, json.loads((files.root / str(second) / "manifest.json").read_text())["meta"]
    )
    gens = sorted(p.name for p in files.root.iterdir() if p.name.startswith("gen-"))
    assert first not in gens and second in gens and len(gens) == 2


def test_another_embedding_model_rebuilds_the_files(corpus: Engine) -> None:
    _index(corpus, INDEXES)
    files = _files(corpus)
    first = files.current()
    torch_embedder = get_embedder(backend="torch")
    assert torch_embedder.model_id != embedder_for().model_id
    with Session(corpus) as session:
        hits = search(session, principal=VIEWER, query="boyfriend", embedder=torch_embedder)
    assert hits
    second = files.current()
    assert second != first
    meta = json.loads((files.root / str(second) / "manifest.json").read_text())["meta"]
    assert meta["model"] == torch_embedder.model_id


def _truncate(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def _scribble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated vectors": lambda folder: _truncate(folder / "vecs.npy"),
    "scribbled term matrix": lambda folder: _scribble(folder / "tf_data.npy"),
    "missing ids": lambda folder: (folder / "ids.npy").unlink(),
    "garbage manifest": lambda folder: (folder / "manifest.json").write_text("{nope"),
    "garbage pointer": lambda folder: (folder.parent / CURRENT).write_text("gen-../../etc"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_files_are_rebuilt_from_the_database_with_a_log_line(
    corpus: Engine, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    expected = _results(corpus, INDEXES)
    files = _files(corpus)
    generation = str(files.current())
    DAMAGE[damage](files.root / generation)
    INDEXES.clear()  # a worker starting now
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert _results(corpus) == expected
    assert "built from the database" in caplog.text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "rebuilding from the database" in warnings[0].getMessage()
    assert files.current() not in (None, generation)
    index, _ = files.open(str(files.current()))  # the new generation passes every check
    assert len(index) == len(_index(corpus, INDEXES))


def test_embargoed_passage_in_the_shared_files_stays_invisible(corpus: Engine) -> None:
    index = _index(corpus, INDEXES)
    files = _files(corpus)
    folder = files.root / str(files.current())
    vocab = bytes(np.load(folder / "vocab.npy")).decode().split("\0")
    assert "zebrawood" in vocab  # the shared files hold the embargoed review's passages
    assert index.base_rows == len(index)
    with Session(corpus) as session:
        for mode in ("hybrid", "bm25", "dense"):
            hits = search(
                session, principal=VIEWER, query="zebrawood boyfriend", mode=mode, top_k=50
            )
            assert all("zebrawood" not in h.text for h in hits)
            assert all(h.pseudonym != "Child C" for h in hits)
        admin_hits = search(session, principal=ADMIN, query="zebrawood", mode="bm25")
    assert admin_hits and admin_hits[0].pseudonym == "Child C"


def test_results_are_identical_to_the_in_memory_index(
    corpus: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = _results(corpus, INDEXES) + _results(corpus, principal=ADMIN)
    monkeypatch.setenv("KB_INDEX_FILES", "false")
    get_settings.cache_clear()
    INDEXES.clear()
    in_memory = _results(corpus, INDEXES) + _results(corpus, principal=ADMIN)
    assert IndexFiles.for_engine(get_settings(), corpus) is None
    assert shared == in_memory
    _ingest_extra(corpus, tmp_path)  # now with a delta on top of the mapped base
    in_memory = _results(corpus) + _results(corpus, principal=ADMIN)
    monkeypatch.setenv("KB_INDEX_FILES", "true")
    get_settings.cache_clear()
    INDEXES.clear()
    shared = _results(corpus) + _results(corpus, principal=ADMIN)
    assert _index(corpus, INDEXES).delta_rows > 0
    assert shared == in_memory


def test_workers_starting_together_build_the_files_once(
    corpus: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    embedder_for().model_id  # noqa: B018 - settle the backend before the race
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            _index(corpus, IndexCache())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors
    assert caplog.text.count("built from the database") == 1


def test_an_unusable_index_folder_falls_back_to_memory(
    corpus: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the index folder should be")
    monkeypatch.setenv("KB_INDEX_DIR", str(blocker))
    get_settings.cache_clear()
    INDEXES.clear()
    with Session(corpus) as session:
        hits = search(session, principal=VIEWER, query="boyfriend", mode="bm25")
    assert hits
    assert _index(corpus, INDEXES).base_rows == 0
