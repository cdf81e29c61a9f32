"""Tracker import, row by row: cell parsers and the checks every row must pass.

Split from kb.services.tracker_io (which reads the files and writes the result): each check
records a located problem ("sheet 'Actions', row 3, column 'Due date': …") instead of stopping,
so a person fixes the workbook once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

from openpyxl.utils.datetime import from_excel
from sqlmodel import Session, col, select

from kb.models import (
    Action,
    ActionBase,
    ActionStatus,
    ImpactRating,
    Partnership,
    Recommendation,
    Review,
    ReviewType,
    TrainingCourse,
    TrainingCourseBase,
)
from kb.services.access import Principal, visible_reviews
from kb.services.limits import too_long
from kb.services.tracker import (
    edit_refusal,
    theme_labels,
    visible_actions,
)
from kb.services.tracker_format import (
    _ISO_DATE,
    _QUALIFIED_REC,
    _STATUS_ALIASES,
    _UK_DATE,
    ACTIONS,
    REQUIRED,
    SCORE_SCALE,
    SESSIONS,
    TRAINING,
    Sheet,
    _Bad,
)

# --------------------------------------------------------------------------- cell parsers


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _list(value: Any) -> list[str]:
    text = _text(value)
    return [part.strip() for part in text.split(";") if part.strip()] if text else []


def parse_date(value: Any) -> date | None:
    """Excel date cells, ISO (2021-03-31) and UK (31/03/2021) dates; blank → None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and 1 < value < 100_000:
        return from_excel(value).date()
    text = str(value).strip()
    iso, uk = _ISO_DATE.match(text), _UK_DATE.match(text)
    try:
        if iso:
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        if uk:
            return date(int(uk[3]), int(uk[2]), int(uk[1]))
    except ValueError:
        pass
    raise _Bad(f"{text!r} is not a date")


def _choice(enum: type[ActionStatus] | type[ImpactRating], aliases: dict[str, str]) -> Callable:
    def parse(value: Any) -> Any:
        text = _text(value)
        if text is None:
            return None
        key = re.sub(r"[\s\-]+", "_", text.lower())
        try:
            return enum(aliases.get(key, key))
        except ValueError:
            valid = ", ".join(_human(e) for e in enum)
            raise _Bad(f"{text!r} is not one of {valid}") from None

    return parse


parse_status = _choice(ActionStatus, _STATUS_ALIASES)
parse_rating = _choice(ImpactRating, {})


def _number(kind: type[int] | type[float]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        text = _text(value)
        if text is None:
            return None
        try:
            number = float(text)
        except ValueError:
            raise _Bad(f"{text!r} is not a number") from None
        if kind is int:
            if not number.is_integer() or number < 0:
                raise _Bad(f"{text!r} is not a whole number")
            return int(number)
        return number

    return parse


def _score(value: Any) -> float | None:
    """A training score, which must lie on SCORE_SCALE (a 0–100 percentage is refused)."""
    number = _number(float)(value)
    low, high = SCORE_SCALE
    if number is not None and not low <= number <= high:
        raise _Bad(f"{number:g} is outside the {low:g}–{high:g} score scale")
    return number


def _themes_parser(labels: dict[str, str]) -> Callable[[Any], list[str]]:
    by_key = {k.lower(): k for k in labels} | {v.lower(): k for k, v in labels.items()}

    def parse(value: Any) -> list[str]:
        ids, unknown = [], []
        for item in _list(value):
            (ids if item.lower() in by_key else unknown).append(by_key.get(item.lower(), item))
        if unknown:
            names = ", ".join(repr(u) for u in unknown)
            raise _Bad(f"unknown theme {names} (valid: {', '.join(sorted(labels))})")
        return sorted(set(ids))

    return parse


def _human(value: Any) -> str:
    return str(value.value if hasattr(value, "value") else value).replace("_", " ").capitalize()


# --------------------------------------------------------------------------- validation


@dataclass
class _Context:
    """What rows are checked against: visible reviews and their numbered recommendations."""

    reviews: dict[str, list[tuple[Review, str | None]]]
    recommendations: dict[int, dict[str, int]]
    labels: dict[str, str]
    action_refs: set[str]
    hidden_action_refs: set[str]
    course_refs: set[str]
    principal: Principal
    action_partnerships: dict[str, int | None] = field(default_factory=dict)
    partnership_names: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def cell(
        self, sheet: str, row: int, values: dict[str, Any], column: str, parse: Callable
    ) -> Any:
        """Parse one cell, recording a located problem (and returning None) when it is bad."""
        try:
            return parse(values.get(column))
        except _Bad as exc:
            self.problems.append(f"sheet '{sheet}', row {row}, column '{column}': {exc}")
            return None

    def problem(self, sheet: str, row: int, column: str, message: str) -> None:
        self.problems.append(f"sheet '{sheet}', row {row}, column '{column}': {message}")


def _context(session: Session, principal: Principal) -> _Context:
    rows = session.exec(
        select(Review, Partnership.name)
        .join(Partnership, col(Review.partnership_id) == Partnership.id, isouter=True)
        .where(visible_reviews(principal))
    ).all()
    reviews: dict[str, list[tuple[Review, str | None]]] = {}
    for review, partnership in rows:
        reviews.setdefault(review.pseudonym.strip().lower(), []).append((review, partnership))
    recs: dict[int, dict[str, int]] = {}
    ids = [r.id for r, _ in rows]
    for rec in session.exec(select(Recommendation).where(col(Recommendation.review_id).in_(ids))):
        if rec.number:
            recs.setdefault(rec.review_id, {}).setdefault(rec.number, rec.id)  # type: ignore[arg-type]
    all_refs = set(session.exec(select(Action.ref)).all())
    seen = dict(
        session.exec(
            select(Action.ref, Action.partnership_id).where(visible_actions(principal))
        ).all()
    )
    return _Context(
        reviews=reviews,
        recommendations=recs,
        labels=theme_labels(),
        action_refs=set(seen),
        hidden_action_refs=all_refs - set(seen),
        course_refs=set(session.exec(select(TrainingCourse.ref)).all()),
        principal=principal,
        action_partnerships=seen,
        partnership_names=dict(session.exec(select(Partnership.id, Partnership.name)).all()),
    )


def _find_review(ctx: _Context, ref: str) -> Review:
    """A review by pseudonym; "pseudonym (qualifier)" picks among namesakes, the qualifier being
    the partnership, the review type or the year. An annual report, or a case summary inside
    one, never shadows the review's own document."""
    candidates = ctx.reviews.get(ref.lower(), [])
    match = re.match(r"^(.*\S)\s*\(([^()]+)\)$", ref)
    if not candidates and match:
        wanted = match[2].strip().lower()
        candidates = [
            (r, p)
            for r, p in ctx.reviews.get(match[1].lower(), [])
            if wanted in _lower(_qualifiers(r, p))
        ]
    if len(candidates) > 1:
        reviews = [(r, p) for r, p in candidates if r.type != ReviewType.ANNUAL_REPORT]
        candidates = reviews if len(reviews) == 1 else candidates
    if len(candidates) > 1:
        own = [(r, p) for r, p in candidates if r.parent_review_id is None]
        candidates = own if len(own) == 1 else candidates
    if not candidates:
        raise _Bad(f"unknown review {ref!r}")
    if len(candidates) > 1:
        options = " or ".join(repr(_unique_name(r, p, candidates)) for r, p in candidates)
        raise _Bad(f"review {ref!r} is ambiguous: write {options}")
    return candidates[0][0]


def _qualifiers(review: Review, partnership: str | None) -> list[str]:
    """Ways to tell namesakes apart, in the order export prefers them."""
    return [partnership or "", str(review.type), str(review.year or "")]


def _unique_name(
    review: Review, partnership: str | None, namesakes: list[tuple[Review, str | None]]
) -> str:
    """The pseudonym, qualified by the first of partnership / type / year that is unique."""
    others = [(r, p) for r, p in namesakes if r.id != review.id]
    if not others or all(r.type == ReviewType.ANNUAL_REPORT for r, _ in others):
        return review.pseudonym
    for value in _qualifiers(review, partnership):
        if value and all(value.lower() not in _lower(_qualifiers(r, p)) for r, p in others):
            return f"{review.pseudonym} ({value})"
    return review.pseudonym


def _lower(values: list[str]) -> list[str]:
    return [v.lower() for v in values]


def _recommendation_ids(ctx: _Context, reviews: list[Review], value: Any) -> list[int]:
    """Numbers of the row's review ("2"), or "<review> #<number>" when it names several."""
    ids = []
    for item in _list(value):
        qualified = _QUALIFIED_REC.match(item)
        if qualified:
            review, number = _find_review(ctx, qualified[1]), qualified[2]
        elif len(reviews) == 1:
            review, number = reviews[0], item
        else:
            raise _Bad(f"{item!r}: name the review as '<review> #<number>' (or give one Review)")
        found = ctx.recommendations.get(review.id, {})  # type: ignore[arg-type]
        if number not in found:
            have = ", ".join(sorted(found, key=_natural)) or "none"
            raise _Bad(f"review {review.pseudonym!r} has no recommendation {number} (has: {have})")
        ids.append(found[number])
    return sorted(set(ids))


def _natural(number: str) -> tuple[float, str]:
    try:
        return float(number), number
    except ValueError:
        return float("inf"), number


@dataclass
class _Row:
    ref: str
    fields: dict[str, Any]
    links: dict[str, Any]


def _refs(ctx: _Context, sheet: Sheet) -> dict[int, str]:
    """Each row's Ref, checking presence and uniqueness within the sheet."""
    refs: dict[int, str] = {}
    first: dict[str, int] = {}
    for number, values in sheet.rows:
        ref = _text(values.get("Ref"))
        if ref is None:
            ctx.problem(sheet.name, number, "Ref", "a reference is required")
        elif ref in first:
            ctx.problem(sheet.name, number, "Ref", f"{ref!r} is already used on row {first[ref]}")
        else:
            first[ref] = number
            refs[number] = ref
    return refs


def _required(ctx: _Context, sheet: Sheet, number: int, values: dict[str, Any]) -> None:
    for column in REQUIRED[sheet.name][1:]:
        if _text(values.get(column)) is None:
            ctx.problem(sheet.name, number, column, "a value is required")


def _missing_columns(ctx: _Context, sheets: dict[str, Sheet]) -> None:
    for sheet in sheets.values():
        for column in REQUIRED[sheet.name]:
            if column not in sheet.columns:
                ctx.problems.append(f"sheet '{sheet.name}', column '{column}': column is missing")


def _action_rows(ctx: _Context, sheet: Sheet, refs: dict[int, str]) -> list[_Row]:
    themes = _themes_parser(ctx.labels)
    rows = []
    for number, values in sheet.rows:
        ref = refs.get(number)
        cell = partial(ctx.cell, sheet.name, number, values)
        _required(ctx, sheet, number, values)
        if ref in ctx.hidden_action_refs:
            ctx.problem(ACTIONS, number, "Ref", f"{ref!r} belongs to an action you cannot see")
        reviews = cell("Review", lambda v: [_find_review(ctx, r) for r in _list(v)])
        if ref is not None:
            _check_rights(ctx, number, ref, reviews or [])
        review_failed = reviews is None and bool(_list(values.get("Review")))
        recs = (
            None
            if review_failed
            else cell("Recommendation", partial(_recommendation_ids, ctx, reviews or []))
        )
        if reviews and not _list(values.get("Recommendation")):
            ctx.problem(
                ACTIONS, number, "Recommendation", "give the recommendation number(s) of the review"
            )
        fields = {
            "description": _text(values.get("Action")) or "",
            "agency": _text(values.get("Agency")),
            "owner": _text(values.get("Owner")),
            "due_date": cell("Due date", parse_date),
            "status": cell("Status", parse_status) or ActionStatus.NOT_STARTED,
            "completed_date": cell("Completed", parse_date),
            "impact_evidence": _text(values.get("Evidence of impact")),
            "impact_rating": cell("Impact rating", parse_rating),
            "partnership_id": _partnership_of(reviews or []),
        }
        links = {
            "recs": recs or [],
            "themes": cell("Themes", themes) or [],
        }
        _check_lengths(ctx, ACTIONS, number, ActionBase, {**fields, "ref": ref})
        if ref:
            rows.append(_Row(ref, fields, links))
    return rows


#: Which sheet column each length-limited field comes from (for the problem message).
_COLUMN_OF = {
    "ref": "Ref", "description": "Action", "agency": "Agency", "owner": "Owner",
    "impact_evidence": "Evidence of impact", "title": "Course", "provider": "Provider",
}  # fmt: skip


def _check_lengths(
    ctx: _Context, sheet: str, number: int, model: type[Any], fields: dict[str, Any]
) -> None:
    """A problem for every cell longer than its field allows (the whole import is refused)."""
    for name, limit in too_long(model, fields):
        column = "Description" if sheet == TRAINING and name == "description" else _COLUMN_OF[name]
        ctx.problem(sheet, number, column, f"longer than {limit} characters")


def _partnership_of(reviews: list[Review]) -> int | None:
    ids = {r.partnership_id for r in reviews}
    return ids.pop() if len(ids) == 1 else None


def _check_rights(ctx: _Context, number: int, ref: str, reviews: list[Review]) -> None:
    """The tracker's edit rule for one row: the existing action must be the principal's to
    change (problem on "Ref"), and so must the partnership the row's reviews give it (problem
    on "Review"), so a panel member can neither update nor create another partnership's
    action."""
    if ref in ctx.action_partnerships:
        owner = ctx.action_partnerships[ref]
        refusal = edit_refusal(ctx.principal, owner)
        if refusal:
            where = ctx.partnership_names.get(owner, f"partnership {owner}") if owner else ""
            ctx.problem(ACTIONS, number, "Ref", f"{ref!r} is an action of {where}: {refusal}")
    target = _partnership_of(reviews)
    refusal = edit_refusal(ctx.principal, target)
    if refusal and target is not None:
        names = ", ".join(repr(r.pseudonym) for r in reviews)
        where = ctx.partnership_names.get(target, f"partnership {target}")
        ctx.problem(
            ACTIONS,
            number,
            "Review",
            f"{names} would make {ref!r} an action of {where}: {refusal}",
        )


def _course_rows(
    ctx: _Context, sheet: Sheet, refs: dict[int, str], action_refs: set[str]
) -> list[_Row]:
    themes = _themes_parser(ctx.labels)
    known = action_refs | ctx.action_refs

    def linked(value: Any) -> list[str]:
        refs = _list(value)
        unknown = [r for r in refs if r not in known]
        if unknown:
            raise _Bad(f"unknown action {', '.join(repr(u) for u in unknown)}")
        return sorted(set(refs))

    rows = []
    for number, values in sheet.rows:
        ref = refs.get(number)
        cell = partial(ctx.cell, sheet.name, number, values)
        _required(ctx, sheet, number, values)
        fields = {
            "title": _text(values.get("Course")) or "",
            "provider": _text(values.get("Provider")),
            "description": _text(values.get("Description")),
        }
        links = {
            "themes": cell("Themes", themes) or [],
            "actions": cell("Linked actions", linked) or [],
        }
        _check_lengths(ctx, TRAINING, number, TrainingCourseBase, {**fields, "ref": ref})
        if ref:
            rows.append(_Row(ref, fields, links))
    return rows


def _session_rows(
    ctx: _Context, sheet: Sheet, refs: dict[int, str], course_refs: set[str]
) -> list[_Row]:
    known = course_refs | ctx.course_refs
    rows = []
    for number, values in sheet.rows:
        ref = refs.get(number)
        cell = partial(ctx.cell, sheet.name, number, values)
        _required(ctx, sheet, number, values)
        course = _text(values.get("Course ref"))
        if course and course not in known:
            ctx.problem(SESSIONS, number, "Course ref", f"unknown course {course!r}")
        fields = {
            "held_on": cell("Date", parse_date),
            "attendance": cell("Attendance", _number(int)),
            "pre_score": cell("Pre score", _score),
            "post_score": cell("Post score", _score),
        }
        if ref:
            rows.append(_Row(ref, fields, {"course": course}))
    return rows
