"""Every table of the knowledge base, one family per entity.

Following FastAPI's full-stack template: ``XBase`` holds the fields people edit, ``XCreate`` /
``XUpdate`` are what the API and CLI accept, ``X(table=True)`` is the row, ``XPublic`` is what
leaves the service layer. Keeping all tables in one module makes the schema readable in one
sitting and gives Alembic one ``SQLModel.metadata`` to diff.

Offsets (``start``/``end``) are character offsets into ``Document.text``: a passage or a piece
of evidence can always be highlighted in the original text.
"""

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from corpus.metadata import REVIEW_KINDS, AgeBand, PassageRole, ReviewStatus, ReviewType

__all__ = [
    "REVIEW_KINDS",
    "AgeBand",
    "PassageRole",
    "ReviewStatus",
    "ReviewType",
]

#: Longest free text a person may type into one field (an action's description, evidence of
#: impact, a course description, a corrected finding): ~1,500 words. Document text is not
#: limited here (it comes from files, under KB_MAX_FILE_MB). SECURITY.md lists every limit.
MAX_TEXT = 10_000


def utcnow() -> datetime:
    """Timezone-aware now; a default factory so every row gets its own timestamp."""
    return datetime.now(UTC)


class Role(StrEnum):
    """Who may see what: viewers see published reviews only; panel members also see their own
    partnership's unpublished and embargoed reviews; admins see everything."""

    VIEWER = "viewer"
    PANEL = "panel"
    ADMIN = "admin"


class TagStatus(StrEnum):
    SUGGESTED = "suggested"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class ActionStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CLOSED = "closed"


class ImpactRating(StrEnum):
    NONE = "none"
    LIMITED = "limited"
    SOME = "some"
    STRONG = "strong"


# --------------------------------------------------------------------------- partnership


class PartnershipBase(SQLModel):
    name: str = Field(max_length=200, index=True, unique=True)


class Partnership(PartnershipBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class PartnershipPublic(PartnershipBase):
    id: int


# --------------------------------------------------------------------------- document


class DocumentBase(SQLModel):
    source_name: str = Field(max_length=500, index=True)
    format: str = Field(max_length=20)
    pages: int = 1
    title: str | None = Field(default=None, max_length=500)


class Document(DocumentBase, table=True):
    """A source file as ingested. A changed file with the same name is a new ``version``; the
    previous version stays as history (``is_current`` False) while its reviews move on."""

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, index=True, unique=True)
    size_bytes: int = 0
    version: int = 1
    is_current: bool = Field(default=True, index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    ingested_at: datetime = Field(default_factory=utcnow)


class DocumentPublic(DocumentBase):
    id: int
    sha256: str
    version: int
    ingested_at: datetime


# --------------------------------------------------------------------------- case


class Case(SQLModel, table=True):
    """One child or incident, linking the documents about it: the rapid review summarised in an
    annual report, the LCSPR that followed, later mentions. Recurrence counts cases, not
    documents, so one child reviewed twice is counted once with the themes of both.

    Made by matching (partnership + pseudonym + age/date evidence, kb/services/cases.py) or by a
    person; ``Review.case_source`` records which, so re-ingest never undoes a person's link or
    unlink. Called ``review_case`` because ``case`` is an SQL keyword.
    """

    __tablename__ = "review_case"

    id: int | None = Field(default=None, primary_key=True)
    label: str = Field(max_length=200, description="Usually the child's pseudonym.")
    partnership_id: int | None = Field(default=None, foreign_key="partnership.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    version_id: int = Field(default=1, description="Optimistic lock counter.")


class CasePublic(SQLModel):
    id: int
    label: str
    partnership_id: int | None = None
    review_ids: list[int] = Field(default_factory=list)


# --------------------------------------------------------------------------- review


class ReviewBase(SQLModel):
    type: ReviewType = Field(default=ReviewType.OTHER, index=True)
    pseudonym: str = Field(max_length=200)
    title: str | None = Field(default=None, max_length=500)
    incident_date: date | None = None
    review_date: date | None = None
    publication_date: date | None = None
    age_band: AgeBand | None = None
    status: ReviewStatus = Field(default=ReviewStatus.IN_PROGRESS, index=True)


class Review(ReviewBase, table=True):
    """One review. Usually one per document; an annual report yields one per case summary
    it delimits (``start``/``end`` give that summary's span) plus one for the report itself."""

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="document.id", index=True)
    partnership_id: int | None = Field(default=None, foreign_key="partnership.id", index=True)
    year: int | None = Field(
        default=None,
        index=True,
        description="Reference year (incident, else review, else publication): filters and "
        "the theme x year matrix need it as a column.",
    )
    year_inferred: bool = Field(
        default=False,
        description="True when ``year`` comes from the containing report's period, not from "
        "a date in the review's own text.",
    )
    period: str | None = Field(
        default=None, max_length=20, description="Reporting period, e.g. '2020-21'."
    )
    type_source: str = Field(
        default="inferred",
        max_length=20,
        description="inferred | manifest | flag | person: a correction (anything but inferred) "
        "survives re-ingest of a changed file.",
    )
    case_id: int | None = Field(default=None, foreign_key="review_case.id", index=True)
    case_source: str | None = Field(
        default=None,
        max_length=20,
        description="matched | person: 'person' with case_id None is a deliberate unlink "
        "that matching must not undo.",
    )
    start: int = 0
    end: int = 0
    parent_review_id: int | None = Field(default=None, foreign_key="review.id")
    created_at: datetime = Field(default_factory=utcnow)
    version_id: int = Field(default=1, description="Optimistic lock counter.")


class ReviewUpdate(SQLModel):
    type: ReviewType | None = None
    pseudonym: str | None = None
    title: str | None = None
    incident_date: date | None = None
    review_date: date | None = None
    publication_date: date | None = None
    age_band: AgeBand | None = None
    status: ReviewStatus | None = None
    partnership: str | None = None


class ReviewPublic(ReviewBase):
    id: int
    document_id: int
    partnership: str | None = None
    year: int | None = None
    year_inferred: bool = False
    period: str | None = None
    case_id: int | None = None
    passages: int = 0


# --------------------------------------------------------------------------- passage


class PassageBase(SQLModel):
    section_title: str = Field(default="", max_length=500)
    section_kind: str = Field(default="other", max_length=30, index=True)
    kind: str = Field(default="paragraph", max_length=20)
    text: str = Field(sa_column=Column(Text, nullable=False))
    order: int = 0
    start: int = 0
    end: int = 0
    role: str = Field(
        default=PassageRole.OTHER.value,
        max_length=30,
        index=True,
        description="A PassageRole value: what part the passage plays (nlp/roles.py).",
    )
    role_source: str = Field(
        default="model",
        max_length=20,
        description="layout | model | person: 'person' is never overwritten by the classifier.",
    )
    role_confidence: float = 0.0


class Passage(PassageBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="review.id", index=True)
    document_id: int = Field(foreign_key="document.id", index=True)
    embedding: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    embedding_model: str | None = Field(default=None, max_length=200)
    tagged_with: str | None = Field(
        default=None,
        max_length=100,
        description="Taxonomy + model fingerprint of the last tagging.",
    )


class PassagePublic(PassageBase):
    id: int
    review_id: int


# --------------------------------------------------------------------------- theme tags


class ThemeTagBase(SQLModel):
    theme_id: str = Field(max_length=100, index=True)
    method: str = Field(default="rules", max_length=30)
    confidence: float = 0.0
    status: TagStatus = Field(default=TagStatus.SUGGESTED, index=True)


class ThemeTag(ThemeTagBase, table=True):
    """A theme on a passage with the evidence that supports it (offsets into the document text
    plus the snippet) and the human decision on it."""

    __table_args__ = (UniqueConstraint("passage_id", "theme_id"),)

    id: int | None = Field(default=None, primary_key=True)
    passage_id: int = Field(foreign_key="passage.id", index=True)
    review_id: int = Field(foreign_key="review.id", index=True)
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = None
    version_id: int = Field(default=1, description="Optimistic lock counter.")


class ThemeTagPublic(ThemeTagBase):
    id: int
    passage_id: int
    review_id: int
    evidence: list[dict[str, Any]]
    decided_by: str | None = None
    decided_at: datetime | None = None
    version_id: int


# ------------------------------------------------------------- findings, recommendations


class FindingBase(SQLModel):
    number: str | None = Field(default=None, max_length=20)
    text: str = Field(sa_column=Column(Text, nullable=False))
    themes: list[str] = Field(default_factory=list, sa_column=Column(JSON))


class Finding(FindingBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="review.id", index=True)
    #: Indexed: deleting a replaced version's passages checks this foreign key per passage.
    passage_id: int | None = Field(default=None, foreign_key="passage.id", index=True)
    edited: bool = False


class FindingPublic(FindingBase):
    id: int
    review_id: int
    passage_id: int | None


class RecommendationBase(SQLModel):
    number: str | None = Field(default=None, max_length=20)
    text: str = Field(sa_column=Column(Text, nullable=False))
    themes: list[str] = Field(default_factory=list, sa_column=Column(JSON))


class Recommendation(RecommendationBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="review.id", index=True)
    #: Indexed: deleting a replaced version's passages checks this foreign key per passage.
    passage_id: int | None = Field(default=None, foreign_key="passage.id", index=True)
    edited: bool = False


class RecommendationPublic(RecommendationBase):
    id: int
    review_id: int
    passage_id: int | None


# --------------------------------------------------------------------------- tracker: actions


class ActionBase(SQLModel):
    ref: str = Field(max_length=50, index=True, unique=True, description="Tracker reference.")
    agency: str | None = Field(default=None, max_length=200)
    owner: str | None = Field(default=None, max_length=200)
    description: str = Field(max_length=MAX_TEXT, sa_column=Column(Text, nullable=False))
    due_date: date | None = None
    status: ActionStatus = ActionStatus.NOT_STARTED
    completed_date: date | None = None
    impact_evidence: str | None = Field(default=None, max_length=MAX_TEXT, sa_column=Column(Text))
    impact_rating: ImpactRating | None = None


class Action(ActionBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    partnership_id: int | None = Field(default=None, foreign_key="partnership.id")
    version_id: int = Field(default=1, description="Optimistic lock counter.")


class ActionRecommendationLink(SQLModel, table=True):
    action_id: int = Field(foreign_key="action.id", primary_key=True)
    recommendation_id: int = Field(foreign_key="recommendation.id", primary_key=True)


class ActionThemeLink(SQLModel, table=True):
    action_id: int = Field(foreign_key="action.id", primary_key=True)
    theme_id: str = Field(max_length=100, primary_key=True)


class ActionCreate(ActionBase):
    partnership_id: int | None = None
    recommendation_ids: list[int] = Field(default_factory=list)
    theme_ids: list[str] = Field(default_factory=list)


class ActionUpdate(SQLModel):
    """Only the fields given are changed; a list given replaces the links."""

    ref: str | None = Field(default=None, max_length=50)
    agency: str | None = Field(default=None, max_length=200)
    owner: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    due_date: date | None = None
    status: ActionStatus | None = None
    completed_date: date | None = None
    impact_evidence: str | None = Field(default=None, max_length=MAX_TEXT)
    impact_rating: ImpactRating | None = None
    partnership_id: int | None = None
    recommendation_ids: list[int] | None = None
    theme_ids: list[str] | None = None


class ActionPublic(ActionBase):
    id: int
    partnership_id: int | None = None
    version_id: int
    recommendation_ids: list[int] = Field(default_factory=list)
    theme_ids: list[str] = Field(default_factory=list)
    course_ids: list[int] = Field(default_factory=list)


# --------------------------------------------------------------------------- tracker: training


class TrainingCourseBase(SQLModel):
    ref: str = Field(max_length=50, index=True, unique=True)
    title: str = Field(max_length=300)
    provider: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=MAX_TEXT, sa_column=Column(Text))


class TrainingCourse(TrainingCourseBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class CourseThemeLink(SQLModel, table=True):
    course_id: int = Field(foreign_key="trainingcourse.id", primary_key=True)
    theme_id: str = Field(max_length=100, primary_key=True)


class ActionCourseLink(SQLModel, table=True):
    action_id: int = Field(foreign_key="action.id", primary_key=True)
    course_id: int = Field(foreign_key="trainingcourse.id", primary_key=True)


class TrainingCourseCreate(TrainingCourseBase):
    theme_ids: list[str] = Field(default_factory=list)
    action_ids: list[int] = Field(default_factory=list)


class TrainingCourseUpdate(SQLModel):
    """Only the fields given are changed; a list given replaces the links."""

    ref: str | None = None
    title: str | None = None
    provider: str | None = None
    description: str | None = None
    theme_ids: list[str] | None = None
    action_ids: list[int] | None = None


class TrainingCoursePublic(TrainingCourseBase):
    id: int
    theme_ids: list[str] = Field(default_factory=list)
    action_ids: list[int] = Field(default_factory=list)


class TrainingSessionBase(SQLModel):
    ref: str = Field(max_length=50, index=True, unique=True)
    held_on: date | None = None
    attendance: int | None = None
    pre_score: float | None = Field(default=None, description="Mean self-rated knowledge before.")
    post_score: float | None = Field(default=None, description="Mean self-rated knowledge after.")


class TrainingSession(TrainingSessionBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    course_id: int = Field(foreign_key="trainingcourse.id", index=True)


class TrainingSessionCreate(TrainingSessionBase):
    course_id: int


class TrainingSessionUpdate(SQLModel):
    ref: str | None = None
    course_id: int | None = None
    held_on: date | None = None
    attendance: int | None = None
    pre_score: float | None = None
    post_score: float | None = None


class TrainingSessionPublic(TrainingSessionBase):
    id: int
    course_id: int
    learning_gain: float | None = Field(
        default=None, description="post_score - pre_score, computed so it can never go stale."
    )


# --------------------------------------------------------------------------- briefings


class BriefingBase(SQLModel):
    title: str = Field(max_length=300)
    theme_id: str | None = Field(default=None, max_length=100)
    review_id: int | None = Field(default=None, foreign_key="review.id")
    sections: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    restricted: bool = Field(
        default=False, description="True when it quotes unpublished or embargoed material."
    )


class Briefing(BriefingBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    created_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version_id: int = Field(default=1, description="Optimistic lock counter.")


class BriefingPublic(BriefingBase):
    id: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    version_id: int


# --------------------------------------------------------------------------- users, audit


class UserBase(SQLModel):
    username: str = Field(max_length=100, index=True, unique=True)
    role: Role = Role.VIEWER
    partnership_id: int | None = Field(default=None, foreign_key="partnership.id")
    active: bool = True


class User(UserBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    password_hash: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow)
    session_epoch: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="Part of every session's fingerprint; disabling the account bumps it, so "
        "enabling it again does not revive sessions opened before.",
    )


class UserPublic(UserBase):
    id: int


class RevokedSession(SQLModel, table=True):
    """A logged-out session id (its SHA-256), refused until its cookie would have expired.

    In the database rather than in memory so that a logout holds on every server worker and
    across restarts. Rows past ``expires_at`` are pruned at the next logout.
    """

    __tablename__ = "revoked_session"

    sid_hash: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(index=True)


class AuditEvent(SQLModel, table=True):
    """Who viewed embargoed material and who changed what. Never holds document text."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    username: str | None = Field(default=None, max_length=100, index=True)
    action: str = Field(max_length=50)
    object_type: str = Field(max_length=50)
    object_id: str | None = Field(default=None, max_length=100)
    detail: str | None = Field(default=None, max_length=1000)


# --------------------------------------------------------------------------- bookkeeping


class DataVersion(SQLModel, table=True):
    """One row: which database this is (``token``) and how many commits changed its content.

    Cached results (kb/services/cache.py) are keyed by (token, value) instead of by scanning
    the tables: every commit that writes a table other than users and audit bumps ``value`` in
    its own transaction. ``token`` is random per database, so a database recreated under the
    same URL never reuses another's cached results. Not knowledge-base content: not backed up.
    """

    __tablename__ = "data_version"

    id: int = Field(default=1, primary_key=True)
    token: str = Field(max_length=32)
    value: int = Field(default=0, sa_type=BigInteger)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class FileState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    INGESTED = "ingested"
    SKIPPED = "skipped"
    FAILED = "failed"


class IngestJob(SQLModel, table=True):
    """An upload waiting for, or being run by, a worker (``kb worker``, or the one ``kb serve``
    starts). In the database so that it survives restarts and any worker on any machine can
    claim it; ``heartbeat_at`` older than the lease means its worker died and the job is
    claimed again (each file is done exactly once: see kb/services/jobs.py)."""

    __tablename__ = "ingest_job"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=100, index=True)
    partnership: str | None = Field(default=None, max_length=200)
    status: str | None = Field(default=None, max_length=20)
    state: JobState = Field(default=JobState.QUEUED, max_length=10, index=True)
    worker: str | None = Field(default=None, max_length=100)
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None


class IngestJobFile(SQLModel, table=True):
    """One uploaded file of a job: its bytes until it has been ingested, then its result.

    The bytes live in the database (not in a folder of the web server) so a worker on another
    machine can run the job; they are dropped once the file is done, like the upload folder.
    """

    __tablename__ = "ingest_job_file"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="ingest_job.id", index=True)
    position: int
    name: str = Field(max_length=120)
    original: str = Field(max_length=300)
    size_bytes: int = 0
    content: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    state: FileState = Field(default=FileState.PENDING, max_length=10)
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
