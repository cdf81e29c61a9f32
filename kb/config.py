"""Settings, read once from ``KB_*`` environment variables (pydantic-settings).

Every knob a deployment may turn lives here, and tests/test_docs.py fails when one of them is
missing from the README, so operators never have to read code to configure the tool.
"""

from __future__ import annotations

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
    embed_on_ingest: bool = Field(default=True, description="Compute embeddings while ingesting.")
    taxonomy_files: list[Path] = Field(
        default_factory=list, description="Extra taxonomy YAML files (a partnership's themes)."
    )
    max_file_mb: int = Field(default=50, description="Largest document accepted, in MB.")
    max_queued_jobs: int = Field(
        default=3, description="Uploads one user may have waiting or running at once."
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
