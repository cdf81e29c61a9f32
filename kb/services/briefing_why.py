"""Section 2 of a briefing, "why it matters": recurrence figures as the effective principal sees
them, so the briefing and the scrutineer's table never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlmodel import col, func, select

from kb.models import (
    Review,
    TagStatus,
    ThemeTag,
)
from kb.services.access import visible_reviews
from kb.services.briefing_context import BriefingContext
from kb.services.briefing_model import BriefingItem, new_item
from kb.services.recurrence import theme_recurrence, theme_year_matrix
from kb.services.signals import signals

if TYPE_CHECKING:
    from nlp.taxonomy import Theme


# ---- 2 why it matters


@dataclass(frozen=True, slots=True)
class Recurrence:
    """Recurrence figures as the effective principal sees them (annual reports left out, as
    in the scrutineer's table, so the briefing and the table never disagree)."""

    total: int
    rows: dict[str, Mapping[str, Any]]
    years: list[int]
    year_totals: list[int]
    year_counts: dict[str, list[int]]

    @classmethod
    def load(cls, ctx: BriefingContext) -> Recurrence:
        figures = theme_recurrence(ctx.session, principal=ctx.viewer)
        matrix = theme_year_matrix(ctx.session, principal=ctx.viewer)
        return cls(
            total=int(figures["total_reviews"]),
            rows={row["id"]: row for row in figures["themes"]},
            years=list(matrix["years"]),
            year_totals=list(matrix["totals"]),
            year_counts={row["id"]: list(row["counts"]) for row in matrix["themes"]},
        )

    def count(self, theme_id: str) -> int:
        row = self.rows.get(theme_id)
        return int(row["reviews"]) if row else 0

    def review_ids(self, theme_id: str) -> set[int]:
        row = self.rows.get(theme_id)
        return set(row["review_ids"]) if row else set()

    def share_text(self, theme_id: str, label: str) -> str:
        """'Hidden men featured in 7 of 13 cases (54%) since 2016.' Cases, not documents: a
        rapid review and the LCSPR that followed are one case (kb/services/recurrence.py)."""
        count = self.count(theme_id)
        percent = round(100 * count / self.total) if self.total else 0
        period = f" since {self.years[0]}" if self.years else ""
        noun = "case" if self.total == 1 else "cases"
        return f"{label} featured in {count} of {self.total} {noun} ({percent}%){period}."

    def trend_text(self, theme_id: str) -> str | None:
        """Share of reviews with the theme in the later half of the years against the earlier."""
        if len(self.years) < 2:
            return None
        cut = len(self.years) // 2
        counts = self.year_counts.get(theme_id, [0] * len(self.years))
        e_n, e_total = sum(counts[:cut]), sum(self.year_totals[:cut])
        r_n, r_total = sum(counts[cut:]), sum(self.year_totals[cut:])
        if not e_total or not r_total:
            return None
        change = r_n / r_total - e_n / e_total
        word = "rising" if change > 0.1 else "falling" if change < -0.1 else "steady"
        return (
            f"Trend: {word}, {r_n} of {r_total} reviews since {self.years[cut]} "
            f"({round(100 * r_n / r_total)}%) against {e_n} of {e_total} before "
            f"({round(100 * e_n / e_total)}%)."
        )


def theme_recurrence_items(
    ctx: BriefingContext, theme_id: str, label: str
) -> tuple[list[BriefingItem], set[int]]:
    figures = Recurrence.load(ctx)
    sources = figures.review_ids(theme_id)
    items = [new_item(figures.share_text(theme_id, label))]
    items += signal_items(ctx, theme_id)
    trend = figures.trend_text(theme_id)
    if trend and trend.startswith("Trend: falling") and not items[1:]:
        items.append(new_item(trend))
    alongside = _co_occurring(ctx, theme_id, sources)
    if alongside:
        items.append(new_item(f"In these reviews it came up most often alongside {alongside}."))
    return items, sources


def signal_items(ctx: BriefingContext, theme_id: str) -> list[BriefingItem]:
    """The tracker's own signals on the theme (rising; recurred after action), worded as the
    tracker words them, so the briefing never says "steady" while the tracker says "rising"."""
    found = signals(ctx.session, principal=ctx.viewer, today=ctx.today)
    lines = []
    for kind, lead in (("rising", "Rising"), ("recurrence_after_action", "Recurred after action")):
        for signal in found:
            if signal["kind"] == kind and signal["theme"] == theme_id:
                lines.append(new_item(f"{lead}: {signal['summary'].rstrip('.')}."))
    return lines


def _co_occurring(ctx: BriefingContext, theme_id: str, review_ids: set[int]) -> str:
    """The two themes most often tagged in the same (visible) reviews (in two or more: one
    shared review is coincidence, not a pattern worth a line on a one-page briefing)."""
    if not review_ids:
        return ""
    rows = ctx.session.exec(
        select(ThemeTag.theme_id, func.count(func.distinct(ThemeTag.review_id)))
        .join(Review, col(Review.id) == ThemeTag.review_id)
        .where(visible_reviews(ctx.viewer))
        .where(col(ThemeTag.review_id).in_(review_ids))
        .where(ThemeTag.theme_id != theme_id)
        .where(ThemeTag.status != TagStatus.REJECTED)
        .group_by(col(ThemeTag.theme_id))
    ).all()
    ranked = sorted(
        ((n, tid) for tid, n in rows if tid in ctx.taxonomy.themes and n >= 2),
        key=lambda r: (-r[0], r[1]),
    )
    return " and ".join(
        f"{ctx.taxonomy.themes[tid].label.lower()} ({n} of {len(review_ids)})"
        for n, tid in ranked[:2]
    )


def review_recurrence_items(
    ctx: BriefingContext, themes: list[Theme]
) -> tuple[list[BriefingItem], set[int]]:
    """How often each of the review's main themes recurs across the reviews."""
    if not themes:
        return [new_item("No themes have been tagged in this review yet.")], set()
    figures = Recurrence.load(ctx)
    items, sources = [], set()
    for theme in themes:
        sources |= figures.review_ids(theme.id)
        items.append(new_item(figures.share_text(theme.id, theme.label)))
    return items, sources
