"""Incidents as notifications tell them (nlp/rules_incidents.py), on fictional sentences written
for these tests: unsafe sleep, self-harm acts and assaults by other young people, each with hard
negatives (negated, someone else's act, an accident, an adult attacker)."""

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
        "The seven-week-old was found unresponsive after sharing a bed with both parents.",
        "Baby R had fallen asleep on the couch with his father after a late feed.",
        "Dad dozed off in the armchair with the baby on his chest.",
        "The infant spent the night on the settee with her mum, who had been drinking.",
        "The baby was put down to sleep in the parents' bed.",
        "A four-month-old girl was found not breathing in her cot in the morning.",
    ],
)
def test_unsafe_sleep_as_told_in_notifications(engine: RuleEngine, text: str) -> None:
    assert "sudi-safe-sleep" in themes(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        # no baby in the passage
        "The fifteen-year-old often slept on the sofa with his brother at weekends.",
        # a baby, but asleep alone in a cot while a parent used the sofa
        "The baby slept in her cot; mother slept on the sofa downstairs.",
        # negated
        "The baby had never slept on the sofa with his parents.",
        # the mother's bed partner is an adult, not the baby
        "After the baby was born the mother shared her bed with her new partner.",
        # unresponsive, but nowhere near sleep
        "The baby's father was found unresponsive in the street after taking heroin.",
    ],
)
def test_unsafe_sleep_hard_negatives(engine: RuleEngine, text: str) -> None:
    assert "sudi-safe-sleep" not in themes(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "Jade, 15, took an overdose of paracetamol after an argument at home.",
        "He overdosed on his grandmother's painkillers in March.",
        "After a row with her mother she swallowed a handful of tablets.",
        "The girl took 32 ibuprofen tablets and told a friend the next day.",
        "School staff saw that she had been cutting her arms.",
        "He told the nurse he had tried to hang himself twice.",
        "Her mother said that Amy had cut herself with a razor blade.",
        "Sam had written notes about wanting to end his life.",
    ],
)
def test_self_harm_acts_tag_suicide_self_harm(engine: RuleEngine, text: str) -> None:
    assert "suicide-self-harm" in themes(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        # a parent's overdose or suicide is the family's story, not the child's self-harm
        "The children's mother was admitted to hospital after two overdoses.",
        "Her father took an overdose of methadone when she was six.",
        "He was cared for by a parent who later ended their own life.",
        # an accident, a toddler, a normal dose, an ordinary cut
        "The toddler swallowed a large number of tablets left on the kitchen table.",
        "She took two paracetamol tablets for a headache.",
        "He cut his leg badly when he fell from the trampoline.",
        "Her aunt cut her hair before school photographs.",
        # negated
        "There was no evidence that she had cut herself.",
        "He denied taking an overdose.",
    ],
)
def test_self_harm_hard_negatives(engine: RuleEngine, text: str) -> None:
    assert "suicide-self-harm" not in themes(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "Tom was assaulted by a group of other young people near the shops.",
        "A group of pupils attacked him on the walk home from school.",
        "She was punched and kicked by girls from her year group.",
        "Three boys stabbed him outside the chip shop.",
        "He punched another pupil during lunch and was excluded.",
        "The fight between the boys was filmed and shared on social media.",
    ],
)
def test_violence_by_other_young_people_tags_peer_violence(engine: RuleEngine, text: str) -> None:
    assert "peer-violence" in themes(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        # the attacker is an adult: abuse in the family or by a stranger, not peer violence
        "The boy was assaulted by his stepfather and a neighbour called the police.",
        "She was attacked by a man she met online.",
        # violence by a young person towards a parent or sibling
        "The boys assaulted their mother when she took their phones.",
        "The boy hit his younger sister.",
        # negated
        "He had not been attacked by other pupils, the school said.",
        # filmed, but not violence; or filmed as evidence
        "The school concert was filmed and shared with parents.",
        "The assault on the boy was filmed on CCTV and shared with the police.",
    ],
)
def test_peer_violence_hard_negatives(engine: RuleEngine, text: str) -> None:
    assert "peer-violence" not in themes(engine, text)


def test_drug_running_for_adults_is_exploitation(engine: RuleEngine) -> None:
    assert "child-exploitation" in themes(
        engine, "Police believed he was selling drugs for older men in the town."
    )
    assert "child-exploitation" not in themes(
        engine, "His mother had been selling drugs from the flat for years."
    )


def test_incident_evidence_is_the_sentence_that_tells_it(engine: RuleEngine) -> None:
    text = (
        "The family had moved twice this year. The baby girl, eight weeks old, fell asleep "
        "on the sofa with her father and was found not breathing."
    )
    match = engine.match_text(text).matches["sudi-safe-sleep"]
    (start, end), *_ = match.evidence
    assert text[start:end].startswith("The baby girl")
    assert any("unsafe_sleep" in reason for reason in match.reasons)


def test_low_mood_belongs_to_whoever_has_it(engine: RuleEngine) -> None:
    parent = themes(engine, "Since the birth the mother had taken tablets for her low mood.")
    assert "child-mental-health" not in parent and "parental-mental-health" in parent
    child = themes(engine, "The school noticed the girl's low mood after the summer.")
    assert "child-mental-health" in child and "parental-mental-health" not in child
