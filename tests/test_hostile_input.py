"""Hostile and broken input through ``kb ingest`` and the upload service.

Every malformed file is built here, in tmp_path (no binaries are checked in). The contract for
each: one line on stderr naming the file and the reason, a non-zero exit, the good files of the
same run ingested, and what was stored before left exactly as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from corpus.document import ReaderError
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
from tests.hostile_builders import (
    OTHER_REVIEW,
    PARA,
    _docx_bytes,
    _pdf_bytes,
    _sparse,
    build_hostile,
)

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


@pytest.fixture
def runner(kb_env: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("KB_EMBED_ON_INGEST", "false")
    get_settings.cache_clear()
    return CliRunner()


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

    monkeypatch.setattr("kb.services.ingest_write.store_learning", explode)
    path = tmp_path / "child-r.md"
    path.write_text(OTHER_REVIEW, encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(path), "--json"])
    assert result.exit_code == 1
    [failed] = json.loads(result.stdout)["failed"]
    assert failed["error"] == "SimulatedCrash: first line of the reason"
    assert all_documents(get_engine()) == []
