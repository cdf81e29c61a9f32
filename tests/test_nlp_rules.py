"""Rule behaviour on fictional sentences: hard cases of the field (no gold data is read)."""

from __future__ import annotations

import pytest

from nlp.rules import RuleEngine
from nlp.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return RuleEngine(load_taxonomy())


def themes(engine: RuleEngine, text: str) -> set[str]:
    return set(engine.match_text(text).matches)


@pytest.mark.parametrize(
    "text",
    [
        "Baby A was a 3-day-old girl when she was admitted.",
        "The 3 day old infant's mother called an ambulance.",
        "Kai was 8 weeks old at the time of the incident.",
        "When the child was aged 11 months the family moved.",
        "The health visitor saw a six-week-old at home.",
        "Planning for the unborn child did not start until late.",
        "Pre-birth assessment was not completed.",
        "The newborn was discharged after two days.",
        "The pregnant mother was not registered with a GP.",
        "Most serious incidents involved children under one.",
        "Support for families of under 1s has been strengthened.",
    ],
)
def test_baby_ages_tag_under_ones(engine: RuleEngine, text: str) -> None:
    assert "under-1s" in themes(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "A 17-year-old was found at a friend's address.",
        "The boy was 18 months old when he started nursery.",
        "She was aged 14 months at the time.",
        "Over 18 months the school raised four concerns.",
        "The twelve-month-old was walking.",
        "Under 18s attending the walk-in centre are now asked about home.",
    ],
)
def test_older_children_are_not_under_ones(engine: RuleEngine, text: str) -> None:
    assert "under-1s" not in themes(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "The mother's new partner was not known to services.",
        "A male partner not known to services had moved into the flat.",
        "No checks were made on her boyfriend before the child returned home.",
        "The stepfather was never assessed by children's social care.",
        "Professionals did not know about the man living in the home.",
        "Practitioners should engage with fathers from the first contact.",
        "Services showed little curiosity about the apparently 'absent' father.",
        "The baby was injured by the mother's partner. The family were unknown to local services.",
    ],
)
def test_men_absent_from_view_tag_hidden_men(engine: RuleEngine, text: str) -> None:
    assert "hidden-men" in themes(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "The mother's new partner attended every core group meeting.",
        "Her boyfriend drove her to the appointment.",
        "Partner agencies were not known to each other's systems.",
        "The stepfather took the children to school each day.",
    ],
)
def test_men_merely_mentioned_are_not_hidden_men(engine: RuleEngine, text: str) -> None:
    assert "hidden-men" not in themes(engine, text)


@pytest.mark.parametrize(
    ("text", "theme"),
    [
        ("There were no concerns about domestic abuse.", "domestic-abuse"),
        ("There was no evidence of neglect.", "neglect"),
        ("Mother denied any drug use.", "substance-misuse"),
        ("Father was not known to mental health services.", "parental-mental-health"),
        (
            "If domestic abuse had been identified, a referral would have followed.",
            "domestic-abuse",
        ),
        ("Should there be concerns about neglect, a review will be held.", "neglect"),
        ("Domestic abuse was ruled out after enquiries.", "domestic-abuse"),
        (
            "No concerns about neglect, domestic abuse or drug use were recorded.",
            "substance-misuse",
        ),
    ],
)
def test_negated_and_hypothetical_mentions_do_not_tag(
    engine: RuleEngine, text: str, theme: str
) -> None:
    assert theme not in themes(engine, text)


@pytest.mark.parametrize(
    ("text", "theme"),
    [
        (
            "There were no concerns about school attendance, but domestic abuse was known.",
            "domestic-abuse",
        ),
        ("Neglect was not identified by any agency for two years.", "neglect"),
        ("The child was not brought to three appointments.", "was-not-brought"),
        ("No single agency understood the extent of the neglect.", "neglect"),
        ("Practitioners need to consider if neglect is present.", "neglect"),
        ("Practitioners did not see the child on her own.", "voice-of-child"),
        ("If the GP had not shared information, nobody would have known.", "information-sharing"),
    ],
)
def test_negation_is_scoped_to_the_clause(engine: RuleEngine, text: str, theme: str) -> None:
    assert theme in themes(engine, text)


@pytest.mark.parametrize(
    ("text", "theme"),
    [
        ("The Domestic Abuse Team attended the strategy meeting.", "domestic-abuse"),
        ("Adult Mental Health Services provided a chronology.", "parental-mental-health"),
        ("A representative of the Substance Misuse Service sat on the panel.", "substance-misuse"),
    ],
)
def test_service_names_alone_do_not_tag(engine: RuleEngine, text: str, theme: str) -> None:
    assert theme not in themes(engine, text)


def test_service_name_with_involvement_tags(engine: RuleEngine) -> None:
    text = "Mother was known to Adult Mental Health Services after a crisis."
    assert "parental-mental-health" in themes(engine, text)


@pytest.mark.parametrize(
    ("text", "expected", "absent"),
    [
        (
            "Mother's depression worsened after the birth.",
            "parental-mental-health",
            "child-mental-health",
        ),
        (
            "The young person was on the CAMHS waiting list for a year.",
            "child-mental-health",
            "parental-mental-health",
        ),
        (
            "Both parents had a history of mental ill health.",
            "parental-mental-health",
            "child-mental-health",
        ),
    ],
)
def test_mental_health_owner(engine: RuleEngine, text: str, expected: str, absent: str) -> None:
    found = themes(engine, text)
    assert expected in found and absent not in found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Father assaulted the mother in front of the children.", {"domestic-abuse"}),
        ("The toddler was hit by her stepfather.", {"non-accidental-injury"}),
        ("Neglectful parenting was evident; the home was neglected.", {"neglect"}),
        ("She was drinking heavily and misusing cocaine.", {"substance-misuse"}),
        ("The family moved between three local authorities.", {"cross-border"}),
        ("Learning about organisational culture and supervision.", set()),
        ("The Black Country partnership agreed the plan.", set()),
    ],
)
def test_domain_vocabulary(engine: RuleEngine, text: str, expected: set[str]) -> None:
    found = themes(engine, text)
    assert expected <= found
    if not expected:
        assert "culture-ethnicity" not in found


def test_review_thresholds_are_not_practice_thresholds(engine: RuleEngine) -> None:
    text = "The panel decided the threshold for a local practice review was not met."
    assert "thresholds-procedures" not in themes(engine, text)
    assert "thresholds-procedures" in themes(engine, "Thresholds were applied inconsistently.")


def test_every_hit_has_sentence_evidence(engine: RuleEngine) -> None:
    text = "The family lived quietly. Mother disclosed domestic abuse to the midwife. Nothing else."
    match = engine.match_text(text).matches["domestic-abuse"]
    assert [text[a:b] for a, b in match.evidence] == [
        "Mother disclosed domestic abuse to the midwife."
    ]
