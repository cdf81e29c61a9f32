"""Metadata inference from fictional text, manifests and overrides."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from corpus.metadata import (
    AgeBand,
    ManifestError,
    ReviewMeta,
    ReviewStatus,
    ReviewType,
    apply_overrides,
    infer_age_band,
    infer_metadata,
    infer_partnership,
    infer_pseudonym,
    load_manifest,
)

LCSPR = """Rotherfield Safeguarding Children Partnership
Local Child Safeguarding Practice Review: Child A
Date of publication: 12 May 2020

In January 2019 Child A was taken to hospital aged 11 months.
The rapid review was held on 3 February 2019 and the report was published in March 2021.
"""


def test_infer_full_lcspr() -> None:
    meta = infer_metadata(LCSPR, "child-a-review.pdf")
    assert meta == ReviewMeta(
        title="Rotherfield Safeguarding Children Partnership",
        review_type=ReviewType.LCSPR,
        pseudonym="Child A",
        partnership="Rotherfield Safeguarding Children Partnership",
        incident_date=date(2019, 1, 1),
        review_date=date(2019, 2, 3),
        publication_date=date(2020, 5, 12),
        age_band=AgeBand.UNDER_1,
        status=ReviewStatus.IN_PROGRESS,
    )


def test_status_is_never_inferred_as_published() -> None:
    text = "This review has been published. Status: published. Published in June 2022."
    assert infer_metadata(text, "x.txt").status is ReviewStatus.IN_PROGRESS


@pytest.mark.parametrize(
    ("text", "filename", "expected"),
    [
        ("Serious Case Review into the death of Baby T", "x.pdf", ReviewType.SCR),
        ("Overview report", "scr_w10.pdf", ReviewType.SCR),
        ("Overview report", "Serious_Case_Review_W10.pdf", ReviewType.SCR),
        ("LCSPR Child Y", "x.pdf", ReviewType.LCSPR),
        ("CSPR overview", "x.pdf", ReviewType.LCSPR),
        ("Rapid Review: Child R", "x.pdf", ReviewType.RAPID_REVIEW),
        ("Annual Report 2021/22. We published a Serious Case Review.", "x.pdf",
         ReviewType.ANNUAL_REPORT),
        ("Safeguarding Adults Review: Mr B", "x.pdf", ReviewType.SAR),
        ("Domestic Homicide Review", "x.pdf", ReviewType.DHR),
        ("A learning review about Family S", "x.pdf", ReviewType.LEARNING_REVIEW),
        ("Multi-agency case file audit of neglect", "x.pdf", ReviewType.AUDIT),
        ("MACFA report", "x.pdf", ReviewType.AUDIT),
        ("The Child Safeguarding Practice Review Panel\nNational review of infant deaths", "x.pdf",
         ReviewType.NATIONAL_REVIEW),
        ("Minutes of a meeting", "notes.txt", ReviewType.OTHER),
    ],
)  # fmt: skip
def test_review_type(text: str, filename: str, expected: ReviewType) -> None:
    assert infer_metadata(text, filename).review_type is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Review concerning Child Y and her brother", "Child Y"),
        ("Child Q and R were cousins", "Child Q and R"),
        ("Baby T died at home", "Baby T"),
        ("Family S had moved", "Family S"),
        ("Known as SCR W10 in the index", "SCR W10"),
        ("The child was on a CP plan; Child CP plans", None),
        ("Children in need and child protection", None),
    ],
)
def test_pseudonym(text: str, expected: str | None) -> None:
    assert infer_pseudonym(text) == expected


def test_pseudonym_prefers_file_name() -> None:
    assert infer_metadata("Child B was seen", "Child_K_overview.pdf").pseudonym == "Child K"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Westshire Safeguarding Children Partnership commissioned",
         "Westshire Safeguarding Children Partnership"),
        ("Old Town Safeguarding Children Board report", "Old Town Safeguarding Children Board"),
        ("by Bath and Avon Safeguarding Partnership.", "Bath and Avon Safeguarding Partnership"),
        ("Kettle Safeguarding Board and Kettle Safeguarding Partnership",
         "Kettle Safeguarding Board"),
        ("the Local Safeguarding Children Board", None),
        ("no partnership here", None),
    ],
)  # fmt: skip
def test_partnership(text: str, expected: str | None) -> None:
    assert infer_partnership(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the 3-day-old baby", AgeBand.UNDER_1),
        ("a baby aged 11 months", AgeBand.UNDER_1),
        ("when 8 weeks old", AgeBand.UNDER_1),
        ("work with the unborn baby", AgeBand.UNBORN),
        ("a 17-year-old young person", AgeBand.AGE_15_17),
        ("Child C, aged 7, attended school", AgeBand.AGE_5_9),
        ("aged two years", AgeBand.AGE_1_4),
        ("aged 18 months", AgeBand.AGE_1_4),
        ("a twelve year old", AgeBand.AGE_10_14),
        ("a 19-year-old mother", AgeBand.ADULT),
        ("no age mentioned", None),
    ],
)
def test_age_band(text: str, expected: AgeBand | None) -> None:
    assert infer_age_band(text) == expected


def test_dates_from_phrases() -> None:
    meta = infer_metadata(
        "Review report\nPublication date: 2020-05-12\nOn 4 March 2018, Baby T was injured.",
        "x.txt",
    )
    assert meta.publication_date == date(2020, 5, 12)
    assert meta.incident_date == date(2018, 3, 4)
    assert infer_metadata("Published on 31/01/2022.", "x.txt").publication_date == date(2022, 1, 31)
    assert infer_metadata("Nothing dated here", "x.txt").publication_date is None


def test_annual_report_has_no_age_band_and_title_falls_back_to_file_name() -> None:
    meta = infer_metadata("Annual Report\nA 3-day-old baby died.", "x.txt")
    assert meta.review_type is ReviewType.ANNUAL_REPORT and meta.age_band is None
    assert infer_metadata("", "scr-overview.pdf").title == "scr-overview"


# --- manifests -------------------------------------------------------------------------------


def test_load_yaml_manifest(tmp_path: Path) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_text(
        "- file: reviews/child-a.pdf\n  title: Child A\n  type: lcspr\n  status: published\n"
        "  publication_date: 2021-03-01\n  age_band: under_1\n"
        "  expected_themes: [information_sharing, neglect]\n"
        "- file: b.docx\n  type: SCR\n  incident_date: '2019-02-03'\n",
        encoding="utf-8",
    )
    manifest = load_manifest(path)
    assert set(manifest) == {"child-a.pdf", "b.docx"}
    entry = manifest["child-a.pdf"]
    assert entry["type"] is ReviewType.LCSPR
    assert entry["status"] is ReviewStatus.PUBLISHED
    assert entry["publication_date"] == date(2021, 3, 1)
    assert entry["age_band"] is AgeBand.UNDER_1
    assert entry["expected_themes"] == ["information_sharing", "neglect"]
    assert manifest["b.docx"]["type"] is ReviewType.SCR
    assert manifest["b.docx"]["incident_date"] == date(2019, 2, 3)


def test_load_yaml_mapping_and_documents_forms(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yml"
    mapping.write_text("a.pdf:\n  type: audit\nb.pdf:\n", encoding="utf-8")
    assert load_manifest(mapping)["a.pdf"]["type"] is ReviewType.AUDIT
    assert load_manifest(mapping)["b.pdf"] == {"file": "b.pdf"}
    docs = tmp_path / "d.yaml"
    docs.write_text("documents:\n  - file: c.pdf\n    pseudonym: Child C\n", encoding="utf-8")
    assert load_manifest(docs)["c.pdf"]["pseudonym"] == "Child C"


def test_load_csv_manifest(tmp_path: Path) -> None:
    path = tmp_path / "manifest.csv"
    path.write_text(
        "file,type,status,review_date,expected_themes,partnership\n"
        "a.pdf,rapid_review,embargoed,2022-06-30,neglect;hidden_men,\n",
        encoding="utf-8",
    )
    entry = load_manifest(path)["a.pdf"]
    assert entry["type"] is ReviewType.RAPID_REVIEW
    assert entry["status"] is ReviewStatus.EMBARGOED
    assert entry["review_date"] == date(2022, 6, 30)
    assert entry["expected_themes"] == ["neglect", "hidden_men"]
    assert "partnership" not in entry  # empty cells are absent, not ""


@pytest.mark.parametrize(
    ("content", "suffix", "where", "field"),
    [
        ("file,colour\na.pdf,red\n", ".csv", "row 2", "colour"),
        ("file,type\na.pdf,lcspr\nb.pdf,novel\n", ".csv", "row 3", "type"),
        ("file,status\na.pdf,public\n", ".csv", "row 2", "status"),
        ("file,publication_date\na.pdf,12/05/2020\n", ".csv", "row 2", "publication_date"),
        ("- file: a.pdf\n  age_band: toddler\n", ".yaml", "entry 1", "age_band"),
        ("- file: a.pdf\n- title: no file\n", ".yaml", "entry 2", "file"),
        ("- file: a.pdf\n- file: other/a.pdf\n", ".yaml", "entry 2", "file"),
        ("- file: a.pdf\n  expected_themes: 3\n", ".yaml", "entry 1", "expected_themes"),
    ],
)
def test_manifest_errors_name_file_entry_and_field(
    tmp_path: Path, content: str, suffix: str, where: str, field: str
) -> None:
    path = tmp_path / f"manifest{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    message = str(info.value)
    assert str(path) in message and where in message and f"'{field}'" in message
    assert info.value.entry == where and info.value.field == field


def test_manifest_structural_errors(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "m.yaml"
    bad_yaml.write_text("- file: [unclosed\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="invalid YAML"):
        load_manifest(bad_yaml)
    scalar = tmp_path / "s.yaml"
    scalar.write_text("just a string\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="expected a list"):
        load_manifest(scalar)
    other = tmp_path / "m.json"
    other.write_text("{}", encoding="utf-8")
    with pytest.raises(ManifestError, match=".csv, .yaml or .yml"):
        load_manifest(other)


def test_apply_overrides() -> None:
    meta = infer_metadata(LCSPR, "child-a.pdf")
    updated = apply_overrides(
        meta,
        {
            "file": "child-a.pdf",
            "type": ReviewType.SCR,
            "status": "published",
            "publication_date": "2021-04-01",
            "expected_themes": ["neglect"],
            "pseudonym": None,
        },
    )
    assert updated.review_type is ReviewType.SCR
    assert updated.status is ReviewStatus.PUBLISHED
    assert updated.publication_date == date(2021, 4, 1)
    assert updated.pseudonym == "Child A"  # None means "no override"
    assert meta.status is ReviewStatus.IN_PROGRESS  # the original is untouched
    with pytest.raises(ValueError, match="unknown metadata field"):
        apply_overrides(meta, {"colour": "red"})
