"""Taxonomy loading, partnership merging and validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.taxonomy import CORE_THEME_IDS, TaxonomyError, load_taxonomy


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def test_shipped_taxonomy_has_exactly_the_core_ids() -> None:
    taxonomy = load_taxonomy()
    assert taxonomy.ids() == list(CORE_THEME_IDS)
    for theme in taxonomy:
        assert theme.label and theme.group in taxonomy.groups
        assert 3 <= len(theme.questions) <= 5
        assert theme.context and theme.patterns


def test_partnership_file_adds_group_theme_and_synonyms(tmp_path: Path) -> None:
    extra = write(
        tmp_path,
        "local.yaml",
        """
groups:
  local: {label: Local priorities}
themes:
  - id: local-private-fostering
    group: local
    label: Private fostering
    match: any
    patterns: [private fostering, privately fostered]
synonyms:
  hidden-men: [invisible dads]
""",
    )
    taxonomy = load_taxonomy(extra=[extra])
    assert taxonomy["local-private-fostering"].algorithm == "any"
    assert taxonomy.groups["local"] == "Local priorities"
    assert "invisible dads" in taxonomy["hidden-men"].phrases
    assert taxonomy.fingerprint() != load_taxonomy().fingerprint()


def test_fingerprint_is_stable_and_ignores_questions(tmp_path: Path) -> None:
    assert load_taxonomy().fingerprint() == load_taxonomy().fingerprint()
    extra = write(
        tmp_path,
        "q.yaml",
        "themes:\n  - {id: x, group: context, label: X, patterns: [xyz], questions: ['Why?']}\n",
    )
    other = write(
        tmp_path,
        "q2.yaml",
        "themes:\n  - {id: x, group: context, label: X, patterns: [xyz], questions: ['How?']}\n",
    )
    assert load_taxonomy(extra=[extra]).fingerprint() == load_taxonomy(extra=[other]).fingerprint()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "themes:\n  - {id: a, group: child, label: A, match: magic, patterns: [a]}\n",
            "unknown algorithm 'magic'",
        ),
        ("themes:\n  - {id: neglect, group: harm, label: Again, patterns: [a]}\n", "duplicate id"),
        ("themes:\n  - {id: b, group: child, patterns: [b]}\n", "missing 'label'"),
        ("themes:\n  - {id: c, group: nowhere, label: C, patterns: [c]}\n", "unknown group"),
        ("synonyms:\n  not-a-theme: [x]\n", "unknown theme id"),
        (
            "themes:\n  - {id: d, group: child, label: D, match: regex,"
            " patterns: [{regex: '('}]}\n",
            "invalid regex",
        ),
        ("themes: [\n", "not valid YAML"),
    ],
)
def test_validation_errors_name_file_and_entry(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, "bad.yaml", body)
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(extra=[path])
    assert message in str(info.value)
    assert "bad.yaml" in str(info.value)


def test_duplicate_within_one_file_names_the_entry(tmp_path: Path) -> None:
    body = "themes:\n" + "  - {id: dup, group: child, label: D, patterns: [d]}\n" * 2
    with pytest.raises(TaxonomyError, match="theme 'dup'"):
        load_taxonomy(extra=[write(tmp_path, "dup.yaml", body)])
