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
import zipfile
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import not_
from sqlmodel import Session, col, select

from kb.models import (
    Action,
    ActionCourseLink,
    ActionRecommendationLink,
    ActionThemeLink,
    CourseThemeLink,
    Partnership,
    Recommendation,
    Review,
    TrainingCourse,
    TrainingSession,
)
from kb.services import audit
from kb.services.access import Principal, visible_reviews
from kb.services.spreadsheet import append_row, csv_unquote, write_csv
from kb.services.tracker import (
    check_may_edit,
    hidden_recommendation_links,
    list_actions,
    list_courses,
    list_sessions,
    visible_actions,
)
from kb.services.tracker_format import (
    ACTIONS,
    COLUMNS,
    CSV_NAMES,
    SEP,
    SESSIONS,
    TRAINING,
    UNREADABLE,
    Sheet,
    TrackerImportError,
)
from kb.services.tracker_rows import (
    _action_rows,
    _context,
    _course_rows,
    _human,
    _missing_columns,
    _natural,
    _refs,
    _Row,
    _session_rows,
    _unique_name,
)

# --------------------------------------------------------------------------- reading


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
