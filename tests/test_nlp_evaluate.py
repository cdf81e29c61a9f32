"""Metric arithmetic on a hand-computed example, gold loading and out-of-fold CV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlp.evaluate import GoldItem, cross_validate, load_gold, score


def test_score_matches_hand_computation() -> None:
    gold = [{"a", "b"}, {"a"}, {"c"}]
    pred = [{"a"}, {"a", "b"}, set()]
    # a: tp 2 fp 0 fn 0; b: tp 0 fp 1 fn 1; c: tp 0 fp 0 fn 1; d: no support, never predicted
    result = score(gold, pred, ["a", "b", "c", "d"])
    assert result["themes"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert result["themes"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert result["themes"]["c"]["support"] == 1
    # micro: tp 2, fp 1, fn 2 -> P 2/3, R 1/2, F1 4/7
    assert result["micro"] == {"precision": 0.6667, "recall": 0.5, "f1": 0.5714}
    # macro over a, b, c (d has no support): P (1+0+0)/3, R 1/3, F1 1/3
    assert result["macro"] == {"precision": 0.3333, "recall": 0.3333, "f1": 0.3333}
    assert set(result) == {"micro", "macro", "themes"}


def test_score_ignores_unknown_themes_and_checks_lengths() -> None:
    assert score([{"a"}], [{"a", "zzz"}], ["a"])["micro"]["precision"] == 1.0
    with pytest.raises(ValueError):
        score([{"a"}], [], ["a"])


def test_load_gold(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    rows = [{"id": "x1", "source": "s.txt", "text": "Invented text.", "themes": ["neglect"]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    (item,) = load_gold(path)
    assert item == GoldItem("x1", "Invented text.", frozenset({"neglect"}), "s.txt")


def test_cross_validation_never_predicts_training_items() -> None:
    items = [
        GoldItem(f"i{n}", f"text {n}", frozenset({"a"} if n % 2 else {"b"})) for n in range(10)
    ]

    def make_predictor(train: list[GoldItem]):
        seen = {it.text for it in train}

        def predict(texts: list[str]) -> list[set[str]]:
            assert not seen & set(texts), "a training item was scored"
            return [{"a"} if int(t.split()[1]) % 2 else {"b"} for t in texts]

        return predict

    result = cross_validate(items, make_predictor, k=5, seed=1)
    assert result.scores["micro"]["f1"] == 1.0
    assert sorted(result.predictions) == sorted(it.id for it in items)
    assert sorted(i for fold in result.folds for i in fold) == sorted(it.id for it in items)


def test_decision_impact_scores_only_what_people_decided() -> None:
    from nlp.evaluate import decision_impact
    from nlp.training_data import LabelledExample

    themes = ["poverty-housing", "covid-19"]
    base = [
        LabelledExample("The family fell behind with the rent.", {"poverty-housing"}, {"covid-19"}),
        LabelledExample(
            "Lockdown closed the nursery for weeks.", {"covid-19"}, {"poverty-housing"}
        ),
        LabelledExample("The boy played football on Saturdays.", set(), set(themes)),
        LabelledExample("Debt letters piled up by the door.", {"poverty-housing"}, {"covid-19"}),
        LabelledExample(
            "Visits moved online during the pandemic.", {"covid-19"}, {"poverty-housing"}
        ),
        LabelledExample("The garden was tidy in the spring.", set(), set(themes)),
    ]
    decided = [
        LabelledExample(
            f"Arrears notice number {n} arrived from the landlord.", {"poverty-housing"}
        )
        for n in range(4)
    ] + [LabelledExample("A landlord visited to mend the boiler.", set(), {"poverty-housing"})]
    report = decision_impact(base, decided, themes, folds=2)
    assert report["decisions"] == 5 and set(report["themes"]) == {"poverty-housing"}
    entry = report["themes"]["poverty-housing"]
    assert entry["before"]["decided"] == entry["after"]["decided"] == 5
    assert entry["after"]["support"] == 4
    assert decision_impact(base, [], themes) == {"decisions": 0, "themes": {}}
