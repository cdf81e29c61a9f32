"""``kb export-all`` / ``kb import-all``: the whole knowledge base survives a round trip exactly,
and a bad file or a populated target changes nothing.

The knowledge base built here must have at least one row in every table (test below): a table
added to kb/models.py then fails the suite until it has a row here (so its round trip is
tested) or is named in ``EXCLUDED_TABLES`` with a reason.
"""

from __future__ import annotations

import hmac
import json
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Column, MetaData, Numeric, Table, create_engine, text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select
from typer.testing import CliRunner

from kb import db as kb_db
from kb.cli import app
from kb.config import backup_key, get_settings
from kb.db import init_db, make_engine, session_scope
from kb.models import (
    ActionCreate,
    ActionStatus,
    AuditEvent,
    Briefing,
    Case,
    ImpactRating,
    Partnership,
    Passage,
    Recommendation,
    Review,
    ReviewStatus,
    Role,
    TagStatus,
    ThemeTag,
    TrainingCourseCreate,
    TrainingSessionCreate,
    utcnow,
)
from kb.services import audit
from kb.services.access import Principal
from kb.services.analysis import passage_hook
from kb.services.backup import (
    EXCLUDED_TABLES,
    FORMAT_VERSION,
    SIGNATURE,
    BackupError,
    _codec,
    export_all,
    import_all,
)
from kb.services.embedding import to_bytes
from kb.services.ingest import IngestOptions, ingest_paths
from kb.services.tagging import decide_tag
from kb.services.tracker import create_action, create_course, create_session
from kb.services.users import authenticate, create_user, revoke_session
from tests.conftest import BACKEND

pytest_plugins = ["tests.web_fixtures"]  # fast_hashing

SECRET = "backup-test-password-1"
PARTNERSHIP = "Westmarch Safeguarding Children Partnership"

REVIEW = """# Local Child Safeguarding Practice Review: Child W

Westmarch Safeguarding Children Partnership

## Background

Child W was a 7-month-old baby living with her mother. The mother's new partner moved into the
home in the spring; he was never seen by the health visitor and his history of domestic abuse
was not known to children's social care.

## Findings

1. Agencies did not share information about the partner's previous convictions.
2. Practitioners did not ask who else lived in the household or cared for the baby.

## Recommendations

1. The partnership should ensure that every adult in the household is identified and assessed.
2. Health visitors should record the names of all adults seen at home visits.
"""

LATER = """# Rapid Review: Child X

Westmarch Safeguarding Children Partnership

## Findings

1. Information about neglect was not shared between school and the GP practice.
"""


# --------------------------------------------------------------------------- fixtures


@dataclass
class Target:
    url: str
    engine: Engine


@pytest.fixture
def target(tmp_path: Path, pg_server: Any, kb_env: Path) -> Iterator[Target]:
    """A second, empty, migrated database on the same backend as ``engine``."""
    admin = None
    if pg_server is None:
        url = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    else:
        name = f"kbt_{uuid.uuid4().hex[:12]}"
        admin = create_engine(pg_server.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = pg_server.url_for(name)
    engine = make_engine(url)
    init_db(engine)
    yield Target(url, engine)
    engine.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def quiet_ingest(kb_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No embedding model: vectors are set by hand (the backup only has to carry the bytes)."""
    monkeypatch.setenv("KB_EMBED_ON_INGEST", "false")
    get_settings.cache_clear()


def _ingest(engine: Engine, folder: Path, name: str, body: str) -> list[int]:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(body, encoding="utf-8")
    report = ingest_paths(
        engine=engine,
        paths=[path],
        options=IngestOptions(partnership=PARTNERSHIP, status=ReviewStatus.EMBARGOED),
        on_passages=passage_hook(get_settings(), embed=False),
    )
    assert not report.failed, report.failed
    return report.ingested[0]["reviews"]


def build_kb(engine: Engine, folder: Path) -> None:
    """A small knowledge base touching every table."""
    [review_id] = _ingest(engine, folder, "child-w.md", REVIEW)
    system = Principal.system()
    with session_scope(engine) as session:
        _embed_by_hand(session)
        _decide_two_tags(session, system)
        _add_case_and_sibling(session, review_id)
        _add_tracker_rows(session, system)
        _add_briefing(session, review_id)
        _add_users(session)
        audit.record(
            session,
            principal=system,
            action="review.view",
            object_type="review",
            object_id=review_id,
            detail={"status": "embargoed", "via": "test"},
        )


def _embed_by_hand(session: Session) -> None:
    """Distinct 8-d vectors on every passage: the ingest ran without a model, and the backup
    only has to carry the bytes."""
    passages = session.exec(select(Passage).order_by(col(Passage.id))).all()
    for i, passage in enumerate(passages):
        passage.embedding = to_bytes(np.linspace(-1.0, 1.0, 8) * (i + 1))
        passage.embedding_model = "hand-made-8d"
        session.add(passage)


def _decide_two_tags(session: Session, system: Principal) -> None:
    """One confirmed and one rejected tag, so decisions (who, when) round-trip too."""
    tags = session.exec(select(ThemeTag).order_by(col(ThemeTag.id))).all()
    assert len(tags) >= 2
    decide_tag(session, principal=system, tag_id=_id(tags[0].id), status=TagStatus.CONFIRMED)
    decide_tag(session, principal=system, tag_id=_id(tags[1].id), status=TagStatus.REJECTED)


def _add_case_and_sibling(session: Session, review_id: int) -> None:
    """A case linking the review to a sibling review that points back at it: the
    self-referencing and case foreign keys must survive the import order."""
    review = session.get(Review, review_id)
    assert review is not None
    case = Case(label="Child W", partnership_id=review.partnership_id)
    session.add(case)
    session.flush()
    review.case_id, review.case_source = case.id, "person"
    session.add(
        Review(
            document_id=review.document_id,
            partnership_id=review.partnership_id,
            parent_review_id=review.id,
            pseudonym="Child W (sibling)",
            incident_date=date(2023, 4, 2),
            year=2023,
            status=ReviewStatus.PUBLISHED,
            case_id=case.id,
            case_source="person",
        )
    )


def _add_tracker_rows(session: Session, system: Principal) -> None:
    """An action on the first recommendation, a course linked to it and one training session:
    the tracker's rows and their link tables."""
    rec = session.exec(select(Recommendation).order_by(col(Recommendation.id))).first()
    assert rec is not None and rec.id is not None
    action = create_action(
        session,
        principal=system,
        data=ActionCreate(
            ref="WM-01",
            agency="Health",
            description="Add 'who else lives here?' to the health visiting template.",
            due_date=date(2024, 3, 31),
            status=ActionStatus.COMPLETED,
            completed_date=date(2024, 2, 20),
            impact_evidence="Audit of 40 records: 38 name every adult.",
            impact_rating=ImpactRating.SOME,
            recommendation_ids=[rec.id],
            theme_ids=["hidden-men"],
        ),
    )
    course = create_course(
        session,
        data=TrainingCourseCreate(
            ref="TC-01",
            title="Seeing the whole household",
            provider="Westmarch learning hub",
            theme_ids=["hidden-men", "information-sharing"],
            action_ids=[action.id],
        ),
    )
    create_session(
        session,
        data=TrainingSessionCreate(
            ref="TS-01",
            course_id=course.id,
            held_on=date(2024, 5, 14),
            attendance=23,
            pre_score=2.4,
            post_score=3.9,
        ),
    )


def _add_briefing(session: Session, review_id: int) -> None:
    """A restricted briefing with JSON sections, so JSON columns round-trip."""
    session.add(
        Briefing(
            title="7-minute briefing: Child W",
            review_id=review_id,
            sections=[{"heading": "Why it matters", "items": [{"text": "Ask who lives here."}]}],
            restricted=True,
            created_by="system",
        )
    )


def _add_users(session: Session) -> None:
    """A panel member who must still log in after the restore, a deactivated admin who must
    not, and a revoked session whose cookie must stay dead."""
    create_user(
        session, username="wendy", password=SECRET, role=Role.PANEL, partnership=PARTNERSHIP
    )
    former = create_user(session, username="former.admin", password=SECRET, role=Role.ADMIN)
    former.active = False
    session.add(former)
    revoke_session(session, sid="logged-out-session", until=utcnow() + timedelta(hours=8))


def _id(value: int | None) -> int:
    assert value is not None
    return value


def dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every backed-up table, in primary-key order (typed values, as the ORM reads
    them)."""
    with engine.connect() as conn:
        return {
            t.name: [
                dict(row)
                for row in conn.execute(sa_select(t).order_by(*t.primary_key.columns)).mappings()
            ]
            for t in SQLModel.metadata.sorted_tables
            if t.name not in EXCLUDED_TABLES
        }


def rewrite(
    src: Path,
    dst: Path,
    edit: Callable[[dict[str, Any], dict[str, bytes]], None],
    *,
    key: bytes | None = b"",
) -> None:
    """Copy a backup, letting ``edit`` change the manifest and table files, checksums kept
    consistent. Signed again with ``key`` (default: this server's backup key, i.e. damage made
    by someone who holds it, which only the later checks and the database can notice); with
    ``key=None`` left with the old signature, as an attacker without the key must."""
    import hashlib

    with zipfile.ZipFile(src) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        old_signature = archive.read(SIGNATURE)
        members = {
            n: archive.read(n) for n in archive.namelist() if n not in ("manifest.json", SIGNATURE)
        }
    edit(manifest, members)
    for entry in manifest["tables"]:
        data = members[f"tables/{entry['name']}.jsonl"]
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        entry["rows"] = data.count(b"\n")
    text_ = json.dumps(manifest)
    if key is None:
        signature = old_signature
    else:
        signing_key = key or backup_key(get_settings())
        signature = hmac.new(signing_key, b"kb-backup\n" + text_.encode(), "sha256").hexdigest()
    with zipfile.ZipFile(dst, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", text_)
        archive.writestr(SIGNATURE, signature)


@pytest.fixture
def world(engine: Engine, quiet_ingest: None, fast_hashing: None, tmp_path: Path) -> Engine:
    build_kb(engine, tmp_path / "docs")
    return engine


# --------------------------------------------------------------------------- round trip


def test_every_table_is_backed_up_or_excluded(world: Engine, tmp_path: Path) -> None:
    summary = export_all(world, tmp_path / "kb.zip")
    for name in SQLModel.metadata.tables:
        if name in EXCLUDED_TABLES:
            assert EXCLUDED_TABLES[name].strip(), f"say why {name} is excluded"
            assert name not in summary.tables
            continue
        assert name in summary.tables, f"table {name} is neither backed up nor excluded"
        assert summary.tables[name] > 0, (
            f"table {name} is empty in build_kb(): add a row so its round trip is tested"
        )


def test_round_trip_is_exact(world: Engine, target: Target, tmp_path: Path) -> None:
    path = tmp_path / "kb.zip"
    exported = export_all(world, path)
    assert path.stat().st_mode & 0o777 == 0o600
    before = dump(world)
    imported = import_all(target.engine, path)
    assert imported.tables == exported.tables
    after = dump(target.engine)
    for name, rows in before.items():
        assert after[name] == rows, f"table {name} differs after the round trip"

    # Spot checks of what matters most, in case dump() and the backup shared a blind spot.
    with session_scope(target.engine) as session:
        reviews = session.exec(select(Review).order_by(col(Review.id))).all()
        assert reviews[1].parent_review_id == reviews[0].id
        assert reviews[0].status == ReviewStatus.EMBARGOED
        [confirmed] = session.exec(
            select(ThemeTag).where(ThemeTag.status == TagStatus.CONFIRMED)
        ).all()
        assert confirmed.decided_by == "system" and confirmed.decided_at is not None
        assert confirmed.evidence
        passage = session.get(Passage, confirmed.passage_id)
        assert passage is not None and passage.embedding is not None
        assert np.frombuffer(passage.embedding, dtype=np.float32).shape == (8,)
        assert authenticate(session, username="wendy", password=SECRET) is not None
        assert authenticate(session, username="former.admin", password=SECRET) is None


def test_restored_database_accepts_new_rows(world: Engine, target: Target, tmp_path: Path) -> None:
    """Primary keys are kept, so (on PostgreSQL) sequences must be moved past them."""
    path = tmp_path / "kb.zip"
    export_all(world, path)
    import_all(target.engine, path)
    _ingest(target.engine, tmp_path / "later", "child-x.md", LATER)
    with session_scope(target.engine) as session:
        session.add(Partnership(name="Eastfold Partnership"))
        session.add(Briefing(title="Another briefing"))
        create_user(session, username="newcomer", password=SECRET, role=Role.VIEWER)
        audit.record(
            session, principal=Principal.system(), action="test", object_type="x", object_id=1
        )
    counts = {name: len(rows) for name, rows in dump(target.engine).items()}
    assert counts["review"] == len(dump(world)["review"]) + 1
    assert counts["user"] == 3


@pytest.mark.skipif(BACKEND != "postgres", reason="needs both backends (KB_TEST_BACKEND=postgres)")
def test_across_backends(world: Engine, target: Target, tmp_path: Path) -> None:
    """PostgreSQL → SQLite → PostgreSQL: same schema revision, same rows."""
    lite = make_engine(f"sqlite:///{tmp_path / 'lite.sqlite3'}")
    init_db(lite)
    export_all(world, tmp_path / "from-pg.zip")
    import_all(lite, tmp_path / "from-pg.zip")
    export_all(lite, tmp_path / "from-sqlite.zip")
    import_all(target.engine, tmp_path / "from-sqlite.zip")
    original = dump(world)
    assert dump(lite) == original
    assert dump(target.engine) == original
    lite.dispose()


def test_without_embeddings(world: Engine, target: Target, tmp_path: Path) -> None:
    path = tmp_path / "small.zip"
    summary = export_all(world, path, include_embeddings=False)
    assert summary.embeddings is False
    with zipfile.ZipFile(path) as archive:
        assert json.loads(archive.read("manifest.json"))["embeddings"] is False
    import_all(target.engine, path)
    passages = dump(target.engine)["passage"]
    assert passages and all(p["embedding"] is None for p in passages)
    assert all(p["embedding_model"] is None for p in passages)
    assert [p["text"] for p in passages] == [p["text"] for p in dump(world)["passage"]]


# --------------------------------------------------------------------------- refusals


def test_refuses_populated_database_unless_replace(world: Engine, tmp_path: Path) -> None:
    path = tmp_path / "kb.zip"
    export_all(world, path)
    original = dump(world)
    with session_scope(world) as session:
        session.add(Partnership(name="Added after the backup"))
    changed = dump(world)
    with pytest.raises(BackupError, match="not empty.*--replace"):
        import_all(world, path)
    assert dump(world) == changed
    import_all(world, path, replace=True)
    assert dump(world) == original


def test_refuses_overwriting_a_file(world: Engine, tmp_path: Path) -> None:
    path = tmp_path / "kb.zip"
    path.write_text("precious")
    with pytest.raises(BackupError, match="already exists"):
        export_all(world, path)
    assert path.read_text() == "precious"
    export_all(world, path, overwrite=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".kb-backup-")]


def _damaged_copies(good: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """Broken variants of ``good`` and the error each must produce, grouped by who could make
    them: anyone (unreadable or tampered), someone without the backup key (forged), and
    someone holding it (re-signed edits only the later checks and the database can catch)."""
    out = _unreadable_copies(good, folder)
    out.update(_forged_copies(good, folder))
    for name, edit, match in KEY_HOLDER_EDITS:
        path = folder / f"{name}.zip"
        rewrite(good, path, edit)
        out[name] = (path, match)
    return out


def _unreadable_copies(good: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """Not a zip, a cut-off zip, and a table file changed without fixing its checksum."""
    raw = good.read_bytes()
    out: dict[str, tuple[Path, str]] = {}
    for name, data in (
        ("garbage", b"this is not a zip file at all"),
        ("truncated", raw[: len(raw) // 2]),
    ):
        path = folder / f"{name}.zip"
        path.write_bytes(data)
        out[name] = (path, "not a kb backup file")
    tampered = folder / "tampered.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tampered, "w") as dst:
        for member in src.namelist():
            data = src.read(member)
            if member == "tables/document.jsonl":
                data = data.replace(b"Child W", b"Child V", 1)  # checksum no longer matches
            dst.writestr(member, data)
    out["tampered"] = (tampered, "damaged.*checksum")
    return out


def _forged_copies(good: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """Consistent checksums but no valid signature: an admin slipped in by someone without the
    server's backup key (old signature kept, or signed with another key), and no signature."""
    out: dict[str, tuple[Path, str]] = {}
    forged = folder / "forged.zip"
    rewrite(good, forged, _new_admin, key=None)
    out["forged"] = (forged, "signature does not match")
    other_key = folder / "other-key.zip"
    rewrite(good, other_key, _new_admin, key=b"a key that is not this server's")
    out["other-key"] = (other_key, "signature does not match")
    unsigned = folder / "unsigned.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(unsigned, "w") as dst:
        for member in src.namelist():
            if member != SIGNATURE:
                dst.writestr(member, src.read(member))
    out["unsigned"] = (unsigned, "not signed")
    return out


def _new_admin(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
    """The attack: an admin added to the user table, every checksum recomputed."""
    lines = members["tables/user.jsonl"].decode().splitlines()
    row = json.loads(lines[0])
    row.update(id=999, username="mallory", role="admin", partnership_id=None)
    members["tables/user.jsonl"] = ("\n".join([*lines, json.dumps(row)]) + "\n").encode()


def _future(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
    manifest["format_version"] = FORMAT_VERSION + 1


def _other_schema(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
    manifest["alembic_revision"] = "9999"


def _missing_table(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
    manifest["tables"] = [t for t in manifest["tables"] if t["name"] != "briefing"]
    del members["tables/briefing.jsonl"]


def _dangling_user(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
    """Valid JSON and checksums, but a user in a partnership that does not exist: only the
    database notices, after the earlier tables were already written."""
    lines = members["tables/user.jsonl"].decode().splitlines()
    row = json.loads(lines[0])
    row["partnership_id"] = 999_999
    lines[0] = json.dumps(row)
    members["tables/user.jsonl"] = ("\n".join(lines) + "\n").encode()


def _bad_value(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
    members["tables/review.jsonl"] = members["tables/review.jsonl"].replace(
        b'"status": "embargoed"', b'"status": "leaked"', 1
    )


def _not_json(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
    members["tables/themetag.jsonl"] += b"{not json\n"


# Damage re-signed with this server's backup key: name, edit, the error it must give.
KEY_HOLDER_EDITS: list[tuple[str, Callable[[dict[str, Any], dict[str, bytes]], None], str]] = [
    ("future", _future, f"format version {FORMAT_VERSION + 1} is not supported"),
    ("schema", _other_schema, "schema revision 9999"),
    ("missing", _missing_table, "missing: \\['briefing'\\]"),
    ("dangling", _dangling_user, "database refused the backup"),
    ("bad-value", _bad_value, "review, line 1: bad value in column status"),
    ("not-json", _not_json, "themetag, line \\d+: not valid JSON"),
]


def test_damaged_files_leave_target_untouched(
    world: Engine, target: Target, tmp_path: Path
) -> None:
    good = tmp_path / "kb.zip"
    export_all(world, good)
    hashes = [u["password_hash"] for u in dump(world)["user"]]
    # The target holds a knowledge base already and --replace is given: a failure halfway must
    # roll back the deletions too.
    import_all(target.engine, good)
    with session_scope(target.engine) as session:
        session.add(Partnership(name="Only in the target"))
    before = dump(target.engine)
    damaged = _damaged_copies(good, tmp_path)
    assert {"garbage", "truncated", "tampered", "dangling", "bad-value", "forged"} <= set(damaged)
    for name, (path, match) in damaged.items():
        with pytest.raises(BackupError, match=match) as caught:
            import_all(target.engine, path, replace=True)
        assert not any(h in str(caught.value) for h in hashes), name
        assert dump(target.engine) == before, f"{name}: the target was changed"


def test_unknown_column_type_fails_loudly() -> None:
    table = Table("money", MetaData(), Column("amount", Numeric(10, 2)))
    with pytest.raises(BackupError, match="money.amount has type Numeric"):
        _codec(table, table.c.amount)


# --------------------------------------------------------------------------- command line


def _use_database(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("KB_DATABASE_URL", url)
    get_settings.cache_clear()
    kb_db.get_engine.cache_clear()


def test_cli_round_trip_json_contract_and_no_secrets(
    world: Engine, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    path = tmp_path / "backup.zip"
    hashes = [u["password_hash"] for u in dump(world)["user"]]
    assert all(h.startswith("$argon2") for h in hashes)

    exported = runner.invoke(app, ["export-all", str(path), "--json"])
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.stdout)
    assert set(data) == {
        "file",
        "format_version",
        "alembic_revision",
        "created_at",
        "embeddings",
        "tables",
        "rows",
    }
    assert data["format_version"] == FORMAT_VERSION and data["embeddings"] is True
    assert data["tables"]["user"] == 2 and data["rows"] == sum(data["tables"].values())
    assert path.stat().st_mode & 0o777 == 0o600

    again = runner.invoke(app, ["export-all", str(path)])
    assert again.exit_code == 1 and "--force" in again.output
    human = runner.invoke(app, ["export-all", str(path), "--force"])
    assert human.exit_code == 0 and "mode 0600" in human.output

    _use_database(monkeypatch, target.url)
    imported = runner.invoke(app, ["import-all", str(path), "--json"])
    assert imported.exit_code == 0, imported.output
    restored = json.loads(imported.stdout)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert restored["tables"] == {t["name"]: t["rows"] for t in manifest["tables"]}
    assert restored["replaced"] is False

    refused = runner.invoke(app, ["import-all", str(path)])
    assert refused.exit_code == 1 and "--replace" in refused.output
    replaced = runner.invoke(app, ["import-all", str(path), "--replace"])
    assert replaced.exit_code == 0, replaced.output
    assert "restored" in replaced.output

    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 nothing useful")
    failed = runner.invoke(app, ["import-all", str(broken)])
    assert failed.exit_code == 1 and "not a kb backup file" in failed.output

    for result in (exported, again, human, imported, refused, replaced, failed):
        shown = result.output + (result.stdout or "")
        assert not any(h in shown for h in hashes)
        assert "$argon2" not in shown and SECRET not in shown

    # The file made by the second export holds the first export's audit event; the import that
    # --replace undid is gone with the rest, and the last import is recorded.
    with session_scope(target.engine) as session:
        events = session.exec(
            select(AuditEvent.action).where(col(AuditEvent.action).startswith("backup."))
        ).all()
    assert sorted(events) == ["backup.export", "backup.import"]
