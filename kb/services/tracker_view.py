"""The tracker as a scrutineer reads it: filters, a summary strip and the signals export.

Everything here narrows or counts what kb.services.tracker and kb.services.signals already
returned for the principal, so a filter can never widen access. A "case" is the Case linking
the documents about one child (kb/services/tracker_cases.py: ``?case=12``, or ``r34`` for a
review not linked to others; an old pseudonym value still works): a rapid review and the LCSPR
that followed it are one child, and a scrutineer asks about the child, not either document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from sqlmodel import Session, col, select

from kb.models import ActionPublic, ActionStatus, Partnership, Recommendation, Review
from kb.services.access import Principal, visibility_key, visible_reviews
from kb.services.cache import RESULTS, data_fingerprint
from kb.services.readable_export import Table, csv_bytes, xlsx_bytes
from kb.services.signals import signals
from kb.services.tracker import list_actions
from kb.services.tracker_cases import (
    CaseChoice,
    UnknownCase,
    is_case_value,
    resolve_case,
    visible_cases,
)

DONE = (ActionStatus.COMPLETED, ActionStatus.CLOSED)
KIND_TITLES = {
    "recurrence_after_action": "Recurred after action",
    "deja_vu": "Same recommendation again",
    "rising": "Rising theme",
    "overdue": "Overdue action",
    "no_impact_evidence": "No evidence of impact",
}
Impact = Literal["with", "without"]


@dataclass(frozen=True)
class TrackerFilter:
    """What the tracker page, its summary and the signals export are narrowed to.

    ``status``, ``overdue`` and ``impact`` describe actions: with any of them set, only the
    signals about a matching action are kept (a rising theme has no action to match).
    """

    theme: str | None = None
    partnership: str | None = None
    case: str | None = None
    status: ActionStatus | None = None
    overdue: bool = False
    impact: Impact | None = None

    def active(self) -> bool:
        return any((self.theme, self.partnership, self.case, self.status, self.overdue,
                    self.impact))  # fmt: skip

    def query(self) -> dict[str, str]:
        """The filters as URL parameters (for links and the export)."""
        out = {
            "theme": self.theme or "",
            "partnership": self.partnership or "",
            "case": self.case or "",
            "status": self.status.value if self.status else "",
            "overdue": "yes" if self.overdue else "",
            "impact": self.impact or "",
        }
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class TrackerContext:
    """Lookups the filters need: partnership names and each action's cases (visible only)."""

    partnerships: dict[int, str]
    cases: dict[int, list[dict[str, Any]]]  # action id → [{id, pseudonym}] of visible reviews
    case_of: dict[int, str] = field(default_factory=dict)  # review id → its case's URL value
    case_choices: list[CaseChoice] = field(default_factory=list)  # the case filter's options
    case: str | None = None  # the case filter resolved to a URL value ("" matches nothing)

    def in_case(self, review: dict[str, Any], f: TrackerFilter) -> bool:
        """Whether a (visible) review belongs to the filtered case."""
        if self.case is not None:
            return self.case_of.get(review["id"]) == self.case
        return _same(review["pseudonym"], f.case)  # an old pseudonym URL


def tracker_context(
    session: Session,
    principal: Principal,
    actions: list[ActionPublic],
    *,
    other_reviews: Iterable[int] = (),
    case: str | None = None,
) -> TrackerContext:
    """One query for partnership names, one for the reviews behind the actions'
    recommendations, one for the cases of those and ``other_reviews`` (the signals')."""
    names = {int(i): n for i, n in session.exec(select(Partnership.id, Partnership.name)).all()}
    rec_ids = {r for a in actions for r in a.recommendation_ids}
    rows = session.exec(
        select(Recommendation.id, Review.id, Review.pseudonym)
        .join(Review, col(Review.id) == Recommendation.review_id)
        .where(col(Recommendation.id).in_(rec_ids), visible_reviews(principal))
    ).all()
    by_rec = {int(rec): {"id": rid, "pseudonym": name} for rec, rid, name in rows}
    cases: dict[int, list[dict[str, Any]]] = {}
    for action in actions:
        seen = {by_rec[r]["id"]: by_rec[r] for r in action.recommendation_ids if r in by_rec}
        cases[action.id] = sorted(seen.values(), key=lambda r: (r["pseudonym"], r["id"]))
    ids = {r["id"] for rs in cases.values() for r in rs} | set(other_reviews)
    case_of, choices = visible_cases(session, principal, ids)
    return TrackerContext(
        partnerships=names, cases=cases, case_of=case_of, case_choices=choices, case=case
    )


def is_overdue(action: ActionPublic, today: date) -> bool:
    return action.status not in DONE and action.due_date is not None and action.due_date < today


def has_impact_evidence(action: ActionPublic) -> bool:
    return bool((action.impact_evidence or "").strip())


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").strip().lower() == (b or "").strip().lower()


def filter_actions(
    actions: Iterable[ActionPublic], f: TrackerFilter, ctx: TrackerContext, today: date
) -> list[ActionPublic]:
    """The actions matching every filter that is set."""
    out = []
    for a in actions:
        if f.theme and f.theme not in a.theme_ids:
            continue
        if f.partnership and not _same(ctx.partnerships.get(a.partnership_id or -1), f.partnership):
            continue
        if f.case and not any(ctx.in_case(r, f) for r in ctx.cases.get(a.id, [])):
            continue
        if f.status and a.status != f.status:
            continue
        if f.overdue and not is_overdue(a, today):
            continue
        if f.impact and (a.status not in DONE or has_impact_evidence(a) != (f.impact == "with")):
            continue
        out.append(a)
    return out


def filter_signals(
    signals: Iterable[dict[str, Any]],
    f: TrackerFilter,
    ctx: TrackerContext,
    kept_refs: set[str],
) -> list[dict[str, Any]]:
    """The signals matching the filters (``kept_refs``: refs of the actions that matched)."""
    out = []
    for s in signals:
        refs = {a["ref"] for a in s["actions"]}
        if f.theme and s["theme"] != f.theme:
            continue
        if f.case and not any(ctx.in_case(r, f) for r in s["reviews"]):
            continue
        if f.partnership and not (
            refs & kept_refs
            or any(
                _same(ctx.partnerships.get(r.get("partnership_id") or -1), f.partnership)
                for r in s["reviews"]
            )
        ):
            continue
        if (f.status or f.overdue or f.impact) and not refs & kept_refs:
            continue
        out.append(s)
    return out


def summary(
    actions: list[ActionPublic], signals: list[dict[str, Any]], today: date
) -> dict[str, Any]:
    """The counts at the top of the tracker: actions by status, overdue, impact, signals."""
    statuses = Counter(a.status for a in actions)
    done = [a for a in actions if a.status in DONE]
    kinds = Counter(s["kind"] for s in signals)
    return {
        "actions": len(actions),
        "by_status": [(s, statuses[s]) for s in ActionStatus if statuses[s]],
        "overdue": sum(is_overdue(a, today) for a in actions),
        "done": len(done),
        "with_impact": sum(has_impact_evidence(a) for a in done),
        "without_impact": sum(not has_impact_evidence(a) for a in done),
        "signals": len(signals),
        "by_kind": [(KIND_TITLES.get(k, k), kinds[k], k) for k in KIND_TITLES if kinds[k]],
    }


def cases_of(reviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reviews grouped by case (pseudonym), each case once, its reviews in date order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for review in reviews:
        grouped.setdefault(review["pseudonym"], []).append(review)
    return [
        {"pseudonym": name, "reviews": sorted(items, key=lambda r: (r.get("date") or "", r["id"]))}
        for name, items in grouped.items()
    ]


def _kind(value: str | None) -> str:
    """lcspr → LCSPR, rapid_review → Rapid review."""
    text = value or "review"
    return (
        text.upper()
        if text in ("scr", "lcspr", "sar", "dhr")
        else text.replace("_", " ").capitalize()
    )


def signals_table(
    signals: list[dict[str, Any]], labels: dict[str, str], f: TrackerFilter, today: date
) -> Table:
    """The signals as a readable table: full text, cases once, the actions and reviews."""
    narrowed = "; ".join(f"{k} {v}" for k, v in f.query().items())
    title = f"Tracker signals, {today.isoformat()}" + (f" ({narrowed})" if narrowed else "")
    rows = []
    for s in signals:
        cases = cases_of(s["reviews"])
        rows.append(
            [
                KIND_TITLES.get(s["kind"], s["kind"]),
                labels.get(s["theme"], s["theme"]) if s["theme"] else "",
                s.get("headline") or "",
                s["summary"],
                "; ".join(c["pseudonym"] for c in cases),
                "; ".join(
                    f"{r['pseudonym']} ({_kind(r.get('type'))}"
                    f"{', ' + r['date'] if r.get('date') else ''})"
                    for c in cases
                    for r in c["reviews"]
                ),
                "; ".join(f"{a['ref']} ({a['status'].replace('_', ' ')})" for a in s["actions"]),
            ]
        )
    columns = ("Signal", "Theme", "In short", "Details", "Cases", "Reviews", "Actions")
    return Table(name="Signals", title=title, columns=columns, rows=rows)


def signals_file(table: Table, fmt: str) -> bytes:
    """The signals table as ``csv`` or ``xlsx`` bytes."""
    if fmt == "csv":
        return csv_bytes(table)
    if fmt == "xlsx":
        return xlsx_bytes([table])
    raise ValueError(f"cannot export signals as .{fmt}: use .csv or .xlsx")


def write_signals(table: Table, path: Path) -> Path:
    """Write the signals to ``path`` (.csv or .xlsx, by its suffix)."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx"):
        raise ValueError(f"cannot export signals to {path.name}: use .csv or .xlsx")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(signals_file(table, fmt))
    return path


def scrutiny(
    session: Session,
    principal: Principal,
    f: TrackerFilter,
    *,
    similarity_threshold: float,
    today: date | None = None,
) -> dict[str, Any]:
    """The principal's actions and signals narrowed by ``f``, their summary, and the choices
    a filter form offers (themes, partnerships and cases that occur in what they may see).

    Cached by data version and visibility: every tracker page asks for it, and building it
    (every action, every signal, the cases behind them: five queries and their joins in
    Python) was most of the page's time under benchmarks/load.py.
    """
    today = today or date.today()
    key = (
        "scrutiny",
        visibility_key(principal),
        f,
        today,
        similarity_threshold,
        data_fingerprint(session),
    )
    return RESULTS.get_or_compute(
        session,
        key,
        lambda: _scrutiny(session, principal, f, similarity_threshold, today),  # type: ignore[arg-type]
    )


def _scrutiny(
    session: Session,
    principal: Principal,
    f: TrackerFilter,
    similarity_threshold: float,
    today: date,
) -> dict[str, Any]:
    everything = list_actions(session, principal=principal)
    found = signals(
        session, principal=principal, similarity_threshold=similarity_threshold, today=today
    )
    case, unknown_case = _wanted_case(session, principal, f)
    signal_reviews = {r["id"] for s in found for r in s["reviews"]}
    ctx = tracker_context(session, principal, everything, other_reviews=signal_reviews, case=case)
    actions = filter_actions(everything, f, ctx, today)
    kept = filter_signals(found, f, ctx, {a.ref for a in actions})
    used = {a.partnership_id for a in everything} | {
        r.get("partnership_id") for s in found for r in s["reviews"]
    }
    themes = {t for a in everything for t in a.theme_ids} | {s["theme"] for s in found}
    return {
        "filter": f,
        "today": today,
        "actions": actions,
        "signals": kept,
        "summary": summary(actions, kept, today),
        "context": ctx,
        "case_unknown": unknown_case,
        "options": {
            "themes": sorted(t for t in themes if t),
            "partnerships": sorted(ctx.partnerships[p] for p in used if p in ctx.partnerships),
            "cases": ctx.case_choices,
        },
    }


def _wanted_case(
    session: Session, principal: Principal, f: TrackerFilter
) -> tuple[str | None, bool]:
    """(the case filter as a URL value or None for a pseudonym, whether it is unknown). A
    hidden case and a missing one are both unknown: the filter then matches nothing."""
    if not is_case_value(f.case):
        return None, False
    try:
        return resolve_case(session, principal, f.case or ""), False
    except UnknownCase:
        return "", True
