"""Errors shared by services that edit rows other people may be editing too.

``Conflict`` and ``Forbidden`` live here rather than in a feature module so the tracker, tagging
and briefing services can raise (and the API can map to HTTP 409 / 403) one class each without
importing each other.
"""

from __future__ import annotations


class Conflict(RuntimeError):
    """Someone else changed the object since it was read (optimistic locking)."""


class Forbidden(PermissionError):
    """The principal may see the object but is not allowed to make this change.

    Raised by services (not routes) so the command line, the API and the web pages all enforce
    the same rule; objects the principal may not even see raise NotFound instead, so a refusal
    never confirms that a hidden object exists.
    """
