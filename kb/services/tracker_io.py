"""The tracker as a spreadsheet: import and export in the layout of docs/TRACKER_FORMAT.md.

Partnerships already keep their action plans in Excel, so the workbook is the way in and out.
Import is all-or-nothing: every row is validated first and *every* problem is reported with its
sheet, row and column, so a person fixes the workbook once instead of one error per attempt.
Nothing is written unless the whole workbook is valid.

The edit rule of kb.services.tracker applies row by row: viewers may not import at all, and a
panel member's workbook may neither update another partnership's action (a problem on "Ref")
nor create or move one into another partnership (a problem on "Review"). A file that is not a
readable workbook at all is one TrackerImportError naming the file, never an unhandled error.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils.datetime import from_excel
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import not_
from sqlmodel import Session, col, select

from kb.models import (
    Action,
    ActionBase,
    ActionCourseLink,
    ActionRecommendationLink,
    ActionStatus,
    ActionThemeLink,
    CourseThemeLink,
    ImpactRating,
    Partnership,
    Recommendation,
    Review,
    ReviewType,
    TrainingCourse,
    TrainingCourseBase,
    TrainingSession,
)
from kb.services import audit
from kb.services.access import Principal, visible_reviews
from kb.services.limits import too_long
from kb.services.spreadsheet import append_row, csv_unquote, write_csv
from kb.services.tracker import (
    check_may_edit,
    edit_refusal,
    hidden_recommendation_links,
    list_actions,
    list_courses,
    list_sessions,
    theme_labels,
    visible_actions,
)

ACTIONS, TRAINING, SESSIONS = "Actions", "Training", "Sessions"
COLUMNS: dict[str, tuple[str, ...]] = {
    ACTIONS: (
        "Ref", "Review", "Recommendation", "Themes", "Agency", "Owner", "Action", "Due date",
        "Status", "Completed", "Evidence of impact", "Impact rating",
    ),
    TRAINING: ("Ref", "Course", "Themes", "Provider", "Linked actions", "Description"),
    SESSIONS: (
        "Ref", "Course ref", "Date", "Attendance", "Pre score", "Post score", "Learning gain",
    ),
}  # fmt: skip
REQUIRED = {
    ACTIONS: ("Ref", "Action"),
    TRAINING: ("Ref", "Course"),
    SESSIONS: ("Ref", "Course ref"),
}
CSV_NAMES = {ACTIONS: "actions.csv", TRAINING: "training.csv", SESSIONS: "sessions.csv"}
SEP = "; "
_STATUS_ALIASES = {"complete": "completed", "done": "completed", "open": "in_progress",
                   "ongoing": "in_progress", "not_yet_started": "not_started"}  # fmt: skip
_UK_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.]+)?$")
_QUALIFIED_REC = re.compile(r"^(.*\S)\s*#\s*(\S+)$")
# What a damaged or mislabelled file raises while openpyxl / csv read it: not a zip, a zip
# without the workbook parts, broken XML inside (ElementTree's and lxml's parse errors are both
# SyntaxErrors), undecodable text, an unreadable file.
UNREADABLE = (
    OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile,
    zipfile.LargeZipFile, InvalidFileException, SyntaxError, csv.Error,
)  # fmt: skip


class TrackerImportError(ValueError):
    """The workbook has problems; ``problems`` lists every one, nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:5]) + (
            f"; … {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        super().__init__(f"{len(problems)} problem(s) in the tracker: {shown}")


class _Bad(ValueError):
    """A single cell's value is wrong; the message says why, without the location."""


# --------------------------------------------------------------------------- reading


@dataclass
class Sheet:
    """A sheet as header → value dicts, with the spreadsheet row number of each row."""

    name: str
    columns: list[str]
    rows: list[tuple[int, dict[str, Any]]]


def _sheet(name: str, rows: Iterable[Iterable[Any]]) -> Sheet:
    it = iter(rows)
    header = [str(c).strip() if c is not None else "" for c in next(it, [])]
    canonical = {c.lower(): c for c in COLUMNS[name]}
    names = [canonical.get(h.lower(), h) for h in header]
    body: list[tuple[int, dict[str, Any]]] = []
    for number, values in enumerate(it, start=2):
        values = list(values)
        if all(v is None or str(v).strip() == "" for v in values):
            continue
        body.append((number, {n: v for n, v in zip(names, values, strict=False) if n}))
    return Sheet(name, names, body)


def read_workbook(path: Path) -> dict[str, Sheet]:
    """Sheets of an .xlsx file, or of CSV files (one per sheet, or a single actions CSV)."""
    if path.is_dir() or path.suffix.lower() == ".csv":
        return _read_csvs(path)
    workbook = load_workbook(path, data_only=True, read_only=True)
    try:
        by_name = {ws.title.strip().lower(): ws for ws in workbook.worksheets}
        return {
            name: _sheet(name, by_name[name.lower()].iter_rows(values_only=True))
            for name in COLUMNS
            if name.lower() in by_name
        }
    finally:
        workbook.close()


def _csv_paths(path: Path) -> dict[str, Path]:
    """actions.csv / training.csv / sessions.csv in a folder, or a given CSV + its siblings."""
    folder = path if path.is_dir() else path.parent
    found = {name: folder / file for name, file in CSV_NAMES.items() if (folder / file).is_file()}
    if not path.is_dir():
        kind = next((n for n, f in CSV_NAMES.items() if f == path.name.lower()), ACTIONS)
        found[kind] = path
    return found


def _read_csvs(path: Path) -> dict[str, Sheet]:
    sheets = {}
    for name, file in _csv_paths(path).items():
        try:
            with file.open(newline="", encoding="utf-8-sig") as fh:
                sheets[name] = _sheet(
                    name,
                    [[csv_unquote(c) if c != "" else None for c in r] for r in csv.reader(fh)],
                )
        except UNREADABLE as exc:  # say which of several CSV files is broken
            raise _Unreadable(file, _reason(exc)) from exc
    return sheets


class _Unreadable(Exception):
    """One file of the import cannot be read; carries the file so the message can name it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}")
        self.path, self.reason = path, reason


def _reason(exc: BaseException) -> str:
    """A short, path-free description of why a file could not be read."""
    if isinstance(exc, zipfile.BadZipFile | InvalidFileException | KeyError):
        return "not an .xlsx workbook (or a damaged one)"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, SyntaxError):
        return "damaged workbook (broken XML inside)"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


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
    ctx: _Context, sheet: str, number: int, model: type[Any], fields: Mapping[str, Any]
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
            "pre_score": cell("Pre score", _number(float)),
            "post_score": cell("Post score", _number(float)),
        }
        if ref:
            rows.append(_Row(ref, fields, {"course": course}))
    return rows


# --------------------------------------------------------------------------- writing


def _upsert(session: Session, model: type, ref: str, fields: dict[str, Any]) -> tuple[Any, bool]:
    row = session.exec(select(model).where(model.ref == ref)).first()
    created = row is None
    if row is None:
        row = model(ref=ref, **fields)
    else:
        for name, value in fields.items():
            setattr(row, name, value)
        if hasattr(row, "version_id"):
            row.version_id += 1
    session.add(row)
    session.flush()
    return row, created


def _replace_links(
    session: Session, link: type, owner: str, owner_id: int, rows: list[Any]
) -> None:
    for old in session.exec(select(link).where(getattr(link, owner) == owner_id)).all():
        session.delete(old)
    session.flush()
    session.add_all(rows)


def _write(
    session: Session,
    principal: Principal,
    actions: list[_Row],
    courses: list[_Row],
    sessions: list[_Row],
) -> dict[str, dict[str, int]]:
    counts = {name: {"created": 0, "updated": 0} for name in ("actions", "training", "sessions")}
    for row in actions:
        action, created = _upsert(session, Action, row.ref, row.fields)
        counts["actions"]["created" if created else "updated"] += 1
        kept = hidden_recommendation_links(session, principal=principal, action_id=action.id)
        recs = [
            ActionRecommendationLink(action_id=action.id, recommendation_id=r)
            for r in sorted(set(row.links["recs"]) | set(kept))
        ]
        _replace_links(session, ActionRecommendationLink, "action_id", action.id, recs)
        themes = [ActionThemeLink(action_id=action.id, theme_id=t) for t in row.links["themes"]]
        _replace_links(session, ActionThemeLink, "action_id", action.id, themes)
    for row in courses:
        course, created = _upsert(session, TrainingCourse, row.ref, row.fields)
        counts["training"]["created" if created else "updated"] += 1
        themes = [CourseThemeLink(course_id=course.id, theme_id=t) for t in row.links["themes"]]
        _replace_links(session, CourseThemeLink, "course_id", course.id, themes)
        ids = session.exec(select(Action.id).where(col(Action.ref).in_(row.links["actions"]))).all()
        # The importer never saw links to actions hidden from them: keep those, do not drop them.
        hidden = session.exec(
            select(ActionCourseLink.action_id)
            .join(Action, col(Action.id) == ActionCourseLink.action_id)
            .where(ActionCourseLink.course_id == course.id, not_(visible_actions(principal)))
        ).all()
        links = [ActionCourseLink(course_id=course.id, action_id=a) for a in {*ids, *hidden}]
        _replace_links(session, ActionCourseLink, "course_id", course.id, links)
    for row in sessions:
        course_id = session.exec(
            select(TrainingCourse.id).where(TrainingCourse.ref == row.links["course"])
        ).one()
        _, created = _upsert(
            session, TrainingSession, row.ref, {**row.fields, "course_id": course_id}
        )
        counts["sessions"]["created" if created else "updated"] += 1
    session.flush()
    return counts


def import_tracker(
    session: Session,
    *,
    principal: Principal,
    path: Path,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Validate the whole workbook, then upsert actions, courses and sessions by Ref.

    Forbidden for principals who may not edit actions at all (viewers). Otherwise raises
    TrackerImportError (listing every problem, including rows the principal may not change, or
    the file name when the file cannot be read) before writing anything; rows absent from the
    workbook are left alone. ``names`` maps stored file names to the names to show in messages
    (the API stores uploads under fixed names). Runs in the caller's transaction.
    """
    check_may_edit(principal)
    shown = dict(names or {})
    try:
        sheets = read_workbook(path)
    except _Unreadable as exc:
        name = shown.get(exc.path.name, exc.path.name)
        raise TrackerImportError([f"cannot read {name}: {exc.reason}"]) from exc
    except UNREADABLE as exc:
        name = shown.get(path.name, path.name)
        raise TrackerImportError([f"cannot read {name}: {_reason(exc)}"]) from exc
    if not sheets:
        name = shown.get(path.name, path.name)
        raise TrackerImportError([f"{name} has no sheet named {', '.join(COLUMNS)}"])
    ctx = _context(session, principal)
    _missing_columns(ctx, sheets)
    refs = {name: _refs(ctx, sheet) for name, sheet in sheets.items()}
    action_refs = set(refs.get(ACTIONS, {}).values())
    course_refs = set(refs.get(TRAINING, {}).values())
    actions = _action_rows(ctx, sheets[ACTIONS], refs[ACTIONS]) if ACTIONS in sheets else []
    courses = (
        _course_rows(ctx, sheets[TRAINING], refs[TRAINING], action_refs)
        if TRAINING in sheets
        else []
    )
    sessions = (
        _session_rows(ctx, sheets[SESSIONS], refs[SESSIONS], course_refs)
        if SESSIONS in sheets
        else []
    )
    if ctx.problems:
        raise TrackerImportError(ctx.problems)
    counts = _write(session, principal, actions, courses, sessions)
    audit.record(
        session,
        principal=principal,
        action="tracker.import",
        object_type="tracker",
        object_id=None,
        detail={k: f"{v['created']}+{v['updated']}" for k, v in counts.items()},
    )
    return counts


# --------------------------------------------------------------------------- export


def _review_refs(
    session: Session, principal: Principal
) -> tuple[dict[int, str], dict[int, tuple[int, str | None]]]:
    """How each visible review is written (pseudonym, + partnership when ambiguous), and each
    visible recommendation as (review id, number)."""
    rows = session.exec(
        select(Review, Partnership.name)
        .join(Partnership, col(Review.partnership_id) == Partnership.id, isouter=True)
        .where(visible_reviews(principal))
    ).all()
    namesakes: dict[str, list[tuple[Review, str | None]]] = {}
    for review, partnership in rows:
        namesakes.setdefault(review.pseudonym.strip().lower(), []).append((review, partnership))
    names = {
        review.id: _unique_name(review, partnership, namesakes[review.pseudonym.strip().lower()])
        for review, partnership in rows
    }
    recs = {
        rec.id: (rec.review_id, rec.number)
        for rec in session.exec(
            select(Recommendation).where(col(Recommendation.review_id).in_(list(names)))
        )
    }
    return names, recs  # type: ignore[return-value]


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


def _action_cells(
    action: Any, names: dict[int, str], recs: dict[int, tuple[int, str | None]]
) -> list[Any]:
    pairs = [recs[r] for r in action.recommendation_ids if r in recs]
    review_ids = list(dict.fromkeys(review_id for review_id, _ in pairs))
    if len(review_ids) == 1:
        numbers = [n or "" for _, n in pairs]
    else:
        numbers = [f"{names[rid]} #{n}" for rid, n in pairs]
    return [
        action.ref, SEP.join(names[r] for r in review_ids),
        SEP.join(sorted(numbers, key=_natural)), SEP.join(action.theme_ids), action.agency,
        action.owner, action.description, action.due_date, _human(action.status),
        action.completed_date, action.impact_evidence,
        _human(action.impact_rating) if action.impact_rating else None,
    ]  # fmt: skip


def tracker_tables(session: Session, *, principal: Principal) -> dict[str, list[list[Any]]]:
    """The three sheets as rows (header first), as the principal may see them."""
    names, recs = _review_refs(session, principal)
    actions = list_actions(session, principal=principal)
    refs = {a.id: a.ref for a in actions}
    courses = list_courses(session, principal=principal)
    course_refs = {c.id: c.ref for c in courses}
    return {
        ACTIONS: [list(COLUMNS[ACTIONS])] + [_action_cells(a, names, recs) for a in actions],
        TRAINING: [list(COLUMNS[TRAINING])] + [
            [c.ref, c.title, SEP.join(c.theme_ids), c.provider,
             SEP.join(sorted(refs[a] for a in c.action_ids if a in refs)), c.description]
            for c in courses
        ],
        SESSIONS: [list(COLUMNS[SESSIONS])] + [
            [s.ref, course_refs[s.course_id], s.held_on, s.attendance, s.pre_score, s.post_score,
             s.learning_gain]
            for s in list_sessions(session)
        ],
    }  # fmt: skip


def export_tracker(session: Session, *, principal: Principal, path: Path) -> list[Path]:
    """Write the tracker as .xlsx, or as actions/training/sessions CSVs; returns files written."""
    tables = tracker_tables(session, principal=principal)
    if path.suffix.lower() == ".csv" or path.is_dir():
        return _write_csvs(tables, path)
    _write_xlsx(tables, path)
    return [path]


def _write_csvs(tables: dict[str, list[list[Any]]], path: Path) -> list[Path]:
    folder = path if path.is_dir() else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    targets = {name: folder / file for name, file in CSV_NAMES.items()}
    if not path.is_dir():
        targets[ACTIONS] = path
    for name, target in targets.items():
        write_csv(target, tables[name])
    return list(targets.values())


def _write_xlsx(tables: dict[str, list[list[Any]]], path: Path) -> None:
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for name, rows in tables.items():
        ws = workbook.create_sheet(name)
        for row in rows:
            append_row(ws, row)  # text stays text: never a formula
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for column in ws.columns:
            for cell in column[1:]:
                if isinstance(cell.value, date):
                    cell.number_format = "yyyy-mm-dd"
            width = max(len(str(c.value or "")) for c in column)
            ws.column_dimensions[column[0].column_letter].width = min(max(width + 2, 10), 60)
        ws.freeze_panes = "A2"
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
