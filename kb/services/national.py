"""National reference figures beside local theme shares: loaded from data, never hard-coded.

The figures live in ``kb/national_reference.yaml`` (source, period, number of reviews and what
each was checked against), so a partnership can read where a number comes from and nobody
changes one without a source. A theme may have several figures (alcohol and drug misuse are
reported separately) or none. A damaged file is a clear error naming the file and the entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REFERENCE_FILE = Path(__file__).resolve().parents[1] / "national_reference.yaml"


class ReferenceError(ValueError):
    """The reference file is invalid; the message names the file and the entry."""


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    publisher: str
    published: str
    url: str
    period: str
    reviews: int
    checked_against: str

    def citation(self) -> str:
        return f"{self.title} ({self.publisher}, {self.published}; {self.reviews} reviews)"


@dataclass(frozen=True)
class Figure:
    theme: str
    measure: str
    share: float
    source: Source
    approximate: bool = False

    def shown(self) -> str:
        """The share as a reader sees it: "55%", or "≈75%" when the source says "three-quarters"."""
        return f"{'≈' if self.approximate else ''}{self.share:.0%}"


def load_reference(path: Path = REFERENCE_FILE) -> dict[str, list[Figure]]:
    """Theme id → its national figures, from ``path`` (cached for the shipped file)."""
    if path == REFERENCE_FILE:
        return _shipped()
    return _load(path)


@lru_cache(maxsize=1)
def _shipped() -> dict[str, list[Figure]]:
    return _load(REFERENCE_FILE)


def _fail(path: Path, where: str, problem: str) -> ReferenceError:
    return ReferenceError(f"{path.name}: {where}: {problem}")


def _load(path: Path) -> dict[str, list[Figure]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ReferenceError(f"{path.name}: cannot read national reference figures: {exc}") from exc
    if not isinstance(data, dict):
        raise _fail(path, "top level", "expected 'sources' and 'figures'")
    sources = {}
    for key, raw in (data.get("sources") or {}).items():
        sources[key] = _source(path, str(key), raw)
    out: dict[str, list[Figure]] = {}
    for index, raw in enumerate(data.get("figures") or [], start=1):
        figure = _figure(path, f"figure {index}", raw, sources)
        out.setdefault(figure.theme, []).append(figure)
    return out


def _source(path: Path, key: str, raw: Any) -> Source:
    where = f"source '{key}'"
    if not isinstance(raw, dict):
        raise _fail(path, where, "expected a mapping")
    needed = ("title", "publisher", "published", "period", "reviews")
    missing = [f for f in needed if not raw.get(f)]
    if missing:
        raise _fail(path, where, f"missing {', '.join(missing)}")
    if not isinstance(raw["reviews"], int) or raw["reviews"] <= 0:
        raise _fail(path, where, "'reviews' must be a positive whole number")
    return Source(
        id=key,
        title=str(raw["title"]),
        publisher=str(raw["publisher"]),
        published=str(raw["published"]),
        url=str(raw.get("url") or ""),
        period=str(raw["period"]),
        reviews=int(raw["reviews"]),
        checked_against=" ".join(str(raw.get("checked_against") or "").split()),
    )


def _figure(path: Path, where: str, raw: Any, sources: dict[str, Source]) -> Figure:
    if not isinstance(raw, dict):
        raise _fail(path, where, "expected a mapping")
    if raw.get("source") not in sources:
        raise _fail(path, where, f"unknown source {raw.get('source')!r}")
    share = raw.get("share")
    if not isinstance(share, int | float) or not 0 <= share <= 1:
        raise _fail(path, where, f"'share' must be a number from 0 to 1, not {share!r}")
    if not raw.get("theme") or not raw.get("measure"):
        raise _fail(path, where, "needs 'theme' and 'measure'")
    return Figure(
        theme=str(raw["theme"]),
        measure=str(raw["measure"]),
        share=float(share),
        source=sources[raw["source"]],
        approximate=bool(raw.get("approximate", False)),
    )


def comparison(themes: list[dict[str, Any]], labels: dict[str, str]) -> list[dict[str, Any]]:
    """One row per national figure: the theme's local share (0 when it is absent locally)
    beside the national one, in the order of the reference file."""
    local = {t["id"]: t for t in themes}
    rows = []
    for theme_id, figures in load_reference().items():
        mine = local.get(theme_id)
        for figure in figures:
            rows.append(
                {
                    "theme": theme_id,
                    "label": labels.get(theme_id, theme_id),
                    "measure": figure.measure,
                    "local_share": mine["share"] if mine else 0.0,
                    "local_reviews": mine["reviews"] if mine else 0,
                    "national_share": figure.share,
                    "national_shown": figure.shown(),
                    "source": figure.source.citation(),
                    "period": figure.source.period,
                    "url": figure.source.url,
                    "checked_against": figure.source.checked_against,
                }
            )
    return rows
