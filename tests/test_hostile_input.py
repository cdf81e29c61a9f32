"""Hostile and broken input through ``kb ingest`` and the upload service.

Every malformed file is built here, in tmp_path (no binaries are checked in). The contract for
each: one line on stderr naming the file and the reason, a non-zero exit, the good files of the
same run ingested, and what was stored before left exactly as it was.
"""

from __future__ import annotations

import io
import json
import random
import struct
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docx
import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from corpus.document import ReaderError
from corpus.readers import read_document
from corpus.readers.docx import MAX_XML_BYTES
from corpus.segment import segment
from corpus.sentences import sentence_spans
from kb.cli import app
from kb.config import get_settings
from kb.db import get_engine
from kb.models import (
    Document,
    Finding,
    Partnership,
    Passage,
    Recommendation,
    Review,
    TagStatus,
    ThemeTag,
)
from kb.services.ingest import ingest_paths
from kb.services.uploads import store_uploads
from tests.web_support import api_csrf

pytest_plugins = ["tests.web_fixtures"]

STORED_REVIEW = """# Serious Case Review: Child P

Harrowby Safeguarding Children Board

## Background

Child P was a 10-week-old baby. Her mother's new partner moved into the home in May; he was
never spoken to by the health visitor or the social worker.

## Findings

1. Agencies did not share information about the partner's history of domestic abuse.
2. Neglect of the baby's health needs was not recognised by the GP.

## Recommendations

1. The board should ensure that every adult in the household is identified and assessed.
"""

OTHER_REVIEW = """# Local Child Safeguarding Practice Review: Child R

## Findings

1. The school did not share its concerns about Child R's weight loss with the health service.

## Recommendations

1. Schools should refer concerns about neglect to the early help team within one day.
"""

PARA = (
    "The health visitor saw Child M at home and noted that the family had moved twice in a "
    "year. Information was not shared with the school nurse."
)


@pytest.fixture
def runner(kb_env: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("KB_EMBED_ON_INGEST", "false")
    get_settings.cache_clear()
    return CliRunner()


# --- builders ---------------------------------------------------------------------------------


def _pdf_bytes(paragraphs: list[str]) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    for text in paragraphs:
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    return bytes(pdf.output())


def _encrypted_pdf(path: Path) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf_bytes([PARA]))))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    with path.open("wb") as handle:
        writer.write(handle)


def _scanned_pdf(path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 100, style="F")  # graphics only, as a scanned page looks to pypdf
    pdf.output(str(path))


def _docx_bytes(paragraphs: list[str]) -> bytes:
    document = docx.Document()
    document.add_heading("Rapid Review: Child M", level=0)
    for text in paragraphs:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _docx_with_body(extra_xml: Callable[[Any], None]) -> bytes:
    """A real DOCX whose word/document.xml is streamed through ``extra_xml(handle)``."""
    source = zipfile.ZipFile(io.BytesIO(_docx_bytes([PARA])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            if info.filename == "word/document.xml":
                with archive.open("word/document.xml", "w") as handle:
                    extra_xml(handle)
            else:
                archive.writestr(info, source.read(info))
    return out.getvalue()


def _zeros_comment(megabytes: int) -> Callable[[Any], None]:
    """XML that compresses about 1000:1 (an XML comment full of one letter)."""

    def write(handle: Any) -> None:
        handle.write(b'<?xml version="1.0"?><!-- ')
        chunk = b"a" * 1_000_000
        for _ in range(megabytes):
            handle.write(chunk)
        handle.write(b' --><w:document xmlns:w="x"/>')

    return write


def _zip_bomb(path: Path) -> None:
    """A 120 MB document.xml in a ~120 KB archive: declared sizes give it away."""
    path.write_bytes(_docx_with_body(_zeros_comment(120)))


def _lying_zip_bomb(path: Path) -> None:
    """The same bomb, but the headers claim document.xml is 1,000 bytes."""
    raw = bytearray(_docx_with_body(_zeros_comment(120)))
    name = b"word/document.xml"
    at = raw.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack("<H", raw[at + 28 : at + 30])[0]
        if raw[at + 46 : at + 46 + name_len] == name:
            raw[at + 24 : at + 28] = struct.pack("<I", 1000)  # central directory size
            local = struct.unpack("<I", raw[at + 42 : at + 46])[0]
            raw[local + 22 : local + 26] = struct.pack("<I", 1000)  # local header size
        at = raw.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(raw))


def _raw_pdf(objects: list[bytes]) -> bytes:
    """A minimal PDF from object bodies (object 1 is the catalog), with a correct xref."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return bytes(out + trailer.encode())


def _pdf_pages(kids: bytes, content: bytes) -> bytes:
    """Catalog, page tree with ``kids``, one page (object 3) drawing ``content`` (deflated)."""
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (
        len(content),
        content,
    )
    return _raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            stream,
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def _pdf_stream_bomb(path: Path) -> None:
    """A page whose content stream inflates to 100 MB (pypdf stops at its own limit)."""
    deflate = zlib.compressobj(9)
    data = deflate.compress(b"BT /F1 12 Tf 72 712 Td (Child Z was seen at home) Tj ET\n")
    spaces = b" " * 1_000_000
    data += b"".join(deflate.compress(spaces) for _ in range(100)) + deflate.flush()
    path.write_bytes(_pdf_pages(b"3 0 R", data))


def _pdf_page_cycle(path: Path) -> None:
    """A page tree that contains itself: a naive reader walks it forever."""
    text = zlib.compress(b"BT /F1 12 Tf 72 712 Td (Child Z was seen at home by the GP) Tj ET\n")
    path.write_bytes(_pdf_pages(b"2 0 R 3 0 R", text))


def _sparse(path: Path, size: int) -> None:
    """A file that claims ``size`` bytes without writing them (a hole on every real FS)."""
    with path.open("wb") as handle:
        handle.truncate(size)


def build_hostile(folder: Path) -> dict[str, str]:
    """Write every hostile file into ``folder``; returns name -> expected reason fragment."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    (folder / "empty.md").write_bytes(b"")
    (folder / "blank.txt").write_bytes(b" \r\n\t\n   \r\n")
    (folder / "truncated.pdf").write_bytes(_pdf_bytes([PARA] * 6)[:400])
    _encrypted_pdf(folder / "locked.pdf")
    _scanned_pdf(folder / "scanned.pdf")
    _pdf_stream_bomb(folder / "stream-bomb.pdf")
    _pdf_page_cycle(folder / "cycle.pdf")
    _zip_bomb(folder / "bomb.docx")
    _lying_zip_bomb(folder / "liar.docx")
    (folder / "letter.docx").write_bytes(b"Dear colleague, this was never a Word file.\n")
    (folder / "junk.pdf").write_bytes(rng.randbytes(4096))
    mixed = "# Caf\u00e9 review \u2013 Child Q\n\n".encode()
    (folder / "mixed.md").write_bytes(mixed + b"\xff\xfe")
    (folder / "binary.txt").write_bytes(b"MZ\x90\x00\x03\x00\x00\x00" + rng.randbytes(512))
    (folder / "deep.html").write_text("<div>" * 5000 + "Child Q", encoding="utf-8")
    (folder / "notes.xyz").write_text("Child Q was seen at school.", encoding="utf-8")
    _sparse(folder / "huge.pdf", 200_000_000)
    return {
        "empty.md": "empty file",
        "blank.txt": "empty file (whitespace only)",
        "truncated.pdf": "corrupt or truncated PDF",
        "locked.pdf": "encrypted PDF",
        "scanned.pdf": "PDF has no text layer",
        "stream-bomb.pdf": "corrupt or truncated PDF: Limit reached while decompressing",
        "cycle.pdf": "corrupt or truncated PDF: Detected cyclic page references",
        "bomb.docx": "DOCX expands to 120 MB (zip bomb?)",
        "liar.docx": "larger than it declares (zip bomb?)",
        "letter.docx": "not a DOCX (zip) file",
        "junk.pdf": "not a PDF file",
        "mixed.md": f"not valid UTF-8 (byte 0xff at offset {len(mixed)}; damaged or mixed",
        "binary.txt": "binary data, not text",
        "deep.html": "HTML is nested more than 256 levels deep",
        "notes.xyz": "unsupported file type .xyz",
        "huge.pdf": "file is 200 MB, over the 50 MB limit",
    }


# --- what is stored -----------------------------------------------------------------------------


def stored_state(engine: Engine, document_ids: set[int]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that belongs to ``document_ids``, in a comparable shape."""
    with Session(engine) as session:
        docs = session.exec(select(Document).where(col(Document.id).in_(document_ids))).all()
        reviews = session.exec(select(Review).where(col(Review.document_id).in_(document_ids)))
        review_rows = list(reviews)
        review_ids = [r.id for r in review_rows]
        passages = session.exec(
            select(Passage).where(col(Passage.document_id).in_(document_ids)).order_by(Passage.id)
        ).all()
        tags = session.exec(
            select(ThemeTag)
            .where(col(ThemeTag.passage_id).in_([p.id for p in passages]))
            .order_by(ThemeTag.id)
        ).all()
        findings = session.exec(select(Finding).where(col(Finding.review_id).in_(review_ids)))
        recs = session.exec(
            select(Recommendation).where(col(Recommendation.review_id).in_(review_ids))
        )
        return {
            "documents": [
                (d.id, d.source_name, d.sha256, d.version, d.is_current, d.text) for d in docs
            ],
            "reviews": [
                (r.id, r.document_id, r.pseudonym, r.type, r.status, r.version_id)
                for r in review_rows
            ],
            "passages": [
                (p.id, p.review_id, p.order, p.section_title, p.kind, p.start, p.end, p.text)
                for p in passages
            ],
            "tags": [(t.passage_id, t.theme_id, t.status, t.confidence) for t in tags],
            "findings": sorted((f.id, f.passage_id, f.text) for f in findings),
            "recommendations": sorted((r.id, r.passage_id, r.text) for r in recs),
        }


def all_documents(engine: Engine) -> list[Document]:
    with Session(engine) as session:
        return list(session.exec(select(Document).order_by(Document.id)).all())


def ingest_stored_review(runner: CliRunner, tmp_path: Path) -> tuple[Engine, set[int]]:
    """Ingest the good review every test protects; returns the engine and its document ids."""
    stored = tmp_path / "stored" / "child-p.md"
    stored.parent.mkdir()
    stored.write_text(STORED_REVIEW, encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(stored), "--status", "published"])
    assert result.exit_code == 0, result.output
    engine = get_engine()
    ids = {d.id for d in all_documents(engine) if d.id is not None}
    assert len(ids) == 1
    return engine, ids


def _count(engine: Engine, model: type[Any]) -> int:
    with Session(engine) as session:
        return len(session.exec(select(model)).all())


def failure_lines(stderr: str, path: Path) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"failed {path}: ")]


# --- the hostile corpus through kb ingest -----------------------------------------------------


def test_every_hostile_file_fails_alone_and_nothing_else_moves(
    runner: CliRunner, tmp_path: Path
) -> None:
    engine, stored_ids = ingest_stored_review(runner, tmp_path)
    before = stored_state(engine, stored_ids)
    assert before["passages"] and before["tags"], "the protected review must have tags"

    hostile = tmp_path / "hostile"
    expected = build_hostile(hostile)
    # A hostile file with the stored review's name must not supersede it.
    (hostile / "again").mkdir()
    same_name = hostile / "again" / "child-p.md"
    same_name.write_bytes(STORED_REVIEW.encode() + "\u2013 tail ".encode() + b"\xc3\x28\n")
    good = tmp_path / "good"
    good.mkdir()
    (good / "child-r.md").write_text(OTHER_REVIEW, encoding="utf-8")
    (good / "child-m.pdf").write_bytes(_pdf_bytes([PARA] * 2))
    (good / "child-m.docx").write_bytes(_docx_bytes([PARA]))

    bad_paths = [hostile / name for name in expected] + [same_name]
    args = [str(p) for p in bad_paths[:7]] + [str(good)] + [str(p) for p in bad_paths[7:]]
    result = runner.invoke(app, ["ingest", *args])

    assert result.exit_code == 1, result.output
    problems = []
    for name, reason in [*expected.items(), ("again/child-p.md", "not valid UTF-8")]:
        path = hostile / name
        lines = failure_lines(result.stderr, path)
        if len(lines) != 1 or reason not in lines[0]:
            problems.append(f"{name}: expected one line with {reason!r}, got {lines}")
    assert not problems, "\n".join(problems) + "\n" + result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"3 ingested, 0 skipped, {len(bad_paths)} failed"
    )
    assert "Traceback" not in result.output

    # The good files of the same run are in; nothing of a hostile file is.
    documents = all_documents(engine)
    names = sorted(d.source_name for d in documents)
    assert names == ["child-m.docx", "child-m.pdf", "child-p.md", "child-r.md"]
    assert stored_state(engine, stored_ids) == before


def test_json_report_lists_each_failure_with_its_reason(runner: CliRunner, tmp_path: Path) -> None:
    expected = build_hostile(tmp_path / "hostile")
    (tmp_path / "good.md").write_text(OTHER_REVIEW, encoding="utf-8")
    paths = [str(tmp_path / "hostile" / name) for name in expected]
    result = runner.invoke(app, ["ingest", *paths, str(tmp_path / "good.md"), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [Path(item["path"]).name for item in report["ingested"]] == ["good.md"]
    errors = {Path(item["path"]).name: item["error"] for item in report["failed"]}
    assert set(errors) == set(expected)
    for name, reason in expected.items():
        assert reason in errors[name]
        assert "\n" not in errors[name] and len(errors[name]) <= 300


def test_unsupported_file_inside_a_folder_is_skipped_not_read(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Folders hold all sorts of files: unsupported ones are reported as skipped, exit 0."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "child-r.md").write_text(OTHER_REVIEW, encoding="utf-8")
    (folder / "notes.xyz").write_bytes(b"\x00\x01 not looked at")
    result = runner.invoke(app, ["ingest", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"skipped {folder / 'notes.xyz'}: unsupported file type" in result.stderr


def test_size_limit_comes_from_settings(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KB_MAX_FILE_MB", "1")
    get_settings.cache_clear()
    big = tmp_path / "big.md"
    _sparse(big, 2_000_000)
    small = tmp_path / "child-r.md"
    small.write_text(OTHER_REVIEW, encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(big), str(small)])
    assert result.exit_code == 1
    [line] = failure_lines(result.stderr, big)
    assert line.endswith("file is 2 MB, over the 1 MB limit")
    assert [d.source_name for d in all_documents(get_engine())] == ["child-r.md"]


def test_reader_reasons_are_one_printable_line() -> None:
    """Parsers quote file bytes in their messages; a reason must not smuggle escapes out."""
    error = ReaderError(
        "x.pdf", "bad object b'\x1b[31mred\x1b[0m'\r\nsecond\u2028line\x00" + "y" * 999
    )
    assert "\x1b" not in error.reason and "\n" not in error.reason and "\x00" not in error.reason
    assert error.reason.startswith("bad object b' [31mred [0m' second line y")
    assert len(error.reason) == 300
    assert str(error) == f"x.pdf: {error.reason}"


def test_paths_that_look_like_markup_are_printed_verbatim(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A folder called "a [/b]" or a file "Review [final].md" must not crash or vanish."""
    folder = tmp_path / "a [" / "b]"
    folder.mkdir(parents=True)
    (folder / "Review [final].md").write_text(OTHER_REVIEW, encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(tmp_path / "a [")])
    assert result.exception is None and result.exit_code == 0, result.output
    assert f"ingested {folder / 'Review [final].md'} " in result.stderr


# --- interrupted ingest ----------------------------------------------------------------------


class SimulatedCrash(RuntimeError):
    pass


def _crashing_hook_factory(
    seen: list[int], error: type[BaseException] = SimulatedCrash
) -> Callable[..., Callable[[Session, list[Passage]], None]]:
    """A passage_hook replacement: tags for real, checks the rows exist, then raises."""
    from kb.services.analysis import passage_hook as real_factory

    def factory(settings: Any, **kwargs: Any) -> Callable[[Session, list[Passage]], None]:
        real = real_factory(settings, **kwargs)

        def hook(session: Session, passages: list[Passage]) -> None:
            real(session, passages)
            session.flush()
            assert all(p.id is not None for p in passages)  # passages are in the database
            document_id = passages[0].document_id
            stored = session.exec(select(Passage).where(Passage.document_id == document_id))
            seen.append(len(stored.all()))
            raise error("simulated crash after passages were flushed")

        return hook

    return factory


def test_crash_inside_the_transaction_leaves_no_half_document(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, stored_ids = ingest_stored_review(runner, tmp_path)
    with Session(engine) as session:  # a human decision that a new version must not lose
        tag = session.exec(select(ThemeTag)).first()
        assert tag is not None
        tag.status = TagStatus.CONFIRMED
        session.add(tag)
        session.commit()
    before = stored_state(engine, stored_ids)
    partnerships = _count(engine, Partnership)

    seen: list[int] = []
    monkeypatch.setattr("kb.cli.corpus.passage_hook", _crashing_hook_factory(seen))
    new = tmp_path / "new" / "child-r.md"
    new.parent.mkdir()
    new.write_text(OTHER_REVIEW.replace("Child R", "Child R of Elmbury Partnership"))
    changed = tmp_path / "v2" / "child-p.md"  # a new version of the stored review
    changed.parent.mkdir()
    changed.write_text(STORED_REVIEW + "\n## Learning\n\nA new finding was added.\n")
    result = runner.invoke(app, ["ingest", str(new), str(changed), "--partnership", "Elmbury"])

    assert result.exit_code == 1
    assert len(seen) == 2 and all(n > 0 for n in seen)
    for path in (new, changed):
        [line] = failure_lines(result.stderr, path)
        assert "SimulatedCrash: simulated crash after passages were flushed" in line
    assert [d.id for d in all_documents(engine)] == sorted(stored_ids)
    assert stored_state(engine, stored_ids) == before  # v1 still current, decision kept
    assert _count(engine, Partnership) == partnerships


def test_interrupt_stops_the_run_and_rolls_back_the_document(
    engine: Engine, tmp_path: Path
) -> None:
    """Ctrl-C is not swallowed like a bad file, but its document is still all-or-nothing."""
    first = tmp_path / "child-r.md"
    first.write_text(OTHER_REVIEW, encoding="utf-8")
    second = tmp_path / "child-p.md"
    second.write_text(STORED_REVIEW, encoding="utf-8")

    def interrupt(session: Session, passages: list[Passage]) -> None:
        session.flush()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_paths(engine=engine, paths=[first, second], on_passages=interrupt)
    assert all_documents(engine) == []
    with Session(engine) as session:
        assert session.exec(select(Passage)).all() == []
        assert session.exec(select(Review)).all() == []


def test_unexpected_error_is_reported_on_one_short_line(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Database errors carry the SQL and its parameters (document text): not in the report."""

    def explode(*args: Any, **kwargs: Any) -> None:
        raise SimulatedCrash("first line of the reason\n[SQL: INSERT secret text]\n" + "x" * 999)

    monkeypatch.setattr("kb.services.ingest.extract_findings", explode)
    path = tmp_path / "child-r.md"
    path.write_text(OTHER_REVIEW, encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(path), "--json"])
    assert result.exit_code == 1
    [failed] = json.loads(result.stdout)["failed"]
    assert failed["error"] == "SimulatedCrash: first line of the reason"
    assert all_documents(get_engine()) == []


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
    from kb.db import get_engine
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
