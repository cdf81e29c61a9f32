"""Length limits on text people type, checked in the services (not only by the API's models).

Why here as well as in the pydantic models: the tracker import, the command line and any future
caller build rows without going through the API's request models, and one 30 MB action
description becomes a 30 MB page for everyone who opens the tracker. The limits themselves are
the ``max_length`` of the model fields (``kb/models.py``), so there is one number per field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel


def max_length(model: type[BaseModel], name: str) -> int | None:
    """The ``max_length`` declared on ``model.name``, if any."""
    info = model.model_fields.get(name)
    if info is None:
        return None
    return next((m.max_length for m in info.metadata if hasattr(m, "max_length")), None)


def too_long(model: type[BaseModel], values: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(field, limit) for every text value longer than its field allows."""
    found = []
    for name, value in values.items():
        limit = max_length(model, name)
        if isinstance(value, str) and limit is not None and len(value) > limit:
            found.append((name, limit))
    return found


def check_lengths(model: type[BaseModel], values: Mapping[str, Any]) -> None:
    """ValueError naming the first field that is too long (HTTP 400 / a CLI error)."""
    for name, limit in too_long(model, values):
        raise ValueError(f"{name.replace('_', ' ')} is longer than {limit} characters")
