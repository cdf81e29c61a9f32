"""The theme taxonomy: the shipped core themes plus whatever a partnership adds in its own files.

Partnerships name their local priorities differently ("Engaging with Fathers", "Invisible men"),
so the taxonomy is data, not code: extra YAML files can add groups, themes and synonyms. Loading
validates every entry and names the file and entry at fault, because these files are edited by
hand by people who are not developers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nlp.regexes import compile_regex

SHIPPED_TAXONOMY = Path(__file__).with_name("taxonomy.yaml")

ALGORITHMS = frozenset({"any", "all", "literal", "regex", "fuzzy", "auto", "rules"})
PATTERN_KINDS = ("phrase", "regex", "near", "rule")
DEFAULT_WEIGHTS = {"phrase": 0.85, "regex": 0.85, "near": 0.75, "rule": 0.85}

# Bump when the rule code changes in a way that changes tags, so stored tags go stale too.
RULES_VERSION = "2"

CORE_THEME_IDS: tuple[str, ...] = (
    "under-1s",
    "non-accidental-injury",
    "neglect",
    "sexual-abuse",
    "child-exploitation",
    "online-harm",
    "peer-violence",
    "suicide-self-harm",
    "child-mental-health",
    "disability-complex-needs",
    "missing-education",
    "domestic-abuse",
    "parental-mental-health",
    "substance-misuse",
    "hidden-men",
    "parental-history",
    "culture-ethnicity",
    "poverty-housing",
    "information-sharing",
    "thresholds-procedures",
    "professional-curiosity",
    "voice-of-child",
    "think-family-transition",
    "cross-border",
    "was-not-brought",
    "sudi-safe-sleep",
    "covid-19",
)


class TaxonomyError(ValueError):
    """A taxonomy file is invalid; the message names the file and the entry."""


@dataclass(frozen=True)
class Pattern:
    """One way of recognising a theme.

    kind: "phrase" (lemma-normalised words), "regex", "near" (lemma lists in sequence within
    `window` tokens) or "rule" (a named linguistic rule in nlp/rules.py).
    """

    kind: str
    value: str = ""
    lists: tuple[tuple[str, ...], ...] = ()
    window: int = 3
    ordered: bool = True
    case: bool = False
    weight: float = 0.85
    args: tuple[tuple[str, str], ...] = ()

    def key(self) -> dict[str, Any]:
        """A JSON-able description, used for the fingerprint."""
        return {
            "kind": self.kind,
            "value": self.value,
            "lists": [list(x) for x in self.lists],
            "window": self.window,
            "ordered": self.ordered,
            "case": self.case,
            "weight": self.weight,
            "args": [list(a) for a in self.args],
        }


@dataclass(frozen=True)
class Theme:
    """A theme with everything needed to tag it and to brief on it."""

    id: str
    label: str
    group: str
    description: str = ""
    algorithm: str = "rules"
    patterns: tuple[Pattern, ...] = ()
    exclude: tuple[Pattern, ...] = ()
    questions: tuple[str, ...] = ()
    context: str = ""
    synonyms: tuple[str, ...] = ()

    @property
    def phrases(self) -> tuple[str, ...]:
        """Plain phrases plus partnership synonyms: what the simple algorithms match."""
        own = tuple(p.value for p in self.patterns if p.kind == "phrase")
        return own + tuple(s for s in self.synonyms if s not in own)

    def tagging_key(self) -> dict[str, Any]:
        """The fields that change tagging output (not labels, questions or context)."""
        return {
            "id": self.id,
            "algorithm": self.algorithm,
            "patterns": [p.key() for p in self.patterns],
            "exclude": [p.key() for p in self.exclude],
            "synonyms": sorted(self.synonyms),
        }


@dataclass
class Taxonomy:
    """Themes by id (in file order) and display groups (id -> label)."""

    themes: dict[str, Theme]
    groups: dict[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def __iter__(self):
        return iter(self.themes.values())

    def __len__(self) -> int:
        return len(self.themes)

    def __contains__(self, theme_id: object) -> bool:
        return theme_id in self.themes

    def __getitem__(self, theme_id: str) -> Theme:
        return self.themes[theme_id]

    def ids(self) -> list[str]:
        return list(self.themes)

    def by_group(self) -> dict[str, list[Theme]]:
        out: dict[str, list[Theme]] = {g: [] for g in self.groups}
        for theme in self.themes.values():
            out.setdefault(theme.group, []).append(theme)
        return out

    def fingerprint(self) -> str:
        """Stable hash of everything that affects tags, so stored tags can be marked stale."""
        payload = {
            "rules_version": RULES_VERSION,
            "themes": [self.themes[k].tagging_key() for k in sorted(self.themes)],
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------- parsing


def _fail(source: str, entry: str, message: str) -> TaxonomyError:
    return TaxonomyError(f"{source}: {entry}: {message}")


def _str_list(value: Any, source: str, entry: str, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(source, entry, f"'{name}' must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def _lemma_lists(value: Any, source: str, entry: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise _fail(source, entry, "'near' needs a list of at least two word lists")
    lists = []
    for item in value:
        words = [item] if isinstance(item, str) else item
        if not isinstance(words, list) or not words:
            raise _fail(source, entry, "'near' lists must be non-empty lists of words")
        if not all(isinstance(w, str | int) and not isinstance(w, bool) for w in words):
            # YAML reads bare on / off / yes / no as booleans
            raise _fail(source, entry, f"'near' words must be strings (quote them): {words!r}")
        lists.append(tuple(str(w).lower() for w in words))
    return tuple(lists)


def parse_pattern(raw: Any, source: str, entry: str) -> Pattern:
    """Turn one YAML pattern (a string or a one-kind mapping) into a Pattern, or fail clearly."""
    if isinstance(raw, str):
        if not raw.strip():
            raise _fail(source, entry, "empty pattern")
        return Pattern(kind="phrase", value=raw.strip(), weight=DEFAULT_WEIGHTS["phrase"])
    if not isinstance(raw, Mapping):
        raise _fail(source, entry, f"pattern must be a string or a mapping, got {raw!r}")
    kinds = [k for k in PATTERN_KINDS if k in raw]
    if len(kinds) != 1:
        raise _fail(source, entry, f"pattern needs exactly one of {PATTERN_KINDS}: {dict(raw)!r}")
    kind = kinds[0]
    weight = float(raw.get("weight", DEFAULT_WEIGHTS[kind]))
    if not 0.0 <= weight <= 1.0:
        raise _fail(source, entry, f"weight must be in [0, 1], got {weight}")
    if kind == "near":
        return Pattern(
            kind="near",
            lists=_lemma_lists(raw["near"], source, entry),
            window=int(raw.get("window", 3)),
            ordered=bool(raw.get("ordered", True)),
            weight=weight,
        )
    value = str(raw[kind]).strip()
    if kind == "regex":
        _check_regex(value, bool(raw.get("case", False)), source, entry)
    args = tuple(sorted((str(k), str(v)) for k, v in raw.items() if k not in {kind, "weight"}))
    return Pattern(
        kind=kind, value=value, case=bool(raw.get("case", False)), weight=weight, args=args
    )


def _check_regex(value: str, case: bool, source: str, entry: str) -> None:
    try:
        compile_regex(value, case)
    except Exception as exc:  # the regex module raises its own error type
        raise _fail(source, entry, f"invalid regex {value!r}: {exc}") from exc


def _theme_from_entry(raw: Any, source: str, index: int, groups: Mapping[str, str]) -> Theme:
    if not isinstance(raw, Mapping):
        raise _fail(source, f"themes[{index}]", "each theme must be a mapping")
    theme_id = str(raw.get("id") or "").strip()
    entry = f"theme '{theme_id}'" if theme_id else f"themes[{index}]"
    if not theme_id:
        raise _fail(source, entry, "missing 'id'")
    label = str(raw.get("label") or "").strip()
    if not label:
        raise _fail(source, entry, "missing 'label'")
    algorithm = str(raw.get("match", raw.get("algorithm", "rules"))).strip()
    if algorithm not in ALGORITHMS:
        raise _fail(source, entry, f"unknown algorithm '{algorithm}' (one of {sorted(ALGORITHMS)})")
    group = str(raw.get("group") or "").strip()
    if group not in groups:
        raise _fail(source, entry, f"unknown group '{group}' (known: {sorted(groups)})")
    patterns = tuple(parse_pattern(p, source, entry) for p in raw.get("patterns") or [])
    exclude = tuple(parse_pattern(p, source, entry) for p in raw.get("exclude") or [])
    synonyms = _str_list(raw.get("synonyms"), source, entry, "synonyms")
    if not patterns and not synonyms and algorithm != "auto":
        raise _fail(source, entry, "needs 'patterns' or 'synonyms' (or match: auto)")
    return Theme(
        id=theme_id,
        label=label,
        group=group,
        description=str(raw.get("description") or "").strip(),
        algorithm=algorithm,
        patterns=patterns,
        exclude=exclude,
        questions=_str_list(raw.get("questions"), source, entry, "questions"),
        context=" ".join(str(raw.get("context") or "").split()),
        synonyms=synonyms,
    )


def _parse_groups(raw: Any, source: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _fail(source, "groups", "must be a mapping of id to {label: ...}")
    groups = {}
    for gid, value in raw.items():
        label = value.get("label") if isinstance(value, Mapping) else value
        if not label:
            raise _fail(source, f"group '{gid}'", "missing 'label'")
        groups[str(gid)] = str(label)
    return groups


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise TaxonomyError(f"{path}: cannot read: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise TaxonomyError(f"{path}: top level must be a mapping")
    return data


def _merge_file(path: Path, themes: dict[str, Theme], groups: dict[str, str]) -> None:
    """Merge one file into themes/groups in place: new groups, new themes, extra synonyms."""
    source = str(path)
    data = _read_yaml(path)
    groups.update(_parse_groups(data.get("groups"), source))
    raw_themes = data.get("themes") or []
    if not isinstance(raw_themes, list):
        raise _fail(source, "themes", "must be a list")
    for index, raw in enumerate(raw_themes):
        theme = _theme_from_entry(raw, source, index, groups)
        if theme.id in themes:
            raise _fail(source, f"theme '{theme.id}'", "duplicate id (already defined)")
        themes[theme.id] = theme
    _merge_synonyms(data.get("synonyms"), source, themes)


def _merge_synonyms(raw: Any, source: str, themes: dict[str, Theme]) -> None:
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        raise _fail(source, "synonyms", "must map theme ids to lists of phrases")
    for theme_id, words in raw.items():
        entry = f"synonyms for '{theme_id}'"
        if theme_id not in themes:
            raise _fail(source, entry, "unknown theme id")
        extra = _str_list(words, source, entry, "synonyms")
        theme = themes[theme_id]
        merged = theme.synonyms + tuple(w for w in extra if w not in theme.synonyms)
        themes[theme_id] = _replace(theme, synonyms=merged)


def _replace(theme: Theme, **changes: Any) -> Theme:
    from dataclasses import replace

    return replace(theme, **changes)


def load_taxonomy(extra: Iterable[Path | str] | None = None, base: Path | None = None) -> Taxonomy:
    """Load the shipped taxonomy (or `base`) and merge partnership files in order.

    Partnership files may add groups, themes and synonyms; redefining an existing id is an error
    rather than a silent override, so that a typo cannot quietly replace a core theme.
    """
    themes: dict[str, Theme] = {}
    groups: dict[str, str] = {}
    paths = [Path(base or SHIPPED_TAXONOMY)] + [Path(p) for p in extra or []]
    for path in paths:
        _merge_file(path, themes, groups)
    return Taxonomy(themes=themes, groups=groups, sources=tuple(str(p) for p in paths))
