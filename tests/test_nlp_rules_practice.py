"""How reviews say the practice and family themes in their own words (fictional sentences).

Every sentence here was written for this test; none comes from a real review or the gold data.
Each theme has sentences that must tag it and near misses that must not.
"""

from __future__ import annotations

import pytest

from nlp.rules import RuleEngine
from nlp.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return RuleEngine(load_taxonomy())


def themes(engine: RuleEngine, text: str) -> set[str]:
    return set(engine.match_text(text).matches)


CASES: dict[str, tuple[list[str], list[str]]] = {
    "hidden-men": (
        [
            "Her boyfriend, who moved in during the spring, was later convicted of assaulting Tia.",
            "The step-father had a long record of violent offending that nobody looked at.",
            "Staff were unaware that the mother had started a relationship with a new partner.",
            "The man she lived with was never spoken to by any of the visiting professionals.",
            "Ruby's father was charged with causing her death after shaking her.",
            "Services overlooked the father, who lived apart from the children.",
        ],
        [
            "The stepfather attended every core group and was assessed as a protective carer.",
            "Her boyfriend came to the review meeting and spoke about the baby's routine.",
            "The family were allocated a male social worker who had been abused as a child.",
            "The father collected the children from school on Fridays.",
        ],
    ),
    "professional-curiosity": (
        [
            "Workers accepted the mother's explanation at face value.",
            "The nursery did not explore why the child was so often hungry on Mondays.",
            "There was an over-optimistic view of the progress the parents were making.",
            "Practitioners found it hard to challenge parents who were hostile at the door.",
            "The number of missed visits should have prompted questions about the home.",
            "The family refused to engage with the family support worker.",
        ],
        [
            "The health visitor explored feeding with the mother and gave a leaflet.",
            "The school nurse explained the immunisation schedule to the parents.",
        ],
    ),
    "information-sharing": (
        [
            "The police report was not passed on to the school.",
            "Earlier sharing of relevant information would have helped the midwife.",
            "Earlier sharing of relevant information would have helped the midwife.",
            "The GP did not know that the children were on a child protection plan.",
            "No single agency had the full picture of what was happening at home.",
            "Information about the earlier injury was never shared with the hospital.",
        ],
        [
            "The family shared a flat with an aunt.",
            "The children were not told why they were moving school.",
        ],
    ),
    "voice-of-child": (
        [
            "Nobody tried hard enough to talk to him about life at home.",
            "Practice was not child focused; the adults' needs took over every visit.",
            "The views of the child were not recorded in the plan.",
            "Reviews keep asking what it was like to be a child in that household.",
        ],
        [
            "The adults attended a parenting course in the autumn.",
            "Children experiencing hardship were offered free school meals.",
        ],
    ),
    "parental-history": (
        [
            "The mother had a troubled childhood and moved between foster homes.",
            "Both parents had been in care themselves.",
            "The abuse in this family went back over generations.",
        ],
        ["The child's history of asthma was recorded by the GP."],
    ),
    "thresholds-procedures": (
        [
            "The pre-birth assessment was delayed and did not consider the new partner.",
            "Staff were unsure when a case should be escalated to a manager.",
            "The quality of referrals varied across the partnership.",
        ],
        ["Tensions escalated between the two brothers over the summer."],
    ),
    "parental-mental-health": (
        [
            "The mother had been admitted to hospital after an overdose in the spring.",
            "Her father had a long history of depression.",
        ],
        ["The mother had no history of mental illness."],
    ),
    "missing-education": (
        [
            "He left school at fourteen and was not in education after that.",
            "Her school attendance fell to half of the term.",
            "The impact of exclusion on the boy was not understood.",
        ],
        ["The child's needs were not met in mainstream schools."],
    ),
    "non-accidental-injury": (
        [
            "The mother was found guilty of harming her baby.",
            "The toddler was killed by his mother's partner.",
        ],
        ["The boy was injured when he fell from his bicycle."],
    ),
    "neglect": (
        ["The toddler was found in a cold flat with no food: a picture of chronic neglect."],
        ["A review is held when a child dies and abuse or neglect is suspected."],
    ),
    "disability-complex-needs": (
        ["The school had applied for an EHCP because of her SEND."],
        [
            "The report was sent to the council in June.",
            "Staff had to respond to the parents' learning difficulties.",
            "The family claimed disability-related benefits for the grandmother.",
        ],
    ),
    "child-mental-health": (
        [
            "Teenagers in distress were waiting months for help.",
            "The project aimed to build the girls' emotional resilience.",
        ],
        ["The panel discussed how mental health legislation applies to adults."],
    ),
}

NEAR_MISS_ONLY: list[tuple[str, str]] = [
    ("thresholds-procedures", "The escalation of the storm closed the roads for a week."),
    ("thresholds-procedures", "Both brothers were under a child protection plan at the time."),
    ("information-sharing", "The sharing of toys at nursery was a struggle for him."),
]


@pytest.mark.parametrize(("theme", "text"), NEAR_MISS_ONLY)
def test_status_and_other_senses_are_not_practice_findings(
    engine: RuleEngine, theme: str, text: str
) -> None:
    assert theme not in themes(engine, text)


@pytest.mark.parametrize(("theme", "text"), [(t, s) for t, (pos, _) in CASES.items() for s in pos])
def test_how_reviews_say_it(engine: RuleEngine, theme: str, text: str) -> None:
    assert theme in themes(engine, text)


@pytest.mark.parametrize(("theme", "text"), [(t, s) for t, (_, neg) in CASES.items() for s in neg])
def test_near_misses_do_not_tag(engine: RuleEngine, theme: str, text: str) -> None:
    assert theme not in themes(engine, text)


def test_hidden_men_evidence_is_the_sentence_about_the_man(engine: RuleEngine) -> None:
    text = (
        "The family lived in a small flat. "
        "Her new partner had convictions for violence that were never checked."
    )
    match = engine.match_text(text).matches["hidden-men"]
    (start, end), *_ = match.evidence
    assert text[start:end].startswith("Her new partner")
