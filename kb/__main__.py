"""``python -m kb``: the ``kb`` command, for processes started by ``kb serve`` (its worker)."""

from kb.cli import app

app()
