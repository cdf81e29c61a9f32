"""Settings, read once from ``KB_*`` environment variables (pydantic-settings).

Every knob a deployment may turn lives here, and tests/test_docs.py fails when one of them is
missing from the README, so operators never have to read code to configure the tool.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Field names map to ``KB_<NAME>`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="KB_", extra="ignore")

    home: Path = Field(default=Path(".kb"), description="Data folder (database, models, index).")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default a SQLite file in KB_HOME."
    )
    db_pool_size: int = Field(default=10, description="PostgreSQL connection pool size.")
    db_busy_timeout: float = Field(
        default=10.0,
        description="Seconds a write waits for a busy database before the answer is a 503.",
    )
    embedding_model: Path | None = Field(
        default=None, description="Sentence-transformers model folder; default the bundled one."
    )
    embedding_backend: str = Field(
        default="auto",
        description="onnx-int8 (fast), torch, or auto (onnx-int8 when onnxruntime is installed).",
    )
    embedding_cache: Path | None = Field(
        default=None, description="Folder for the exported ONNX model; default KB_HOME/models."
    )
    index_files: bool = Field(
        default=True,
        description="Keep the search index in memory-mapped files shared by every worker on "
        "the machine; false: each worker builds its own in memory.",
    )
    index_dir: Path | None = Field(
        default=None, description="Folder for the shared search index files; default KB_HOME/index."
    )
    embed_on_ingest: bool = Field(default=True, description="Compute embeddings while ingesting.")
    theme_heads: bool = Field(
        default=True,
        description="Tag with the theme heads over sentence embeddings when they add tags.",
    )
    taxonomy_files: list[Path] = Field(
        default_factory=list, description="Extra taxonomy YAML files (a partnership's themes)."
    )
    max_file_mb: int = Field(default=50, description="Largest document accepted, in MB.")
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; empty: none (the peer address is the client).",
    )
    max_json_kb: int = Field(
        default=512,
        description="Largest JSON or form body (every request but file uploads), in KB.",
    )
    max_upload_mb_per_day: int = Field(
        default=500,
        description="Document upload volume one user may send in 24 hours, in MB.",
    )
    backup_key: str | None = Field(
        default=None,
        description="Key that signs and checks backup files (HMAC); default the secret key.",
    )
    max_queued_jobs: int = Field(
        default=3, description="Uploads one user may have waiting or running at once."
    )
    ingest_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="How much kb worker and kb ingest lower their CPU priority (nice "
        "increment; 0 = unchanged), so ingesting never starves the web server of CPU.",
    )
    ingest_lock_wait: float = Field(
        default=600.0,
        description="Seconds kb ingest and kb worker wait for the database's write lock "
        "(another document being stored) before a file fails.",
    )
    secret_key: str | None = Field(
        default=None, description="Signs sessions; default a random key kept in KB_HOME."
    )
    similarity_threshold: float = Field(
        default=0.82, description="Cosine similarity above which recommendations are déjà-vu."
    )
    log_level: str = Field(default="INFO", description="Logging level.")

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an embedded SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'kb.sqlite3').resolve()}"

    @property
    def model_dir(self) -> Path:
        """Where trained models (the theme classifier) are kept."""
        return self.home / "models"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests clear the cache after changing the environment."""
    return Settings()


def private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) or tighten it to 0700: KB_HOME holds the database, the
    secret key, uploads in progress and the demo logins, none of which other local users may
    read."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if it is missing, else tighten it to 0600."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    return path


def load_secret_key(settings: Settings) -> str:
    """KB_SECRET_KEY, else a random key made once and kept in KB_HOME/secret_key (mode 0600).

    Kept on disk so sessions survive restarts; created with O_EXCL so two workers starting at
    once agree on one key.
    """
    if settings.secret_key:
        return settings.secret_key
    path = private_dir(settings.home) / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        private_file(path)
        key = path.read_text(encoding="ascii").strip()
        if len(key) >= 32:
            return key
        raise RuntimeError(f"{path} is empty or too short; delete it to make a new key") from None
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key)
    return key


def backup_key(settings: Settings) -> bytes:
    """The key backups are signed with: KB_BACKUP_KEY, else the server's secret key."""
    return (settings.backup_key or load_secret_key(settings)).encode()
