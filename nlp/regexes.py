"""Regex matching with a time limit, and the shape every matcher returns.

Why a module of its own: the taxonomy loader checks partnership regexes when it reads them,
the rule matchers report ``MatchResult``s, and the matching strategies dispatch to those rule
matchers. Keeping these few shared pieces here (depending on nothing else in ``nlp``) is what lets
``taxonomy``, ``matching`` and ``rules`` import each other in one direction only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import regex

REGEX_TIMEOUT_SECONDS = 0.5


@dataclass
class MatchResult:
    """Whether the theme matched, why (for logs and the UI), and the character spans hit."""

    matched: bool
    reason: str
    spans: list[tuple[int, int]] = field(default_factory=list)


@lru_cache(maxsize=4096)
def compile_regex(pattern: str, case: bool = False) -> regex.Pattern:
    """Compile (and cache) a pattern; case-insensitive unless `case` is set."""
    flags = regex.VERSION1 if case else regex.VERSION1 | regex.IGNORECASE
    return regex.compile(pattern, flags)


def regex_spans(
    pattern: str, text: str, case: bool = False, timeout: float | None = None
) -> list[tuple[int, int]]:
    """All non-empty match spans; raises TimeoutError if the pattern runs too long.

    Patterns come from partnership files, so a catastrophic-backtracking pattern must not be
    able to hang ingestion: the `regex` package enforces the timeout inside the engine.
    """
    compiled = compile_regex(pattern, case)
    limit = REGEX_TIMEOUT_SECONDS if timeout is None else timeout
    return [m.span() for m in compiled.finditer(text, timeout=limit) if m.end() > m.start()]
