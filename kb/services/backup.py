"""Whole-database backup and restore: one zip file, one JSON-lines file per table, a manifest.

Why generic over ``SQLModel.metadata``: a table added to kb/models.py is backed up without anyone
remembering to touch this module; a table that must not be backed up is named in
:data:`EXCLUDED_TABLES` with the reason (and tests/test_backup.py fails for a table that is in
neither). Tables are written and restored in foreign-key order with their primary keys, so links
(review → document, tag → passage, action ↔ recommendation...) survive unchanged.

Why so strict on import: a restore either yields exactly the knowledge base that was exported or
changes nothing. The file is checked (format version, schema revision, table set, per-table
SHA-256 and row counts) before the database is touched, and every row is written in one
transaction, so a corrupt file leaves the target as it was.

Why signed: checksums alone prove nothing against someone who edits a table file (adding an
admin, say) and recomputes them. The manifest, which holds every table file's SHA-256, is
signed with HMAC-SHA256 under KB_BACKUP_KEY (default: the server's secret key), and a restore
refuses a file whose signature does not match before reading any row.

Why the file is sensitive: it holds unpublished and embargoed reviews and users' password
hashes. It is created with mode 0600, and nothing here ever logs or reports row contents (errors
name a table, a line and a column only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Column, Table, bindparam, func, select, text, types
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel

import kb.models  # noqa: F401  (registers every table on SQLModel.metadata)
from kb.config import backup_key, get_settings
from kb.db import session_scope
from kb.models import utcnow
from kb.services import audit
from kb.services.access import Principal

log = logging.getLogger(__name__)

FORMAT = "kb-backup"
FORMAT_VERSION = 2  # 2: the manifest is signed (manifest.hmac)
MANIFEST = "manifest.json"
SIGNATURE = "manifest.hmac"
BATCH = 1000
FILE_MODE = 0o600

#: Tables deliberately left out of a backup, with the reason.
EXCLUDED_TABLES: dict[str, str] = {
    "data_version": "cache bookkeeping of this database (kb/db.py); restoring an older value "
    "could make a cache serve results from before the restore",
    "ingest_job": "the queue of web uploads in flight (kb/services/jobs.py); their results are "
    "the documents and audit events, which are backed up",
    "ingest_job_file": "bytes of uploads in flight and per-file results of the upload queue",
}

#: Columns that can be recomputed from the rest of the row, and may therefore be left out
#: (``include_embeddings=False``): the search service embeds passages without a vector lazily.
RECOMPUTABLE_COLUMNS: dict[str, tuple[str, ...]] = {"passage": ("embedding", "embedding_model")}

#: ``progress(table, rows)`` is called after each batch with the number of rows just handled.
Progress = Callable[[str, int], None]


class BackupError(ValueError):
    """The file is not a usable backup, or the database refuses it; nothing was changed."""


@dataclass(slots=True)
class BackupSummary:
    """What a backup file holds; its :meth:`as_json` is the ``--json`` contract of both commands."""

    path: Path
    alembic_revision: str | None
    created_at: str
    embeddings: bool
    tables: dict[str, int] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "format_version": self.format_version,
            "alembic_revision": self.alembic_revision,
            "created_at": self.created_at,
            "embeddings": self.embeddings,
            "tables": dict(self.tables),
            "rows": self.rows,
        }


def backup_tables() -> list[Table]:
    """Every table to back up, parents before children (the order rows are restored in)."""
    return [t for t in SQLModel.metadata.sorted_tables if t.name not in EXCLUDED_TABLES]


# --------------------------------------------------------------------------- value codecs


@dataclass(frozen=True, slots=True)
class _Codec:
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _enum_codec(enum_class: type[Enum]) -> _Codec:
    # The enum's value ("confirmed"), not the name the database stores: readable and stable.
    return _Codec(lambda v: v.value if isinstance(v, Enum) else v, enum_class)


_BINARY = _Codec(
    lambda v: base64.b64encode(v).decode("ascii"),
    lambda v: base64.b64decode(v, validate=True),
)
_DATETIME = _Codec(lambda v: v.isoformat(), datetime.fromisoformat)
_DATE = _Codec(lambda v: v.isoformat(), date.fromisoformat)
_PLAIN = _Codec(_same, _same)


def _codec(table: Table, column: Column[Any]) -> _Codec:
    """How one column's values go to JSON and back; unknown types fail loudly, never lossy."""
    type_ = column.type
    base = type_.impl_instance if isinstance(type_, types.TypeDecorator) else type_
    if isinstance(base, types.Enum):
        return _enum_codec(base.enum_class) if base.enum_class is not None else _PLAIN
    if isinstance(base, types.LargeBinary):
        return _BINARY
    if isinstance(base, types.DateTime):
        return _DATETIME
    if isinstance(base, types.Date):
        return _DATE
    if isinstance(base, types.JSON | types.String | types.Integer | types.Boolean | types.Float):
        return _PLAIN
    raise BackupError(
        f"column {table.name}.{column.name} has type {type(type_).__name__}, which the backup "
        "does not know how to store: teach kb/services/backup.py::_codec about it"
    )


def _codecs(table: Table) -> dict[str, _Codec]:
    return {c.name: _codec(table, c) for c in table.columns}


def _encode_row(
    row: dict[str, Any], codecs: dict[str, _Codec], dropped: tuple[str, ...]
) -> dict[str, Any]:
    out = {}
    for name, codec in codecs.items():
        value = row[name]
        out[name] = None if value is None or name in dropped else codec.encode(value)
    return out


def _decode_row(table: Table, line_no: int, data: Any, codecs: dict[str, _Codec]) -> dict[str, Any]:
    where = f"{table.name}, line {line_no}"
    if not isinstance(data, dict) or set(data) != set(codecs):
        raise BackupError(f"{where}: the row does not have this table's columns")
    row = {}
    for name, codec in codecs.items():
        value = data[name]
        try:
            row[name] = None if value is None else codec.decode(value)
        except (ValueError, TypeError, KeyError) as exc:
            raise BackupError(f"{where}: bad value in column {name}") from exc
    return row


# --------------------------------------------------------------------------- export


def export_all(
    engine: Engine,
    path: Path,
    *,
    include_embeddings: bool = True,
    overwrite: bool = False,
    progress: Progress | None = None,
    key: bytes | None = None,
) -> BackupSummary:
    """Write the whole database to ``path`` (a zip, mode 0600) from one consistent snapshot,
    its manifest signed with ``key`` (default :func:`kb.config.backup_key`).

    The file appears under its name only once complete: it is written to a private temporary
    file beside it and renamed, so an interrupted export never leaves a half backup behind.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise BackupError(f"{path} already exists (pass --force to overwrite it)")
    if not path.parent.is_dir():
        raise BackupError(f"folder {path.parent} does not exist")
    key = key if key is not None else backup_key(get_settings())
    tables = backup_tables()
    codecs = {t.name: _codecs(t) for t in tables}  # fail on an unknown type before writing
    fd, tmp_name = tempfile.mkstemp(prefix=".kb-backup-", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw, _snapshot(engine) as conn:
            revision = _revision(conn)
            summary = BackupSummary(
                path=path,
                alembic_revision=revision,
                created_at=utcnow().isoformat(),
                embeddings=include_embeddings,
            )
            files: dict[str, str] = {}
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for table in tables:
                    dropped = () if include_embeddings else RECOMPUTABLE_COLUMNS.get(table.name, ())
                    count, digest = _export_table(
                        conn, archive, table, codecs[table.name], dropped, progress
                    )
                    summary.tables[table.name] = count
                    files[table.name] = digest
                manifest = json.dumps(_manifest(summary, files), indent=2, ensure_ascii=False)
                archive.writestr(_entry(MANIFEST), manifest)
                archive.writestr(_entry(SIGNATURE), _signature(manifest.encode(), key))
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.debug("backup written: %d rows in %d tables", summary.rows, len(summary.tables))
    return summary


def count_rows(engine: Engine) -> dict[str, int]:
    """Rows per backed-up table (for a progress bar's total)."""
    with engine.connect() as conn:
        return {t.name: _count(conn, t) for t in backup_tables()}


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


class _snapshot:  # noqa: N801 - used like a function: ``with _snapshot(engine) as conn``
    """A read-only view of the database at one instant, so the backup is consistent even
    while someone is ingesting (PostgreSQL: REPEATABLE READ; SQLite: one read transaction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        conn = self.engine.connect()
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        self.conn = conn
        return conn

    def __exit__(self, *exc: object) -> None:
        assert self.conn is not None
        self.conn.rollback()
        self.conn.close()


def _export_table(
    conn: Connection,
    archive: zipfile.ZipFile,
    table: Table,
    codecs: dict[str, _Codec],
    dropped: tuple[str, ...],
    progress: Progress | None,
) -> tuple[int, str]:
    order = list(table.primary_key.columns) or list(table.columns)
    result = conn.execution_options(yield_per=BATCH).execute(select(table).order_by(*order))
    digest = hashlib.sha256()
    count = 0
    with archive.open(_entry(_member(table.name)), "w", force_zip64=True) as member:
        for rows in result.mappings().partitions(BATCH):
            chunk = "".join(
                json.dumps(_encode_row(dict(r), codecs, dropped), ensure_ascii=False) + "\n"
                for r in rows
            ).encode("utf-8")
            member.write(chunk)
            digest.update(chunk)
            count += len(rows)
            if progress:
                progress(table.name, len(rows))
    return count, digest.hexdigest()


def _member(table_name: str) -> str:
    return f"tables/{table_name}.jsonl"


def _entry(name: str) -> zipfile.ZipInfo:
    """A compressed zip entry that unzips to a private (0600) file, dated now."""
    info = zipfile.ZipInfo(name, date_time=datetime.now().timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | FILE_MODE) << 16
    return info


def _manifest(summary: BackupSummary, files: dict[str, str]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "alembic_revision": summary.alembic_revision,
        "created_at": summary.created_at,
        "embeddings": summary.embeddings,
        "tables": [
            {"name": name, "rows": summary.tables[name], "sha256": files[name]}
            for name in summary.tables
        ],
        "excluded_tables": sorted(EXCLUDED_TABLES),
    }


def _revision(conn: Connection) -> str | None:
    """The Alembic revision the database is at (rows only make sense against that schema)."""
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads)) or None


# --------------------------------------------------------------------------- import


def read_manifest(path: Path, *, key: bytes | None = None) -> dict[str, Any]:
    """The manifest of a backup file, checked for its signature, format and version."""
    with _open_zip(path) as archive:
        return _checked_manifest(archive, key)


def _signature(manifest: bytes, key: bytes) -> str:
    return hmac.new(key, b"kb-backup\n" + manifest, hashlib.sha256).hexdigest()


def import_all(
    engine: Engine,
    path: Path,
    *,
    replace: bool = False,
    progress: Progress | None = None,
    key: bytes | None = None,
) -> BackupSummary:
    """Restore a backup into ``engine``'s database, keeping every primary key.

    The manifest's signature is checked with ``key`` (default :func:`kb.config.backup_key`)
    first: an edited file, or one signed with another key, is refused before anything is read.

    Refuses a file of another format version or schema revision, and a database that already
    holds data unless ``replace`` (then the old rows are deleted in the same transaction). Any
    error rolls everything back, deletions included.
    """
    path = Path(path)
    tables = backup_tables()
    with _open_zip(path) as archive:
        manifest = _checked_manifest(archive, key)
        entries = _checked_tables(manifest, tables)
        _verify_members(archive, entries)
        codecs = {t.name: _codecs(t) for t in tables}
        summary = BackupSummary(
            path=path,
            alembic_revision=manifest.get("alembic_revision"),
            created_at=str(manifest.get("created_at")),
            embeddings=bool(manifest.get("embeddings")),
            format_version=FORMAT_VERSION,
        )
        with engine.connect() as conn:
            try:
                _begin_write(conn)
                _check_target(conn, tables, summary.alembic_revision, replace=replace)
                if replace:
                    for table in reversed(tables):
                        conn.execute(table.delete())
                for table in tables:
                    with archive.open(_member(table.name)) as member:
                        count = _import_table(conn, table, member, codecs[table.name], progress)
                    if count != entries[table.name]["rows"]:
                        raise BackupError(f"{table.name}: row count differs from the manifest")
                    summary.tables[table.name] = count
                _reset_sequences(conn, tables)
                conn.commit()
            except SQLAlchemyError as exc:
                conn.rollback()
                raise BackupError(_db_error(exc)) from None
            except BaseException:
                conn.rollback()
                raise
    log.debug("backup restored: %d rows in %d tables", summary.rows, len(summary.tables))
    return summary


class _open_zip:  # noqa: N801 - used like a function
    """Open a backup, turning "not a zip / unreadable" into a one-line BackupError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.archive: zipfile.ZipFile | None = None

    def __enter__(self) -> zipfile.ZipFile:
        try:
            self.archive = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise BackupError(f"{self.path} does not exist") from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise BackupError(f"{self.path} is not a kb backup file ({exc})") from None
        return self.archive

    def __exit__(self, *exc: object) -> None:
        assert self.archive is not None
        self.archive.close()


def _checked_manifest(archive: zipfile.ZipFile, key: bytes | None) -> dict[str, Any]:
    try:
        raw = archive.read(MANIFEST)
        manifest = json.loads(raw)
    except KeyError:
        raise BackupError("not a kb backup file: it has no manifest.json") from None
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise BackupError(f"the backup's manifest is unreadable ({exc})") from None
    if isinstance(manifest, dict) and manifest.get("format_version") == FORMAT_VERSION:
        _check_signature(archive, raw, key if key is not None else backup_key(get_settings()))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("not a kb backup file: the manifest has another format")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BackupError(
            f"backup format version {version} is not supported (this kb reads version "
            f"{FORMAT_VERSION})"
        )
    return manifest


def _check_signature(archive: zipfile.ZipFile, manifest: bytes, key: bytes) -> None:
    try:
        stored = archive.read(SIGNATURE).decode("ascii", "replace").strip()
    except KeyError:
        raise BackupError("the backup is not signed (no manifest.hmac): refusing it") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise BackupError(f"the backup's signature is unreadable ({exc})") from None
    if not hmac.compare_digest(stored, _signature(manifest, key)):
        raise BackupError(
            "the backup's signature does not match: it was changed after it was made, or made "
            "with another KB_BACKUP_KEY / KB_SECRET_KEY; nothing was restored"
        )


def _checked_tables(manifest: dict[str, Any], tables: list[Table]) -> dict[str, dict[str, Any]]:
    listed = manifest.get("tables")
    if not isinstance(listed, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("name"), str)
        and isinstance(e.get("rows"), int)
        and isinstance(e.get("sha256"), str)
        for e in listed
    ):
        raise BackupError("the backup's manifest has no valid table list")
    entries = {e["name"]: e for e in listed}
    expected = {t.name for t in tables}
    if set(entries) != expected:
        missing = sorted(expected - set(entries))
        unknown = sorted(set(entries) - expected)
        raise BackupError(
            f"the backup's tables do not match this database (missing: {missing or 'none'}, "
            f"unknown: {unknown or 'none'})"
        )
    return entries


def _verify_members(archive: zipfile.ZipFile, entries: dict[str, dict[str, Any]]) -> None:
    """Checksum and count every table file before the database is touched."""
    for name, entry in entries.items():
        digest = hashlib.sha256()
        lines = 0
        try:
            with archive.open(_member(name)) as member:
                while chunk := member.read(1 << 20):
                    digest.update(chunk)
                    lines += chunk.count(b"\n")
        except KeyError:
            raise BackupError(f"the backup has no data file for table {name}") from None
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise BackupError(f"the backup's data for table {name} is damaged ({exc})") from None
        if digest.hexdigest() != entry["sha256"] or lines != entry["rows"]:
            raise BackupError(f"the backup's data for table {name} is damaged (checksum mismatch)")


def _begin_write(conn: Connection) -> None:
    """SQLite: take the write lock now, so the emptiness check and the inserts are atomic."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _check_target(
    conn: Connection, tables: list[Table], revision: str | None, *, replace: bool
) -> None:
    current = _revision(conn)
    if current != revision:
        raise BackupError(
            f"the backup was made at schema revision {revision}, this database is at "
            f"{current}: restore with the kb version that made it (or run `kb init` first)"
        )
    if replace:
        return
    holding = [t.name for t in tables if conn.execute(select(1).select_from(t).limit(1)).first()]
    if holding:
        raise BackupError(
            f"the database is not empty (tables {', '.join(holding)} hold rows): pass --replace "
            "to delete its contents and restore the backup in their place"
        )


def _lines(table: Table, member: IO[bytes]) -> Iterator[tuple[int, Any]]:
    lines = io.TextIOWrapper(member, encoding="utf-8", newline="\n")
    line_no = 0
    try:
        for line_no, raw in enumerate(lines, start=1):
            try:
                yield line_no, json.loads(raw)
            except ValueError:
                raise BackupError(f"{table.name}, line {line_no}: not valid JSON") from None
    except UnicodeDecodeError:
        raise BackupError(f"{table.name}, after line {line_no}: not valid UTF-8") from None


def _import_table(
    conn: Connection,
    table: Table,
    member: IO[bytes],
    codecs: dict[str, _Codec],
    progress: Progress | None,
) -> int:
    # A column referring to its own table (review.parent_review_id) is filled in afterwards,
    # so a child row may come before its parent in the file.
    self_refs = [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]
    pk = [c.name for c in table.primary_key.columns]
    deferred: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    count = 0
    for line_no, data in _lines(table, member):
        row = _decode_row(table, line_no, data, codecs)
        if self_refs and any(row[name] is not None for name in self_refs):
            deferred.append(
                {**{f"k_{k}": row[k] for k in pk}, **{f"v_{n}": row[n] for n in self_refs}}
            )
            row.update(dict.fromkeys(self_refs))
        batch.append(row)
        if len(batch) >= BATCH:
            count += _flush(conn, table, batch, progress)
    count += _flush(conn, table, batch, progress)
    if deferred:
        update = table.update().values({n: bindparam(f"v_{n}") for n in self_refs})
        for k in pk:
            update = update.where(table.c[k] == bindparam(f"k_{k}"))
        conn.execute(update, deferred)
    return count


def _flush(
    conn: Connection, table: Table, batch: list[dict[str, Any]], progress: Progress | None
) -> int:
    if not batch:
        return 0
    conn.execute(table.insert(), batch)
    done = len(batch)
    batch.clear()
    if progress:
        progress(table.name, done)
    return done


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """PostgreSQL: move each id sequence past the restored ids, so the next insert does not
    collide. (SQLite picks max(rowid) + 1 by itself.)"""
    if conn.dialect.name != "postgresql":
        return
    quote = conn.dialect.identifier_preparer.quote
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, types.Integer):
            continue
        name, column = quote(table.name), quote(pk[0].name)
        sequence = conn.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": name, "column": pk[0].name},
        ).scalar_one()
        if sequence is None:
            continue
        conn.execute(
            text(
                f"SELECT setval(:sequence, COALESCE(MAX({column}), 1), MAX({column}) IS NOT NULL) "
                f"FROM {name}"
            ),
            {"sequence": sequence},
        )


def _db_error(exc: SQLAlchemyError) -> str:
    """The database's complaint without the statement parameters (they may hold document text
    or password hashes): first line of the driver's message only."""
    orig = getattr(exc, "orig", None)
    message = str(orig) if orig is not None else type(exc).__name__
    first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return f"the database refused the backup, nothing was changed: {first}"


def record_backup_event(
    engine: Engine,
    *,
    principal: Principal,
    action: str,
    summary: BackupSummary,
    replaced: bool | None = None,
) -> None:
    """Audit a backup or a restore (row counts only) in its own transaction, after the fact:
    a restore replaces the audit table itself, so the event goes into the restored database."""
    detail: dict[str, object] = {"rows": summary.rows, "embeddings": summary.embeddings}
    if replaced is not None:
        detail["replaced"] = replaced
    with session_scope(engine) as session:
        audit.record(
            session,
            principal=principal,
            action=action,
            object_type="database",
            object_id=None,
            detail=detail,
        )
