"""Documents uploaded through the web or the API: who may upload, safe names, size limits.

Why a service of its own: the API route and the web upload page must behave identically, and the
dangerous part (a client-chosen file name becoming a path on our disk) belongs in one place.
Uploads are queued as ingest jobs (kb/services/jobs.py, which uses these names and limits); their
bytes are dropped once ingested, since stray copies of unpublished reviews are exactly the leak
partnerships fear.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sqlmodel import Session, col, select

from kb.config import Settings
from kb.models import AuditEvent, Role, utcnow
from kb.services import audit
from kb.services.access import Principal

MAX_FILES = 20
CHUNK = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


class UploadError(ValueError):
    """The upload as a whole is refused (nothing was ingested)."""


class UploadTooLarge(UploadError):
    """A file is bigger than KB_MAX_FILE_MB."""


class UploadQuotaExceeded(UploadError):
    """The uploader sent more than KB_MAX_UPLOAD_MB_PER_DAY in the last 24 hours."""


class UploadForbidden(PermissionError):
    """Only panel members and admins may add documents."""


@dataclass(slots=True)
class StoredFile:
    original: str
    name: str
    path: Path


@dataclass(slots=True)
class UploadBatch:
    """Files written into one private temporary folder under KB_HOME/uploads."""

    folder: Path
    files: list[StoredFile] = field(default_factory=list)

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def safe_filename(name: str | None) -> str:
    """A bare file name safe to create in our own folder, keeping the extension readable.

    Directory parts (either slash), drive letters, control and non-ASCII characters, leading dots
    and over-long names are all removed: "../../etc/passwd.md" becomes "passwd.md".
    """
    raw = (name or "").replace("\\", "/")
    base = PurePosixPath(raw).name
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    base = _UNSAFE.sub("_", base).strip(" .")
    base = base.lstrip(".-_ ")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem, suffix = stem[:100], suffix[:10].lower()
    if not stem:
        stem = "upload"
    return f"{stem}.{suffix}" if suffix else stem


def may_upload(principal: Principal) -> bool:
    """Whether this user may upload: pages hide the Upload link from those who may not."""
    return principal.role in (Role.PANEL, Role.ADMIN)


def check_uploader(principal: Principal) -> None:
    if not may_upload(principal):
        raise UploadForbidden("only panel members and admins may upload documents")


def store_uploads(
    files: Iterable[tuple[str | None, BinaryIO]], *, settings: Settings
) -> UploadBatch:
    """Copy uploaded streams into a fresh 0700 folder; UploadTooLarge if one exceeds the limit."""
    files = list(files)
    if not files:
        raise UploadError("no files were uploaded")
    if len(files) > MAX_FILES:
        raise UploadError(f"at most {MAX_FILES} files per upload")
    root = settings.home / "uploads"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = Path(tempfile.mkdtemp(prefix="batch-", dir=root)).resolve()
    batch = UploadBatch(folder=folder)
    max_bytes = settings.max_file_mb * 1_000_000
    try:
        for original, stream in files:
            name = unique_name(safe_filename(original), {f.name for f in batch.files})
            target = folder / name
            if target.resolve().parent != folder:  # belt and braces: never outside the folder
                raise UploadError("unsafe file name")
            _copy_limited(stream, target, max_bytes, name)
            batch.files.append(StoredFile(original=original or "", name=name, path=target))
    except BaseException:
        batch.cleanup()
        raise
    return batch


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3``… when a file of the same upload already has it."""
    if name not in taken:
        return name
    stem, dot, suffix = name.rpartition(".")
    stem, suffix = (stem, f".{suffix}") if dot else (name, "")
    n = 2
    while f"{stem}-{n}{suffix}" in taken:
        n += 1
    return f"{stem}-{n}{suffix}"


def _copy_limited(stream: BinaryIO, target: Path, max_bytes: int, name: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o600)
    written = 0
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise UploadTooLarge(f"{name} is larger than {max_bytes // 1_000_000} MB")
            out.write(chunk)


QUOTA_WINDOW = timedelta(hours=24)
_BYTES = re.compile(r"(?:^| )bytes=(\d+)(?: |$)")


def count_against_quota(
    session: Session, *, principal: Principal, size: int, files: int, settings: Settings
) -> None:
    """Refuse an upload that takes the uploader past KB_MAX_UPLOAD_MB_PER_DAY, else record it.

    Why: one account (or a stolen session) must not fill the disk and the ingest workers for
    everyone. Every batch received counts, whether or not its files ingest; the record is an
    audit event (bytes only) in the caller's transaction, so it holds on every worker and restart.
    """
    limit = settings.max_upload_mb_per_day * 1_000_000
    since = utcnow() - QUOTA_WINDOW
    details = session.exec(
        select(AuditEvent.detail).where(
            AuditEvent.action == "document.receive",
            AuditEvent.username == principal.username,
            col(AuditEvent.at) >= since,
        )
    ).all()
    used = sum(int(m[1]) for d in details if d and (m := _BYTES.search(d)))
    if used + size > limit:
        raise UploadQuotaExceeded(
            f"upload limit reached: at most {settings.max_upload_mb_per_day} MB per user in "
            f"24 hours ({used // 1_000_000} MB used)"
        )
    audit.record(
        session,
        principal=principal,
        action="document.receive",
        object_type="upload",
        object_id=None,
        detail={"bytes": size, "files": files},
    )
