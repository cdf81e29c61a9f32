"""The thematic tracker: actions answering recommendations, and the training delivering them.

The chain the scrutineer follows is finding → recommendation → action → training → impact.
Actions are only as visible as the reviews behind them: an action linked solely to
recommendations of reviews the principal may not see is invisible to that principal, and links
into hidden reviews are left out of what a principal is shown.

Who may change an action is decided here too (``check_may_edit``), not in the routes, so the
API, the web pages and the spreadsheet import all apply one rule: viewers only read; panel
members change their own partnership's actions and partnership-wide ones; admins change all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, not_, or_, update
from sqlmodel import Session, col, delete, select

from kb.models import (
    Action,
    ActionBase,
    ActionCourseLink,
    ActionCreate,
    ActionPublic,
    ActionRecommendationLink,
    ActionThemeLink,
    ActionUpdate,
    CourseThemeLink,
    Partnership,
    Recommendation,
    Review,
    Role,
    TrainingCourse,
    TrainingCourseCreate,
    TrainingCoursePublic,
    TrainingCourseUpdate,
    TrainingSession,
    TrainingSessionCreate,
    TrainingSessionPublic,
    TrainingSessionUpdate,
)
from kb.services import audit
from kb.services.access import Principal, visibility_key, visible_reviews
from kb.services.cache import RESULTS, data_fingerprint
from kb.services.errors import Conflict, Forbidden
from kb.services.limits import check_lengths
from kb.services.reviews import NotFound

# Used only when nlp.taxonomy cannot be imported: the 27 shared core ids (docs/THEMES.md).
_CORE_THEMES = {
    "under-1s": "Under-1s",
    "non-accidental-injury": "Non-accidental injury",
    "neglect": "Neglect",
    "sexual-abuse": "Sexual abuse",
    "child-exploitation": "Child exploitation",
    "online-harm": "Online harm",
    "peer-violence": "Peer violence",
    "suicide-self-harm": "Suicide and self-harm",
    "child-mental-health": "Child mental health",
    "disability-complex-needs": "Disability and complex needs",
    "missing-education": "Missing education",
    "domestic-abuse": "Domestic abuse",
    "parental-mental-health": "Parental mental health",
    "substance-misuse": "Substance misuse",
    "hidden-men": "Hidden men",
    "parental-history": "Parental history",
    "culture-ethnicity": "Culture and ethnicity",
    "poverty-housing": "Poverty and housing",
    "information-sharing": "Information sharing",
    "thresholds-procedures": "Thresholds and procedures",
    "professional-curiosity": "Professional curiosity",
    "voice-of-child": "Voice of the child",
    "think-family-transition": "Think family and transition",
    "cross-border": "Cross-border",
    "was-not-brought": "Was not brought",
    "sudi-safe-sleep": "SUDI and safe sleep",
    "covid-19": "Covid-19",
}


def theme_labels() -> dict[str, str]:
    """Theme id → label from the configured taxonomy (shipped + the partnership's own files)."""
    from kb.config import get_settings

    return dict(_labels(tuple(get_settings().taxonomy_files)))


@lru_cache(maxsize=4)
def _labels(extra: tuple[Any, ...]) -> tuple[tuple[str, str], ...]:
    try:
        from nlp.taxonomy import load_taxonomy

        taxonomy = load_taxonomy(list(extra) or None)
        return tuple(
            (tid, str(getattr(t, "label", tid) or tid)) for tid, t in taxonomy.themes.items()
        )
    except Exception:  # noqa: BLE001 - taxonomy module missing or broken: core ids still work
        return tuple(_CORE_THEMES.items())


def label_of(theme_id: str, labels: dict[str, str] | None = None) -> str:
    """A theme's label, or its id when the taxonomy does not know it."""
    return (labels if labels is not None else theme_labels()).get(theme_id, theme_id)


def check_themes(theme_ids: Iterable[str]) -> list[str]:
    """The ids, deduplicated and sorted; ValueError naming the valid ids for unknown ones."""
    known = theme_labels()
    ids = sorted(set(theme_ids))
    unknown = [t for t in ids if t not in known]
    if unknown:
        names = ", ".join(repr(t) for t in unknown)
        raise ValueError(f"unknown theme {names} (valid: {', '.join(sorted(known))})")
    return ids


# --------------------------------------------------------------------------- visibility


def visible_actions(principal: Principal) -> ColumnElement[bool]:
    """SQL condition on ``Action``: partnership-wide actions (no recommendation) or actions
    answering at least one recommendation of a review the principal may see."""
    linked = select(ActionRecommendationLink.action_id).where(
        ActionRecommendationLink.action_id == Action.id
    )
    seen = (
        select(ActionRecommendationLink.action_id)
        .join(Recommendation, col(Recommendation.id) == ActionRecommendationLink.recommendation_id)
        .join(Review, col(Review.id) == Recommendation.review_id)
        .where(and_(ActionRecommendationLink.action_id == Action.id, visible_reviews(principal)))
    )
    return or_(not_(exists(linked)), exists(seen))


def _visible_recommendation_links(
    session: Session, principal: Principal, action_ids: list[int]
) -> dict[int, list[int]]:
    rows = session.exec(
        select(ActionRecommendationLink.action_id, ActionRecommendationLink.recommendation_id)
        .join(Recommendation, col(Recommendation.id) == ActionRecommendationLink.recommendation_id)
        .join(Review, col(Review.id) == Recommendation.review_id)
        .where(col(ActionRecommendationLink.action_id).in_(action_ids), visible_reviews(principal))
    ).all()
    return _grouped(rows)


def hidden_recommendation_links(
    session: Session, *, principal: Principal, action_id: int
) -> list[int]:
    """Recommendations the action answers that ``principal`` cannot see.

    Editors replace an action's links with the ones they were shown; these are kept on top so
    an edit never silently drops a link into a review the editor does not know about.
    """
    linked = set(
        session.exec(
            select(ActionRecommendationLink.recommendation_id).where(
                ActionRecommendationLink.action_id == action_id
            )
        ).all()
    )
    seen = _visible_recommendation_links(session, principal, [action_id]).get(action_id, [])
    return sorted(linked - set(seen))


def _grouped(rows: Iterable[tuple[Any, Any]]) -> dict[Any, list[Any]]:
    grouped: dict[Any, list[Any]] = defaultdict(list)
    for key, value in rows:
        grouped[key].append(value)
    return {key: sorted(values) for key, values in grouped.items()}


# --------------------------------------------------------------------------- permissions

EDITORS = (Role.PANEL, Role.ADMIN)


def edit_refusal(principal: Principal, partnership_id: int | None) -> str | None:
    """Why ``principal`` may not change an action of ``partnership_id`` (None: they may).

    Panel members answer for their own partnership's plan, so they may change its actions and
    partnership-wide ones (no partnership), never another partnership's.
    """
    if principal.role not in EDITORS:
        return "only panel members and admins may edit"
    if (
        principal.role == Role.PANEL
        and partnership_id is not None
        and partnership_id != principal.partnership_id
    ):
        return "panel members may only edit their own partnership's actions"
    return None


def may_edit(principal: Principal, partnership_id: int | None = None) -> bool:
    """Whether edit forms should be offered for an action of ``partnership_id``."""
    return edit_refusal(principal, partnership_id) is None


def check_may_edit(principal: Principal, partnership_id: int | None = None) -> None:
    """Forbidden unless ``principal`` may change an action of ``partnership_id``."""
    refusal = edit_refusal(principal, partnership_id)
    if refusal is not None:
        raise Forbidden(refusal)


# --------------------------------------------------------------------------- actions


def list_actions(session: Session, *, principal: Principal) -> list[ActionPublic]:
    """Every action the principal may see, by ref, with its (visible) links.

    Cached per visibility key and data version: the tracker page and the signals read it on
    every request, and it changes only when someone edits the tracker.
    """
    key = ("actions", visibility_key(principal), data_fingerprint(session))
    return RESULTS.get_or_compute(session, key, lambda: _list_actions(session, principal))


def _list_actions(session: Session, principal: Principal) -> list[ActionPublic]:
    actions = session.exec(
        select(Action).where(visible_actions(principal)).order_by(col(Action.ref))
    ).all()
    return _action_publics(session, principal, list(actions))


def _action_publics(
    session: Session, principal: Principal, actions: list[Action]
) -> list[ActionPublic]:
    ids = [a.id for a in actions if a.id is not None]
    recs = _visible_recommendation_links(session, principal, ids)
    themes = _grouped(
        session.exec(
            select(ActionThemeLink.action_id, ActionThemeLink.theme_id).where(
                col(ActionThemeLink.action_id).in_(ids)
            )
        ).all()
    )
    courses = _grouped(
        session.exec(
            select(ActionCourseLink.action_id, ActionCourseLink.course_id).where(
                col(ActionCourseLink.action_id).in_(ids)
            )
        ).all()
    )
    return [
        ActionPublic.model_validate(
            action,
            update={
                "recommendation_ids": recs.get(action.id, []),
                "theme_ids": themes.get(action.id, []),
                "course_ids": courses.get(action.id, []),
            },
        )
        for action in actions
    ]


def get_action(session: Session, *, principal: Principal, action_id: int) -> ActionPublic:
    """One action, or NotFound when it does not exist or is hidden from the principal."""
    action = session.exec(
        select(Action).where(Action.id == action_id, visible_actions(principal))
    ).first()
    if action is None:
        raise NotFound(f"action {action_id} not found")
    return _action_publics(session, principal, [action])[0]


def _check_recommendations(session: Session, principal: Principal, ids: list[int]) -> list[int]:
    """The ids, after checking each is a recommendation of a review the principal may see."""
    ids = sorted(set(ids))
    found = set(
        session.exec(
            select(Recommendation.id)
            .join(Review, col(Review.id) == Recommendation.review_id)
            .where(col(Recommendation.id).in_(ids), visible_reviews(principal))
        ).all()
    )
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"recommendation {', '.join(map(str, missing))} not found")
    return ids


def _partnership_of(session: Session, recommendation_ids: list[int]) -> int | None:
    """The partnership whose reviews the recommendations come from, when it is just one."""
    found = set(
        session.exec(
            select(Review.partnership_id)
            .join(Recommendation, col(Recommendation.review_id) == Review.id)
            .where(col(Recommendation.id).in_(recommendation_ids))
        ).all()
    )
    return found.pop() if len(found) == 1 else None


def _set_action_links(
    session: Session,
    action_id: int,
    recommendation_ids: list[int] | None,
    theme_ids: list[str] | None,
) -> None:
    if recommendation_ids is not None:
        session.exec(
            delete(ActionRecommendationLink).where(
                col(ActionRecommendationLink.action_id) == action_id
            )
        )  # type: ignore[call-overload]
        session.add_all(
            ActionRecommendationLink(action_id=action_id, recommendation_id=r)
            for r in recommendation_ids
        )
    if theme_ids is not None:
        session.exec(delete(ActionThemeLink).where(col(ActionThemeLink.action_id) == action_id))  # type: ignore[call-overload]
        session.add_all(ActionThemeLink(action_id=action_id, theme_id=t) for t in theme_ids)


def create_action(session: Session, *, principal: Principal, data: ActionCreate) -> ActionPublic:
    """Add an action; its recommendations must be visible to the principal. Without a
    partnership it takes that of its recommendations' reviews (when they agree), and the edit
    rule is checked on that partnership: a panel member cannot create another's action by
    linking it to that partnership's published recommendations."""
    check_may_edit(principal, data.partnership_id)
    check_lengths(ActionBase, data.model_dump())
    recs = _check_recommendations(session, principal, data.recommendation_ids)
    themes = check_themes(data.theme_ids)
    _check_ref_free(session, data.ref)
    _check_partnership(session, data.partnership_id)
    action = Action.model_validate(data.model_dump(exclude={"recommendation_ids", "theme_ids"}))
    if action.partnership_id is None:
        action.partnership_id = _partnership_of(session, recs)
    check_may_edit(principal, action.partnership_id)
    session.add(action)
    session.flush()
    _set_action_links(session, action.id, recs, themes)  # type: ignore[arg-type]
    session.flush()
    audit.record(
        session,
        principal=principal,
        action="action.create",
        object_type="action",
        object_id=action.id,
        detail={"version": action.version_id},
    )
    return get_action(session, principal=principal, action_id=action.id)  # type: ignore[arg-type]


def _locked(session: Session, row: Action, expected_version: int | None, what: str) -> None:
    """Optimistic lock: claim the next version, or Conflict for a version the caller has not seen.

    The check and the version bump are one conditional UPDATE: comparing in Python first would
    let two editors who read the same version both pass and the later one silently overwrite.
    """
    guard = [col(Action.id) == row.id]
    if expected_version is not None:
        guard.append(col(Action.version_id) == expected_version)
    claimed = session.execute(
        update(Action)
        .where(*guard)
        .values(version_id=Action.version_id + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        now = session.exec(select(Action.version_id).where(col(Action.id) == row.id)).first()
        if now is None:
            raise Conflict(f"{what} was deleted by someone else; reload")
        raise Conflict(
            f"{what} was changed by someone else (version {now}, you had "
            f"{expected_version}); reload and try again"
        )
    session.refresh(row, ["version_id"])


def _check_partnership(session: Session, partnership_id: int | None) -> None:
    """ValueError (a 400, not a foreign-key failure) for a partnership id that does not exist."""
    if partnership_id is not None and session.get(Partnership, partnership_id) is None:
        raise ValueError(f"unknown partnership {partnership_id}")


def _check_ref_free(session: Session, ref: str, action_id: int | None = None) -> None:
    """ValueError (a 400, not a database error) when another action already has ``ref``."""
    taken = session.exec(select(Action.id).where(Action.ref == ref)).first()
    if taken is not None and taken != action_id:
        raise ValueError(f"an action with ref {ref!r} already exists")


def update_action(
    session: Session,
    *,
    principal: Principal,
    action_id: int,
    data: ActionUpdate,
    expected_version: int | None,
) -> ActionPublic:
    """Change the fields given in ``data``: NotFound when hidden, Forbidden when the action
    (or the partnership it would move to) is not the principal's to change, Conflict when
    ``expected_version`` is stale."""
    get_action(session, principal=principal, action_id=action_id)  # visibility
    action = session.get(Action, action_id)
    assert action is not None
    check_may_edit(principal, action.partnership_id)
    if "partnership_id" in data.model_fields_set:
        check_may_edit(principal, data.partnership_id)
    if "ref" in data.model_fields_set and data.ref is not None:
        _check_ref_free(session, data.ref, action_id)
    if "partnership_id" in data.model_fields_set:
        _check_partnership(session, data.partnership_id)
    _locked(session, action, expected_version, f"action {action.ref}")
    changes = data.model_dump(exclude_unset=True)
    check_lengths(ActionUpdate, changes)
    recs = changes.pop("recommendation_ids", None)
    themes = changes.pop("theme_ids", None)
    if recs is not None:
        recs = _check_recommendations(session, principal, recs)
        recs += hidden_recommendation_links(session, principal=principal, action_id=action_id)
    themes = check_themes(themes) if themes is not None else None
    for name, value in changes.items():
        setattr(action, name, value)
    session.add(action)
    _set_action_links(session, action_id, recs, themes)
    session.flush()
    audit.record(
        session,
        principal=principal,
        action="action.update",
        object_type="action",
        object_id=action_id,
        detail={"version": action.version_id, "status": str(action.status)},
    )
    return get_action(session, principal=principal, action_id=action_id)


def delete_action(
    session: Session, *, principal: Principal, action_id: int, expected_version: int | None
) -> None:
    """Remove an action and its links (same checks, in the same order, as an update)."""
    get_action(session, principal=principal, action_id=action_id)
    action = session.get(Action, action_id)
    assert action is not None
    check_may_edit(principal, action.partnership_id)
    _locked(session, action, expected_version, f"action {action.ref}")
    for link in (ActionRecommendationLink, ActionThemeLink, ActionCourseLink):
        session.exec(delete(link).where(col(link.action_id) == action_id))  # type: ignore[call-overload]
    session.delete(action)
    session.flush()
    audit.record(
        session,
        principal=principal,
        action="action.delete",
        object_type="action",
        object_id=action_id,
    )


# --------------------------------------------------------------------------- training


def list_courses(session: Session, *, principal: Principal) -> list[TrainingCoursePublic]:
    """Every course with its themes and the actions it delivers that ``principal`` may see.

    Course titles are training, not review content, so every course is listed; only the links
    to actions hidden from the principal are left out (a link would reveal that the action
    exists). Cached like :func:`list_actions`.
    """
    key = ("courses", visibility_key(principal), data_fingerprint(session))
    return RESULTS.get_or_compute(session, key, lambda: _list_courses(session, principal))


def _list_courses(session: Session, principal: Principal) -> list[TrainingCoursePublic]:
    courses = list(session.exec(select(TrainingCourse).order_by(col(TrainingCourse.ref))).all())
    ids = [c.id for c in courses]
    themes = _grouped(
        session.exec(
            select(CourseThemeLink.course_id, CourseThemeLink.theme_id).where(
                col(CourseThemeLink.course_id).in_(ids)
            )
        ).all()
    )
    actions = _grouped(
        session.exec(
            select(ActionCourseLink.course_id, ActionCourseLink.action_id)
            .join(Action, col(Action.id) == ActionCourseLink.action_id)
            .where(col(ActionCourseLink.course_id).in_(ids), visible_actions(principal))
        ).all()
    )
    return [
        TrainingCoursePublic.model_validate(
            c, update={"theme_ids": themes.get(c.id, []), "action_ids": actions.get(c.id, [])}
        )
        for c in courses
    ]


def _course(session: Session, course_id: int) -> TrainingCourse:
    course = session.get(TrainingCourse, course_id)
    if course is None:
        raise NotFound(f"training course {course_id} not found")
    return course


def _set_course_links(
    session: Session, course_id: int, theme_ids: list[str] | None, action_ids: list[int] | None
) -> None:
    if theme_ids is not None:
        session.exec(delete(CourseThemeLink).where(col(CourseThemeLink.course_id) == course_id))  # type: ignore[call-overload]
        session.add_all(CourseThemeLink(course_id=course_id, theme_id=t) for t in theme_ids)
    if action_ids is not None:
        missing = set(action_ids) - set(
            session.exec(select(Action.id).where(col(Action.id).in_(action_ids))).all()
        )
        if missing:
            raise NotFound(f"action {', '.join(map(str, sorted(missing)))} not found")
        session.exec(delete(ActionCourseLink).where(col(ActionCourseLink.course_id) == course_id))  # type: ignore[call-overload]
        session.add_all(ActionCourseLink(course_id=course_id, action_id=a) for a in set(action_ids))


def _course_public(session: Session, course_id: int) -> TrainingCoursePublic:
    """A course as the operator sees it: course writes have no route, only the local operator
    (``Principal.system()``) and tests call them."""
    courses = list_courses(session, principal=Principal.system())
    return next(c for c in courses if c.id == course_id)


def create_course(session: Session, *, data: TrainingCourseCreate) -> TrainingCoursePublic:
    """Add a training course with its themes and the actions it delivers."""
    themes = check_themes(data.theme_ids)
    course = TrainingCourse.model_validate(data.model_dump(exclude={"theme_ids", "action_ids"}))
    session.add(course)
    session.flush()
    _set_course_links(session, course.id, themes, data.action_ids)  # type: ignore[arg-type]
    session.flush()
    return _course_public(session, course.id)  # type: ignore[arg-type]


def update_course(
    session: Session, *, course_id: int, data: TrainingCourseUpdate
) -> TrainingCoursePublic:
    """Change the fields given. Courses have no version column yet: last write wins."""
    course = _course(session, course_id)
    changes = data.model_dump(exclude_unset=True)
    themes = changes.pop("theme_ids", None)
    actions = changes.pop("action_ids", None)
    themes = check_themes(themes) if themes is not None else None
    for name, value in changes.items():
        setattr(course, name, value)
    session.add(course)
    _set_course_links(session, course_id, themes, actions)
    session.flush()
    return _course_public(session, course_id)


def delete_course(session: Session, *, course_id: int) -> None:
    """Remove a course, its sessions and links."""
    course = _course(session, course_id)
    for model in (CourseThemeLink, ActionCourseLink, TrainingSession):
        session.exec(delete(model).where(col(model.course_id) == course_id))  # type: ignore[call-overload]
    session.delete(course)
    session.flush()


def session_public(row: TrainingSession) -> TrainingSessionPublic:
    """A session with its learning gain (post − pre) computed, never stored."""
    gain = None
    if row.pre_score is not None and row.post_score is not None:
        gain = round(row.post_score - row.pre_score, 4)
    return TrainingSessionPublic.model_validate(row, update={"learning_gain": gain})


def list_sessions(session: Session, *, course_id: int | None = None) -> list[TrainingSessionPublic]:
    """Sessions (of one course, or all), by ref."""
    query = select(TrainingSession).order_by(col(TrainingSession.ref))
    if course_id is not None:
        query = query.where(TrainingSession.course_id == course_id)
    return [session_public(row) for row in session.exec(query).all()]


def create_session(session: Session, *, data: TrainingSessionCreate) -> TrainingSessionPublic:
    """Record a delivered session of a course."""
    _course(session, data.course_id)
    row = TrainingSession.model_validate(data)
    session.add(row)
    session.flush()
    return session_public(row)


def update_session(
    session: Session, *, session_id: int, data: TrainingSessionUpdate
) -> TrainingSessionPublic:
    """Change the fields given (last write wins: sessions have no version column yet)."""
    row = session.get(TrainingSession, session_id)
    if row is None:
        raise NotFound(f"training session {session_id} not found")
    changes = data.model_dump(exclude_unset=True)
    if "course_id" in changes:
        _course(session, changes["course_id"])
    for name, value in changes.items():
        setattr(row, name, value)
    session.add(row)
    session.flush()
    return session_public(row)


def delete_session(session: Session, *, session_id: int) -> None:
    """Remove a training session."""
    row = session.get(TrainingSession, session_id)
    if row is None:
        raise NotFound(f"training session {session_id} not found")
    session.delete(row)
    session.flush()
