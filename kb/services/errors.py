"""Errors shared by services that edit rows other people may be editing too.

``Conflict`` lives here rather than in a feature module so the tracker, tagging and briefing
services can raise (and the API can map to HTTP 409) one class without importing each other.
"""

from __future__ import annotations


class Conflict(RuntimeError):
    """Someone else changed the object since it was read (optimistic locking)."""
