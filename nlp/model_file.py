"""The learned model's file format: a versioned header, then the pickled state, written atomically.

Why a header first: callers decide whether to retrain by comparing the labels hash in the header
with the current labels, and reading the header never unpickles the (large) model state.
The file is a pickle, so only files this application wrote are ever loaded.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from nlp.training_data import labels_hash

#: Bump whenever the pickled state changes shape; :func:`read_model_file` refuses others.
FORMAT_VERSION = 1


class ModelFormatError(ValueError):
    """A saved model cannot be used by this code (wrong format version or not a model file)."""


def write_model_file(path: str | os.PathLike[str], header: dict[str, Any], state: Any) -> Path:
    """Write header + state atomically: a crash or error never leaves a half-written file.

    The payload goes to a temporary file in the same directory (so ``os.replace`` is an
    atomic rename on one file system), is flushed and fsynced, then replaces ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_payload(fh, header, state)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)
    return target


def read_model_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Any]:
    """Header and state of a file written by :func:`write_model_file` (header checked first)."""
    with open(path, "rb") as fh:
        header = _read_header(fh, path)
        state = pickle.load(fh)
    return header, state


def _write_payload(fh: Any, header: dict[str, Any], state: dict[str, Any]) -> None:
    """Header first, then state, so :func:`read_header` never unpickles the model."""
    pickle.dump(header, fh, protocol=pickle.HIGHEST_PROTOCOL)
    pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _read_header(fh: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check the header; raise :class:`ModelFormatError` on anything unexpected."""
    try:
        header = pickle.load(fh)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not our file"
        raise ModelFormatError(f"{path}: not a theme model file ({exc})") from exc
    if not isinstance(header, dict) or "format_version" not in header:
        raise ModelFormatError(f"{path}: not a theme model file (no header)")
    if header["format_version"] != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: model format version {header['format_version']} is not supported "
            f"(this code reads version {FORMAT_VERSION}); retrain the model"
        )
    return header


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header of a saved model, without loading the model itself."""
    with open(path, "rb") as fh:
        return _read_header(fh, path)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; not every platform lets a directory be opened, so best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def needs_retraining(
    path: str | os.PathLike[str],
    texts: Sequence[str],
    label_sets: Sequence[Iterable[str]],
    negative_sets: Sequence[Iterable[str]] | None = None,
    *,
    theme_ids: Sequence[str] | None = None,
) -> bool:
    """True unless ``path`` holds a readable model of this format trained on exactly these labels.

    Training takes tens of seconds, so callers check this first and keep the old model when
    nothing a person labelled has changed.
    """
    try:
        header = read_header(path)
    except (OSError, ModelFormatError):
        return True
    if theme_ids is not None and list(dict.fromkeys(theme_ids)) != header.get("theme_ids"):
        return True
    return header.get("labels_hash") != labels_hash(texts, label_sets, negative_sets)
