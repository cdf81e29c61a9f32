"""Review metadata: inference from text and file name, manifests, overrides.

The controlled vocabularies live in corpus.vocabulary and the name finders in corpus.names;
both are re-exported here, where most callers have always found them.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from corpus.kinds import infer_kind, infer_period, infer_title
from corpus.names import detect_review_type, infer_partnership, infer_pseudonym
from corpus.vocabulary import REVIEW_KINDS, AgeBand, PassageRole, ReviewStatus, ReviewType
from nlp.numbers import NUMBER_WORDS

__all__ = [
    "REVIEW_KINDS",
    "AgeBand",
    "PassageRole",
    "ReviewStatus",
    "ReviewType",
    "detect_review_type",
    "infer_partnership",
    "infer_pseudonym",
]


# --- everything below the vocabularies: inference from text, manifests, overrides ----------

HEAD_CHARS = 9000  # "the first pages": about three pages of text


@dataclass(slots=True)
class ReviewMeta:
    """What we know about one review before a person checks it.

    ``status`` defaults to IN_PROGRESS and is never inferred as PUBLISHED from text: a wrong
    guess would expose an unpublished or embargoed review.
    """

    title: str
    review_type: ReviewType = ReviewType.OTHER
    pseudonym: str | None = None
    partnership: str | None = None
    incident_date: date | None = None
    review_date: date | None = None
    publication_date: date | None = None
    age_band: AgeBand | None = None
    status: ReviewStatus = ReviewStatus.IN_PROGRESS
    period: str | None = None
    warnings: tuple[str, ...] = ()


#: Kinds that report on many cases or on the partnership: the incident date and age band in
#: their first pages belong to some case they mention, not to the document.
COLLECTION_KINDS: frozenset[ReviewType] = frozenset(
    {
        ReviewType.ANNUAL_REPORT,
        ReviewType.NEWSLETTER,
        ReviewType.SCRUTINY_REPORT,
        ReviewType.THEMATIC_REVIEW,
    }
)


class ManifestError(ValueError):
    """A manifest problem, naming the file, the row or entry, and the field."""

    def __init__(self, path: Path | str, entry: str, field_name: str | None, message: str) -> None:
        self.path = str(path)
        self.entry = entry
        self.field = field_name
        where = f"{entry}, field '{field_name}'" if field_name else entry
        super().__init__(f"{self.path}: {where}: {message}")


# --- dates ----------------------------------------------------------------------------------

_MONTHS = {
    m: i
    for i, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
         ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
         ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
         ("december", "dec")],
        start=1,
    )
    for m in names
}  # fmt: skip
_DATE = (
    r"(?:(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+)?(?P<month>(?i:"
    + "|".join(sorted(_MONTHS, key=len, reverse=True))
    + r"))\b\.?,?\s+(?P<year>(?:19|20)\d{2})|(?P<iso>(?:19|20)\d{2}-\d{2}-\d{2})|"
    r"(?P<dmy>\d{1,2}/\d{1,2}/(?:19|20)\d{2})"
)
_PUBLICATION = re.compile(
    r"\b(?:published|publication(?:\s+date)?|date\s+of\s+publication)\b[\s:\-–]*(?:on|in)?\s*"
    r"(?:" + _DATE + r")",
    re.I,
)
_REVIEW = re.compile(
    r"\b(?:date\s+of\s+(?:the\s+)?review|review\s+(?:date|(?:was\s+)?(?:completed|concluded|"
    r"finalised|finalized|signed off))|rapid\s+review\s+(?:was\s+)?(?:held|took place|"
    r"meeting))\b[\s:\-–]*(?:on|in)?\s*(?:" + _DATE + r")",
    re.I,
)
_INCIDENT_LABELLED = re.compile(
    r"\b(?:date\s+of\s+(?:the\s+)?incident|incident\s+(?:occurred|took place|happened))"
    r"[\s:\-–]*(?:on|in)?\s*(?:" + _DATE + r")",
    re.I,
)
_INCIDENT_NARRATIVE = re.compile(
    r"\b(?:In|On|in|on)\s+(?:" + _DATE + r"),?\s+"
    r"(?=(?:Child|Baby|Infant|the child|the baby|[A-Z][a-z]+ (?:was|were|suffered|died|"
    r"sustained))\b)",
)


#: "was admitted in June 2021 with ...", "died unexpectedly in November 2021": the event verb
#: comes first in case summaries and rapid review notifications.
_INCIDENT_EVENT = re.compile(
    r"\b(?:admitted|died|was found|were found|stabbed|injured|took an overdose|was assaulted|"
    r"was killed|was taken to hospital|presented|suffered|sustained)\b[^.]{0,60}?\b(?:in|on)\s+"
    r"(?:" + _DATE + r")",
)


def _incident(text: str) -> date | None:
    """The incident date: labelled, else narrative ("In May 2021, Child F ..."), else the first
    event ("was admitted in June 2021")."""
    for pattern in (_INCIDENT_LABELLED, _INCIDENT_NARRATIVE, _INCIDENT_EVENT):
        found = _find_date(pattern, text)
        if found:
            return found
    return None


def _to_date(match: re.Match[str]) -> date | None:
    """Turn one _DATE match into a date; month-only dates become the first of the month."""
    try:
        if match.group("iso"):
            return date.fromisoformat(match.group("iso"))
        if match.group("dmy"):
            day, month, year = (int(x) for x in match.group("dmy").split("/"))
            return date(year, month, day)
        month = _MONTHS[match.group("month").lower()]
        return date(int(match.group("year")), month, int(match.group("day") or 1))
    except (ValueError, KeyError, TypeError):
        return None


def _find_date(pattern: re.Pattern[str], text: str) -> date | None:
    for match in pattern.finditer(text):
        found = _to_date(match)
        if found:
            return found
    return None


# --- age band -------------------------------------------------------------------------------

_NUM = r"(\d{1,2}|" + "|".join(NUMBER_WORDS) + r")"
_AGE = re.compile(
    r"\b(?P<unborn>unborn)\b|\b" + _NUM + r"[\s-]*(?P<unit>day|week|month|year)s?[\s-]*old\b|"
    r"\baged\s+(?:just\s+|only\s+|about\s+)?"
    + _NUM.replace("(", "(?P<n2>", 1)
    + r"(?:\s+(?P<unit2>day|week|month|year)s?)?\b",
    re.I,
)


def age_band_for(amount: int, unit: str) -> AgeBand:
    """Map an age expression to the band used for filtering and recurrence counts."""
    unit = unit.lower()
    if unit in ("day", "week") or (unit == "month" and amount < 12):
        return AgeBand.UNDER_1
    years = amount // 12 if unit == "month" else amount
    if years < 1:
        return AgeBand.UNDER_1
    for limit, band in ((4, AgeBand.AGE_1_4), (9, AgeBand.AGE_5_9), (14, AgeBand.AGE_10_14),
                        (17, AgeBand.AGE_15_17)):  # fmt: skip
        if years <= limit:
            return band
    return AgeBand.ADULT


def _number(token: str) -> int:
    return int(token) if token.isdigit() else NUMBER_WORDS[token.lower()]


def infer_age_band(text: str) -> AgeBand | None:
    """The first age expression in the text: '3-day-old', 'aged 11 months', 'unborn'."""
    match = _AGE.search(text)
    if not match:
        return None
    if match.group("unborn"):
        return AgeBand.UNBORN
    if match.group("unit"):
        return age_band_for(_number(match.group(2)), match.group("unit"))
    return age_band_for(_number(match.group("n2")), match.group("unit2") or "year")


# --- inference entry point ---------------------------------------------------------------------


def _first_line(text: str) -> str | None:
    for line in text.split("\n"):
        if line.strip():
            return " ".join(line.split())[:200]
    return None


def _pseudonym(head: str, stem: str, review_type: ReviewType) -> str | None:
    """The child's pseudonym from the file name, else from the title lines.

    Only the title lines count: the body of a thematic review or an annual report names many
    children, and the first one mentioned is not what the document is about. An annual report
    is called after its year instead ("Annual report 2021-22").
    """
    found = infer_pseudonym(stem.replace("_", " "))
    if found or review_type is ReviewType.ANNUAL_REPORT:
        if found:
            return found
        period = _PERIOD.search(head[:600]) or _PERIOD.search(stem.replace("_", "-"))
        return f"Annual report {period.group(1)}-{period.group(2)}" if period else None
    title_lines = []
    for line in head.split("\n")[:12]:
        line = line.strip()
        if len(line) > 100 or line.endswith("."):
            break  # the body has started
        title_lines.append(line)
    return infer_pseudonym("\n".join(title_lines))


_PERIOD = re.compile(r"\b(20\d{2})\s*[-/–]\s*(?:20)?(\d{2})\b")


def infer_metadata(text: str, filename: str) -> ReviewMeta:
    """Best-effort metadata from the first pages and the file name; never infers PUBLISHED.

    Kind, title and period come from corpus.kinds; a document of unknown kind carries a
    warning naming it.
    """
    head = text[:HEAD_CHARS]
    stem = Path(filename).stem
    guess = infer_kind(head, stem)
    review_type = guess.kind
    title = infer_title(head, review_type, _first_line(head) or stem)
    period = infer_period(head, title)
    collection = review_type in COLLECTION_KINDS
    return ReviewMeta(
        title=title,
        review_type=review_type,
        pseudonym=_pseudonym(head, stem, review_type),
        partnership=infer_partnership(head),
        incident_date=None if collection else _incident(head),
        review_date=_find_date(_REVIEW, head),
        publication_date=_find_date(_PUBLICATION, head),
        age_band=None if collection else infer_age_band(head),
        status=ReviewStatus.IN_PROGRESS,
        period=period.label if period and collection else None,
        warnings=(guess.warning,) if guess.warning else (),
    )


# --- manifests ----------------------------------------------------------------------------------

MANIFEST_KEYS = frozenset(
    {"file", "title", "type", "pseudonym", "partnership", "status", "incident_date",
     "review_date", "publication_date", "age_band", "expected_themes"}
)  # fmt: skip
_DATE_KEYS = ("incident_date", "review_date", "publication_date")
_ENUM_KEYS: dict[str, type[StrEnum]] = {
    "type": ReviewType,
    "status": ReviewStatus,
    "age_band": AgeBand,
}
# manifest key -> ReviewMeta field
_META_FIELD = {"type": "review_type"}


def _enum_value(enum: type[StrEnum], value: Any) -> StrEnum:
    text = str(value).strip().lower()
    try:
        return enum(text)
    except ValueError:
        by_name = {member.name.lower(): member for member in enum}
        if text in by_name:
            return by_name[text]
        allowed = ", ".join(member.value for member in enum)
        raise ValueError(f"'{value}' is not one of: {allowed}") from None


def _date_value(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"'{value}' is not an ISO date (YYYY-MM-DD)") from None


def _themes_value(value: Any) -> list[str]:
    if isinstance(value, str):
        return [t.strip() for t in re.split(r"[;|,]", value) if t.strip()]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return [t.strip() for t in value if t.strip()]
    raise ValueError("must be a list of theme ids")


def _convert(key: str, value: Any) -> Any:
    if key in _ENUM_KEYS:
        return _enum_value(_ENUM_KEYS[key], value)
    if key in _DATE_KEYS:
        return _date_value(value)
    if key == "expected_themes":
        return _themes_value(value)
    if not isinstance(value, str | int | float):
        raise ValueError("must be text")
    return str(value).strip()


def _validate_entry(path: Path, entry: str, raw: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).strip() if key is not None else ""
        if name not in MANIFEST_KEYS:
            allowed = ", ".join(sorted(MANIFEST_KEYS))
            raise ManifestError(
                path, entry, name or "(blank)", f"unknown field; allowed: {allowed}"
            )
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            clean[name] = _convert(name, value)
        except ValueError as exc:
            raise ManifestError(path, entry, name, str(exc)) from None
    if "file" not in clean:
        raise ManifestError(path, entry, "file", "missing file name")
    clean["file"] = Path(str(clean["file"]).replace("\\", "/")).name
    return clean["file"], clean


def _read_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Raw (entry label, mapping) pairs from a CSV or YAML manifest."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(path, "file", None, f"cannot read manifest: {exc}") from exc
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        rows = []
        for number, row in enumerate(reader, start=2):
            if None in row:
                raise ManifestError(path, f"row {number}", None, "more cells than header columns")
            rows.append((f"row {number}", dict(row)))
        return rows
    if path.suffix.lower() in (".yaml", ".yml"):
        return _yaml_rows(path, text)
    raise ManifestError(path, "file", None, "manifest must be .csv, .yaml or .yml")


def _yaml_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(path, "file", None, f"invalid YAML: {exc}".split("\n")[0]) from exc
    if isinstance(data, dict) and isinstance(data.get("documents", data.get("reviews")), list):
        data = data.get("documents", data.get("reviews"))
    elif isinstance(data, dict):  # mapping of file name -> fields
        data = [{"file": name, **(fields_ or {})} for name, fields_ in data.items()]
    if data is None:
        return []
    if not isinstance(data, list):
        raise ManifestError(path, "file", None, "expected a list of entries")
    rows = []
    for index, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise ManifestError(path, f"entry {index}", None, "expected a mapping of fields")
        rows.append((f"entry {index}", item))
    return rows


def load_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Validated manifest entries keyed by file base name (values already typed)."""
    path = Path(path)
    result: dict[str, dict[str, Any]] = {}
    for entry, raw in _read_rows(path):
        name, clean = _validate_entry(path, entry, raw)
        if name in result:
            raise ManifestError(path, entry, "file", f"duplicate entry for {name}")
        result[name] = clean
    return result


def apply_overrides(meta: ReviewMeta, overrides: dict[str, Any]) -> ReviewMeta:
    """Manifest values win over inference; ``file`` and ``expected_themes`` are ignored."""
    meta_fields = {f.name for f in fields(ReviewMeta)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in ("file", "expected_themes") or value is None:
            continue
        target = _META_FIELD.get(key, key)
        if target not in meta_fields:
            raise ValueError(f"unknown metadata field '{key}'")
        manifest_key = "type" if target == "review_type" else target
        changes[target] = _convert(manifest_key, value) if manifest_key in MANIFEST_KEYS else value
    return replace(meta, **changes)
