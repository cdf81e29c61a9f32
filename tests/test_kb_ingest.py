"""Ingest service: storage, idempotence, versions, per-file failures, transactions."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from corpus.metadata import AgeBand
from kb.models import Document, Passage, Review, ReviewStatus, ReviewType, TagStatus, ThemeTag
from kb.services.access import Principal
from kb.services.ingest import IngestOptions, ingest_paths
from kb.services.reviews import list_reviews, review_detail

LCSPR = """# Local Child Safeguarding Practice Review: Child K

Published by the Fernhill Safeguarding Children Partnership.

## Background

Child K was a 9-week-old baby living with his mother and her new partner.
The health visitor saw the family twice before the incident.

## Findings

1. Information held by the midwife was not shared with the health visitor.
2. The mother's partner was never assessed by children's social care.

## Recommendations

1. The partnership should audit the transfer of records between midwifery and health visiting.
2. Agencies should record every adult living in the household.
"""

ANNUAL = """# Fernhill Safeguarding Children Partnership Annual Report 2022-23

## Rapid reviews

The Rapid Review Panel considered 3 referrals during the year, as follows:

1. A 4-month-old baby was admitted with a fractured femur. The panel found gaps in how
the GP and the health visitor shared concerns and agreed a local review.
2. A 15-year-old was found with a knife after going missing from home. Learning about
exploitation screening was identified; no further review was required.
3. A 7-year-old was not brought to five dental appointments. Learning about neglect was
shared with schools.

## Training

The partnership delivered twelve courses on neglect this year.
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _count(engine, model) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def test_ingest_stores_review_and_passages_with_offsets(engine, tmp_path: Path) -> None:
    path = _write(tmp_path, "child-k.md", LCSPR)
    report = ingest_paths(engine=engine, paths=[path], options=IngestOptions())
    assert report.failed == [] and len(report.ingested) == 1
    [item] = report.ingested
    with Session(engine) as session:
        document = session.get(Document, item["document_id"])
        review = session.get(Review, item["reviews"][0])
        passages = session.exec(select(Passage).where(Passage.review_id == review.id)).all()
    assert review.type == ReviewType.LCSPR
    assert review.pseudonym == "Child K"
    assert review.status == ReviewStatus.IN_PROGRESS  # the safe default
    assert len(passages) >= 6
    for passage in passages:
        assert document.text[passage.start : passage.end] == passage.text
    kinds = {p.section_kind for p in passages}
    assert {"background", "findings", "recommendations"} <= kinds


def test_reingesting_same_file_changes_nothing(engine, tmp_path: Path) -> None:
    path = _write(tmp_path, "child-k.md", LCSPR)
    ingest_paths(engine=engine, paths=[path])
    before = (_count(engine, Document), _count(engine, Review), _count(engine, Passage))
    report = ingest_paths(engine=engine, paths=[path])
    assert report.ingested == []
    assert report.skipped[0]["reason"].startswith("already ingested")
    assert (_count(engine, Document), _count(engine, Review), _count(engine, Passage)) == before


def test_changed_file_is_new_version_keeping_review_and_decisions(engine, tmp_path: Path) -> None:
    path = _write(tmp_path, "child-k.md", LCSPR)
    first = ingest_paths(engine=engine, paths=[path]).ingested[0]
    review_id = first["reviews"][0]
    with Session(engine) as session:
        passage = session.exec(
            select(Passage).where(Passage.text.contains("never assessed"))  # type: ignore[attr-defined]
        ).one()
        session.add(
            ThemeTag(
                passage_id=passage.id,
                review_id=review_id,
                theme_id="hidden-men",
                status=TagStatus.CONFIRMED,
                decided_by="alice",
                evidence=[
                    {
                        "text": "x",
                        "start": passage.start,
                        "end": passage.end,
                        "passage_start": 0,
                        "passage_end": len(passage.text),
                    }
                ],
            )
        )
        session.commit()
    _write(
        tmp_path,
        "child-k.md",
        LCSPR + "\n## Good practice\n\nThe school nurse escalated quickly.\n",
    )
    second = ingest_paths(engine=engine, paths=[path]).ingested[0]
    assert second["reviews"] == [review_id]
    with Session(engine) as session:
        docs = session.exec(select(Document).order_by(Document.id)).all()
        assert [d.version for d in docs] == [1, 2]
        assert [d.is_current for d in docs] == [False, True]
        tag = session.exec(select(ThemeTag).where(ThemeTag.theme_id == "hidden-men")).one()
        moved = session.get(Passage, tag.passage_id)
        assert moved.document_id == second["document_id"]
        assert tag.status == TagStatus.CONFIRMED and tag.decided_by == "alice"
        assert docs[1].text[tag.evidence[0]["start"] : tag.evidence[0]["end"]] == moved.text
        assert (
            session.exec(
                select(func.count()).select_from(Passage).where(Passage.document_id == docs[0].id)
            ).one()
            == 0
        )


def test_bad_file_fails_alone_and_names_reason(engine, tmp_path: Path) -> None:
    good = _write(tmp_path, "child-k.md", LCSPR)
    empty = _write(tmp_path, "empty.md", "")
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"\x00\x01 definitely not a pdf")
    report = ingest_paths(engine=engine, paths=[empty, good, junk])
    assert [i["path"] for i in report.ingested] == [str(good)]
    failed = {Path(f["path"]).name: f["error"] for f in report.failed}
    assert set(failed) == {"empty.md", "junk.pdf"}
    assert "empty" in failed["empty.md"]
    assert "PDF" in failed["junk.pdf"]


def test_failure_inside_a_document_leaves_nothing_half_stored(engine, tmp_path: Path) -> None:
    good = _write(tmp_path, "a.md", LCSPR)
    ingest_paths(engine=engine, paths=[good])
    before = (_count(engine, Document), _count(engine, Review), _count(engine, Passage))

    def explode(session, passages):  # type: ignore[no-untyped-def]
        raise RuntimeError("interrupted")

    other = _write(tmp_path, "b.md", LCSPR.replace("Child K", "Child L"))
    report = ingest_paths(engine=engine, paths=[other], on_passages=explode)
    assert report.failed and "interrupted" in report.failed[0]["error"]
    assert (_count(engine, Document), _count(engine, Review), _count(engine, Passage)) == before


def test_manifest_and_flags_override_inference(engine, tmp_path: Path) -> None:
    path = _write(tmp_path, "child-k.md", LCSPR)
    options = IngestOptions(
        manifest={
            "child-k.md": {
                "status": "published",
                "pseudonym": "Child K2",
                "partnership": "Manifest SCP",
                "incident_date": "2021-03-04",
            }
        },
        partnership="Flag SCP",
    )
    review_id = ingest_paths(engine=engine, paths=[path], options=options).ingested[0]["reviews"][0]
    with Session(engine) as session:
        [summary] = [
            r for r in list_reviews(session, principal=Principal.system()) if r.id == review_id
        ]
    assert summary.status == ReviewStatus.PUBLISHED
    assert summary.pseudonym == "Child K2"
    assert summary.partnership == "Flag SCP"
    assert summary.year == 2021


def test_annual_report_case_summaries_become_reviews(engine, tmp_path: Path) -> None:
    path = _write(tmp_path, "annual.md", ANNUAL)
    report = ingest_paths(engine=engine, paths=[path])
    reviews = report.ingested[0]["reviews"]
    assert len(reviews) == 4  # the report itself and its three rapid reviews
    with Session(engine) as session:
        rows = [session.get(Review, rid) for rid in reviews]
        assert rows[0].type == ReviewType.ANNUAL_REPORT
        assert [r.type for r in rows[1:]] == [ReviewType.RAPID_REVIEW] * 3
        assert all(r.parent_review_id == rows[0].id for r in rows[1:])
        # each summary's own age, not the report's (which has none)
        assert [r.age_band for r in rows] == [
            None,
            AgeBand.UNDER_1,
            AgeBand.AGE_15_17,
            AgeBand.AGE_5_9,
        ]
        assert rows[0].pseudonym == "Annual report 2022-23"
        second = review_detail(session, principal=Principal.system(), review_id=rows[2].id)
    text = " ".join(p["text"] for s in second["sections"] for p in s["passages"])
    assert "knife" in text and "fractured" not in text and "dental" not in text


def test_hidden_reviews_are_not_listed_for_viewers(engine, tmp_path: Path) -> None:
    a = _write(tmp_path, "a.md", LCSPR)
    b = _write(tmp_path, "b.md", LCSPR.replace("Child K", "Child M"))
    ingest_paths(engine=engine, paths=[a], options=IngestOptions(status=ReviewStatus.PUBLISHED))
    ingest_paths(engine=engine, paths=[b], options=IngestOptions(status=ReviewStatus.EMBARGOED))
    with Session(engine) as session:
        viewer = [r.pseudonym for r in list_reviews(session, principal=Principal.anonymous())]
        admin = [r.pseudonym for r in list_reviews(session, principal=Principal.system())]
    assert viewer == ["Child K"]
    assert sorted(admin) == ["Child K", "Child M"]


@pytest.mark.parametrize("name", ["notes.xyz"])
def test_unsupported_files_in_folders_are_skipped(engine, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    _write(folder, "child-k.md", LCSPR)
    _write(folder, name, "whatever")
    _write(folder, "manifest.yaml", "{}")
    report = ingest_paths(engine=engine, paths=[folder])
    assert len(report.ingested) == 1
    assert report.skipped == [{"path": str(folder / name), "reason": "unsupported file type"}]
