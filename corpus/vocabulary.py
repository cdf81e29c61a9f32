"""The controlled vocabularies of documents: kinds, passage roles, statuses, age bands.

They live in corpus/ (not kb/) because readers and the manifest loader must validate values
before anything touches the database; kb.models reuses them for its columns. A module of their
own so that every corpus module can use them without importing the inference code.
"""

from __future__ import annotations

from enum import StrEnum


class ReviewType(StrEnum):
    SCR = "scr"
    LCSPR = "lcspr"
    RAPID_REVIEW = "rapid_review"
    LEARNING_REVIEW = "learning_review"
    NATIONAL_REVIEW = "national_review"
    AUDIT = "audit"
    SAR = "sar"
    DHR = "dhr"
    ANNUAL_REPORT = "annual_report"
    THEMATIC_REVIEW = "thematic_review"
    SCRUTINY_REPORT = "scrutiny_report"
    NEWSLETTER = "newsletter"
    BRIEFING = "briefing"
    OTHER = "other"


#: The kinds that are reviews of one child or incident: only these count in "N of M reviews"
#: and in recurrence. Everything else (annual reports, scrutiny reports, newsletters,
#: briefings, thematic reviews) stays searchable and citable but is not a review of a case.
#: learning_review, national_review, audit, sar and dhr are older values kept readable.
REVIEW_KINDS: frozenset[ReviewType] = frozenset(
    {ReviewType.SCR, ReviewType.LCSPR, ReviewType.RAPID_REVIEW}
)


class PassageRole(StrEnum):
    """The part a passage plays in its document (see nlp/roles.py for how it is decided)."""

    FRONT_MATTER = "front_matter"
    PARTNERSHIP_BUSINESS = "partnership_business"
    CASE_SYNOPSIS = "case_synopsis"
    FINDING = "finding"
    RECOMMENDATION = "recommendation"
    ACTION = "action"
    GOOD_PRACTICE = "good_practice"
    OTHER = "other"


class ReviewStatus(StrEnum):
    """Publication status. IN_PROGRESS is the safe default: only PUBLISHED is public."""

    IN_PROGRESS = "in_progress"
    EMBARGOED = "embargoed"
    PUBLISHED = "published"


class AgeBand(StrEnum):
    UNBORN = "unborn"
    UNDER_1 = "under_1"
    AGE_1_4 = "1_4"
    AGE_5_9 = "5_9"
    AGE_10_14 = "10_14"
    AGE_15_17 = "15_17"
    ADULT = "18_plus"
