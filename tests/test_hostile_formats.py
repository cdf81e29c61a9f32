"""Hostile input read in bounded time and memory, and hostile upload names.

Pathological text, zip and XML bombs, external entities, and client-chosen file names; the
builders are in tests/hostile_builders.py.
"""

from __future__ import annotations

import io
import random
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corpus.document import ReaderError
from corpus.readers import read_document
from corpus.readers.docx import MAX_XML_BYTES
from corpus.segment import segment
from corpus.sentences import sentence_spans
from kb.config import get_settings
from kb.db import get_engine
from kb.services.uploads import store_uploads
from tests.hostile_builders import (
    OTHER_REVIEW,
    _docx_with_body,
    _lying_zip_bomb,
    _zip_bomb,
    build_hostile,
)
from tests.web_support import api_csrf

pytest_plugins = ["tests.web_fixtures"]

# --- pathological text is processed in bounded time -----------------------------------------

PATHOLOGICAL = {
    # A cubic regex backtrack in Markdown-heading detection (52 s before the fix).
    "spaces.txt": "Findings\n\n# a" + " " * 3000 + "b\n",
    "tabs.txt": "# a" + "\t \t" * 1000 + "b\n",
    # spaCy's tokenizer strips runs of prefix punctuation quadratically (~20 s each before).
    "rule.txt": "Findings\n\nThe baby was not seen.\n\n" + "=" * 8000 + "\n",
    "brackets.md": "# Findings\n\n" + "[" * 8000 + "\n",
    "underscores.md": "# Findings\n\nSign here: " + "_" * 8000 + "\n",
    # lexbor walks the stack of open elements for every start tag (minutes before).
    "divs.html": "<div>" * 100_000 + "Child Q",
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_input_is_read_and_segmented_quickly(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(PATHOLOGICAL[name], encoding="utf-8")
    started = time.perf_counter()
    try:
        doc = read_document(path)
    except ReaderError as exc:
        assert name == "divs.html" and "nested more than" in exc.reason
    else:
        for section in segment(doc):
            for passage in section.passages:
                assert doc.text[passage.start : passage.end] == passage.text
                sentence_spans(passage.text)
    assert time.perf_counter() - started < 5


# --- zip bombs are refused without inflating them -------------------------------------------


@pytest.mark.parametrize("builder", [_zip_bomb, _lying_zip_bomb], ids=["declared", "lying"])
def test_zip_bomb_is_refused_in_bounded_memory(
    builder: Callable[[Path], None], tmp_path: Path
) -> None:
    path = tmp_path / "bomb.docx"
    builder(path)
    assert path.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ReaderError) as info:
            read_document(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "zip bomb" in info.value.reason
    assert peak < 10_000_000, f"peak {peak / 1e6:.0f} MB while refusing a bomb"


def test_docx_with_too_much_xml_is_refused(tmp_path: Path) -> None:
    """Under the bomb ratio but more XML than lxml should be asked to build a tree for."""
    megabytes = MAX_XML_BYTES // 1_000_000 + 5

    def incompressible(handle: Any) -> None:
        rng = random.Random(1)
        handle.write(b'<?xml version="1.0"?><!-- ')
        for _ in range(megabytes):
            handle.write(rng.randbytes(500_000).hex().encode()[:1_000_000])
        handle.write(b' --><w:document xmlns:w="x"/>')

    path = tmp_path / "huge.docx"
    path.write_bytes(_docx_with_body(incompressible))
    with pytest.raises(ReaderError) as info:
        read_document(path, max_bytes=200_000_000)
    assert info.value.reason == f"DOCX holds {megabytes} MB of XML, too much to parse"


WORD_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _entity_docx(path: Path, declarations: str, reference: str) -> Path:
    body = (
        f'<?xml version="1.0"?><!DOCTYPE w:document [{declarations}]>'
        f'<w:document xmlns:w="{WORD_NS}"><w:body>'
        "<w:p><w:r><w:t>Child M was seen by the health visitor.</w:t></w:r></w:p>"
        f"<w:p><w:r><w:t>Note {reference} ends.</w:t></w:r></w:p>"
        "</w:body></w:document>"
    ).encode()
    path.write_bytes(_docx_with_body(lambda handle: handle.write(body)))
    return path


def test_docx_billion_laughs_is_refused(tmp_path: Path) -> None:
    laughs = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    path = _entity_docx(tmp_path / "laughs.docx", laughs, "&l9;")
    with pytest.raises(ReaderError) as info:
        read_document(path)
    assert info.value.reason.startswith("corrupt DOCX: XMLSyntaxError")


def test_docx_external_entity_is_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    declaration = f'<!ENTITY xxe SYSTEM "file://{secret}">'
    doc = read_document(_entity_docx(tmp_path / "xxe.docx", declaration, "&xxe;"))
    assert "Child M was seen by the health visitor." in doc.text
    assert "TOP-SECRET" not in doc.text


# --- uploads: client-chosen names never become paths ----------------------------------------

HOSTILE_NAMES = [
    "../../etc/passwd.md",
    "..\\..\\windows\\system.ini.md",
    "/etc/shadow.md",
    "....//....//secret.md",
    "%2e%2e%2fencoded.md",
    "nul\x00byte.md.pdf",
    "\u202egpj.md",
    ".bashrc",
    "..",
    "",
    None,
    "a" * 5000 + ".md",
    "review.md",
    "review.md",
]


def test_store_uploads_keeps_every_hostile_name_inside_its_folder(kb_env: Path) -> None:
    settings = get_settings()
    streams = [(name, io.BytesIO(OTHER_REVIEW.encode())) for name in HOSTILE_NAMES]
    batch = store_uploads(streams, settings=settings)
    try:
        names = [f.name for f in batch.files]
        assert len(set(names)) == len(HOSTILE_NAMES)  # duplicates renamed, nothing overwritten
        assert names[:3] == ["passwd.md", "system.ini.md", "shadow.md"]
        for stored in batch.files:
            assert stored.path.parent == batch.folder
            assert stored.path.resolve().parent == batch.folder
            assert not set(stored.name) & set("/\\\x00\u202e")
            assert not stored.name.startswith(".") and len(stored.name) <= 111
            assert stored.path.read_text(encoding="utf-8") == OTHER_REVIEW
        everything = {p.resolve() for p in settings.home.rglob("*") if p.is_file()}
        assert everything == {f.path for f in batch.files}
        assert batch.folder.stat().st_mode & 0o077 == 0
    finally:
        batch.cleanup()
    assert not batch.folder.exists()


def test_upload_route_refuses_hostile_files_per_file(clients: Any, tmp_path: Path) -> None:
    """The API upload reports each bad file by its safe name and reason, never a server path."""
    hostile = tmp_path / "hostile"
    expected = build_hostile(hostile)
    del expected["huge.pdf"]  # a 200 MB body is the route's 413, tested in test_api_upload
    files = [
        ("files", (f"../../{name}", (hostile / name).read_bytes(), "application/octet-stream"))
        for name in expected
    ]
    files.append(("files", ("..\\..\\child-r.md", OTHER_REVIEW.encode(), "text/markdown")))
    c = clients["admin"]
    response = c.post("/api/documents", files=files, headers=api_csrf(c))
    assert response.status_code == 202, response.text
    from kb.services import jobs

    jobs.run_pending(get_engine(), settings=get_settings())  # what the worker does
    response = c.get(response.headers["location"])
    body = response.json()
    assert body["state"] == "done"
    assert [item["path"] for item in body["ingested"]] == ["child-r.md"]
    errors = {item["path"]: item["error"] for item in body["failed"]}
    assert errors.keys() == expected.keys()
    for name, reason in expected.items():
        assert reason in errors[name], (name, errors[name])
    home = str(get_settings().home)
    assert home not in response.text and "/tmp" not in response.text
    assert not any((get_settings().home / "uploads").rglob("*.*"))
