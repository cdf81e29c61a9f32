"""Dev-only benchmark: real documents (the seed reports) through the real ingest.

For each seed report in ../shared/seeds: the kind and title inferred, and the reviews found in
it with their type and year (``~`` marks a year inferred from the report's period). Then the
passage-role classifier against ../shared/gold/seed-roles.jsonl, per role precision / recall /
F1 and macro-F1:

* **bundled**: the model trained on the project's own fictional passages only (the gold never
  trains it) - the honest figure for a new deployment; also without the unquotable margin
  (nlp.roles.UNQUOTABLE_MARGIN) to show what that abstention does;
* **cv-docs**: leave-one-document-out cross-validation where the other four documents' gold
  passages are added to training as if people had confirmed their roles;
* **cv-5**: stratified 5-fold cross-validation, the same way;
* with ``--nested`` (slow, minutes): both cross-validations again, each outer fold choosing the
  confirmed-example weight from ``NESTED_WEIGHTS`` by an inner cross-validation on its own
  training gold - the honest figure for "pick the weight from the confirmations", since the
  product's ``CONFIRMED_WEIGHT`` was itself chosen that way.

* with ``--experiments``, two measured alternatives that did NOT beat the model above (kept so
  the negative result is reproducible): the bundled MiniLM sentence embeddings (+ layout tokens)
  as a second logistic regression averaged with the tf-idf model, and a confidence floor under
  which front_matter / partnership_business fall back to the next-best role.

    .venv/bin/python benchmarks/real_documents.py [--shared ../shared] [--json] [--nested]
        [--experiments]

Goals (issue 14): every seed's kind right; 8 rapid reviews with years from the 2020-21 report
and 3 reviews with years from the 2021-22 report; roles macro-F1 >= 0.80 with front_matter and
partnership_business precision >= 0.90.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from corpus.metadata import infer_metadata  # noqa: E402
from corpus.passage_layout import LayoutIndex  # noqa: E402
from corpus.readers import read_document  # noqa: E402
from corpus.segment import segment  # noqa: E402
from nlp.roles import (  # noqa: E402
    CONFIRMED_WEIGHT,
    ROLES,
    UNQUOTABLE_ROLES,
    RoleInput,
    classify_roles,
    train,
)

DEFAULT_SHARED = ROOT.parent / "shared"
#: What each seed is (from seeds/INDEX.md): the kind the benchmark expects.
EXPECTED_KINDS = {
    "000_2965136fe401e085.txt": "annual_report",
    "001_0a326c36eab5b878.txt": "annual_report",
    "002_bf7768076746cae1.txt": "newsletter",
    "003_f8198cbfb9ddbf6f.txt": "annual_report",
    "004_db5961c4b0f2905b.txt": "scrutiny_report",
}
REVIEW_TYPES = {"scr", "lcspr", "rapid_review"}


def ingest_seeds(seeds: list[Path]) -> list[dict[str, Any]]:
    """Ingest the seeds into a throw-away knowledge base; each document with its reviews."""
    os.environ["KB_HOME"] = tempfile.mkdtemp(prefix="kb-bench-real-")
    os.environ.pop("KB_DATABASE_URL", None)
    os.environ["KB_EMBED_ON_INGEST"] = "false"
    from sqlmodel import Session, col, select

    from kb import db
    from kb.config import get_settings
    from kb.models import Review
    from kb.services.ingest import ingest_paths

    get_settings.cache_clear()
    db.get_engine.cache_clear()
    engine = db.get_engine()
    db.init_db(engine)
    report = ingest_paths(engine=engine, paths=seeds)
    if report.failed:
        raise SystemExit(f"ingest failed: {report.failed}")
    out = []
    with Session(engine) as session:
        for item in report.ingested:
            reviews = session.exec(
                select(Review).where(col(Review.id).in_(item["reviews"])).order_by(col(Review.id))
            ).all()
            top, cases = reviews[0], reviews[1:]
            out.append(
                {
                    "file": Path(item["path"]).name,
                    "kind": top.type.value,
                    "title": top.title,
                    "period": top.period,
                    "warnings": item.get("warnings", []),
                    "reviews": [
                        {
                            "pseudonym": r.pseudonym,
                            "type": r.type.value,
                            "year": r.year,
                            "year_inferred": r.year_inferred,
                        }
                        for r in cases
                    ],
                }
            )
    return out


def gold_inputs(shared: Path) -> tuple[list[RoleInput], list[str], list[str]]:
    """Each gold passage as the classifier sees it at ingest (layout from its document)."""
    items = [json.loads(line) for line in (shared / "gold" / "seed-roles.jsonl").open()]
    layouts: dict[str, LayoutIndex] = {}
    inputs, labels, groups = [], [], []
    for item in items:
        source = item["source"]
        if source not in layouts:
            doc = read_document(shared / "seeds" / source)
            kind = infer_metadata(doc.text, source).review_type.value
            layouts[source] = LayoutIndex(len(doc.text), segment(doc), kind)
        inputs.append(layouts[source].role_input(item["text"], item["start"]))
        labels.append(item["role"])
        groups.append(source)
    return inputs, labels, groups


def scores(gold: list[str], predicted: list[str]) -> dict[str, Any]:
    """Per-role precision / recall / F1 / support and the macro average."""
    per: dict[str, dict[str, float]] = {}
    for role in ROLES:
        tp = sum(g == p == role for g, p in zip(gold, predicted, strict=True))
        fp = sum(p == role != g for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == role != p for g, p in zip(gold, predicted, strict=True))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[role] = {"precision": prec, "recall": rec, "f1": f1, "support": tp + fn}
    macro = sum(m["f1"] for m in per.values()) / len(per)
    accuracy = sum(g == p for g, p in zip(gold, predicted, strict=True)) / max(1, len(gold))
    # What a briefing cares about: front matter and partnership business taken together.
    gold_u = [g in UNQUOTABLE_ROLES for g in gold]
    pred_u = [p in UNQUOTABLE_ROLES for p in predicted]
    tp = sum(g and p for g, p in zip(gold_u, pred_u, strict=True))
    unquotable = {
        "precision": tp / max(1, sum(pred_u)),
        "recall": tp / max(1, sum(gold_u)),
        "support": sum(gold_u),
    }
    return {"roles": per, "macro_f1": macro, "accuracy": accuracy, "unquotable": unquotable}


def evaluate_roles(inputs: list[RoleInput], labels: list[str], groups: list[str]) -> dict:
    """The three evaluations described in the module docstring."""
    results: dict[str, Any] = {}
    model = train()
    results["bundled"] = scores(labels, [d.role for d in classify_roles(inputs, model)])
    # The same model without the unquotable margin: what the abstention costs and buys.
    plain = classify_roles(inputs, model, margin=0.0)
    results["bundled, no margin"] = scores(labels, [d.role for d in plain])
    for name, folds in _cv_folds(labels, groups).items():
        results[name] = scores(labels, _cross_predict(inputs, labels, folds))
    return results


def _cross_predict(
    inputs: list[RoleInput],
    labels: list[str],
    folds: list[tuple[list[int], list[int]]],
    weight: float = CONFIRMED_WEIGHT,
) -> list[str]:
    """Each passage's role from a model trained on the bundled set + the other folds' gold."""
    predicted = [""] * len(labels)
    for train_idx, test_idx in folds:
        model = train([(inputs[i], labels[i]) for i in train_idx], extra_weight=weight)
        tests = [inputs[i] for i in test_idx]
        for i, d in zip(test_idx, classify_roles(tests, model), strict=True):
            predicted[i] = d.role
    return predicted


#: Weights of a confirmed (gold) example that ``nested_weights`` chooses from.
NESTED_WEIGHTS = (0.25, 1.0, 2.0)


def nested_weights(inputs: list[RoleInput], labels: list[str], groups: list[str]) -> dict:
    """Cross-validation where each outer fold picks the confirmed-example weight by an inner
    cross-validation over its own training gold only (leave-one-document-out inside
    leave-one-document-out; 4-fold inside 5-fold), so the choice never sees the test fold.

    Why: the product gives confirmed roles ``CONFIRMED_WEIGHT``; this measures whether a
    weight chosen from the confirmations themselves would do better, honestly.
    """
    from sklearn.model_selection import StratifiedKFold

    out: dict[str, Any] = {}
    for name, folds in _cv_folds(labels, groups).items():
        predicted = [""] * len(labels)
        chosen = []
        for train_idx, test_idx in folds:
            sub_labels = [labels[i] for i in train_idx]
            if name == "cv-docs":
                sub_groups = [groups[i] for i in train_idx]
                inner = [
                    (
                        [k for k, g in enumerate(sub_groups) if g != held],
                        [k for k, g in enumerate(sub_groups) if g == held],
                    )
                    for held in sorted(set(sub_groups))
                ]
            else:
                splitter = StratifiedKFold(n_splits=4, shuffle=True, random_state=1)
                inner = [(list(a), list(b)) for a, b in splitter.split(sub_labels, sub_labels)]
            sub_inputs = [inputs[i] for i in train_idx]
            best = max(
                NESTED_WEIGHTS,
                key=lambda w: scores(sub_labels, _cross_predict(sub_inputs, sub_labels, inner, w))[
                    "macro_f1"
                ],
            )
            chosen.append(best)
            model = train([(inputs[i], labels[i]) for i in train_idx], extra_weight=best)
            tests = [inputs[i] for i in test_idx]
            for i, d in zip(test_idx, classify_roles(tests, model), strict=True):
                predicted[i] = d.role
        result = scores(labels, predicted)
        result["weights_chosen"] = chosen
        out[f"{name}, nested weight"] = result
    return out


def _cv_folds(labels: list[str], groups: list[str]) -> dict[str, list[tuple[list[int], list[int]]]]:
    """Leave-one-document-out and stratified 5-fold splits of the gold passages."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    return {
        "cv-docs": [
            (
                [i for i, g in enumerate(groups) if g != held],
                [i for i, g in enumerate(groups) if g == held],
            )
            for held in sorted(set(groups))
        ],
        "cv-5": [(list(a), list(b)) for a, b in splitter.split(labels, labels)],
    }


def _decide(probs: Any, fixed: list[Any], classes: list[str], floor: float = 0.0) -> list[str]:
    """Best role per row; layout decisions win; below ``floor`` an unquotable role yields to
    the next best."""
    import numpy as np

    roles = []
    for row, decided in zip(probs, fixed, strict=True):
        order = np.argsort(-row)
        role = classes[order[0]]
        if role in UNQUOTABLE_ROLES and row[order[0]] < floor:
            role = classes[order[1]]
        roles.append(decided.role if decided else role)
    return roles


def experiments(inputs: list[RoleInput], labels: list[str], groups: list[str]) -> dict:
    """Embedding stack and confidence floor, cross-validated like ``evaluate_roles``.

    Training in every fold = the bundled fictional set + the other folds' gold passages
    (weight 2, as confirmed roles are); layout rules decide first, as in classify_roles.
    """
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from nlp.embeddings import get_embedder
    from nlp.roles import CONFIRMED_WEIGHT, RoleModel, layout_role, load_training_set
    from nlp.roles_features import layout_tokens

    base_items, base_labels = load_training_set()
    embedder = get_embedder()
    base_vectors = embedder.encode([i.text for i in base_items])
    gold_vectors = embedder.encode([i.text for i in inputs])
    fixed = [layout_role(i) for i in inputs]
    out: dict[str, Any] = {}
    folds = {"bundled": [([], list(range(len(inputs))))], **_cv_folds(labels, groups)}
    for name, split in folds.items():
        probs_text = np.zeros((len(inputs), len(ROLES)))
        probs_emb = np.zeros((len(inputs), len(ROLES)))
        classes: list[str] = []
        for train_idx, test_idx in split:
            items = base_items + [inputs[i] for i in train_idx]
            y = base_labels + [labels[i] for i in train_idx]
            w = [1.0] * len(base_items) + [CONFIRMED_WEIGHT] * len(train_idx)
            vectors = np.vstack([base_vectors, gold_vectors[train_idx]])
            test = [inputs[i] for i in test_idx]
            layout = TfidfVectorizer(
                use_idf=False, binary=True, token_pattern=r"\S+", lowercase=False
            ).fit([layout_tokens(i) for i in items])

            def dense(rows: list[RoleInput], vecs: Any, layout: Any = layout) -> Any:
                tokens = layout.transform([layout_tokens(i) for i in rows]).toarray()
                return np.hstack([vecs, 0.5 * tokens])

            with threadpool_limits(1):
                text_model = RoleModel().fit(items, y, w)
                emb_model = LogisticRegression(C=2.0, class_weight="balanced", max_iter=3000)
                emb_model.fit(dense(items, vectors), y, sample_weight=w)
                probs_text[test_idx] = text_model._model.predict_proba(  # noqa: SLF001
                    text_model._features(test)  # noqa: SLF001
                )
                probs_emb[test_idx] = emb_model.predict_proba(dense(test, gold_vectors[test_idx]))
            classes = [str(c) for c in emb_model.classes_]

        out[f"{name} embeddings+tfidf"] = scores(
            labels, _decide((probs_text + probs_emb) / 2, fixed, classes)
        )
        out[f"{name} embeddings only"] = scores(labels, _decide(probs_emb, fixed, classes))
        for floor in (0.4, 0.5):
            out[f"{name} tfidf, unquotable floor {floor}"] = scores(
                labels, _decide(probs_text, fixed, classes, floor)
            )
    return out


def print_report(documents: list[dict[str, Any]], roles: dict[str, Any]) -> None:
    for doc in documents:
        expected = EXPECTED_KINDS.get(doc["file"])
        mark = "ok" if expected in (None, doc["kind"]) else f"WRONG (expected {expected})"
        print(f"{doc['file']}: kind={doc['kind']} [{mark}] period={doc['period']}")
        print(f"    title: {doc['title']}")
        for warning in doc["warnings"]:
            print(f"    warning: {warning}")
        counted = Counter(r["type"] for r in doc["reviews"] if r["year"] is not None)
        print(f"    reviews with a year: {dict(counted)}")
        for r in doc["reviews"]:
            year = f"~{r['year']}" if r["year_inferred"] else str(r["year"])
            print(f"      {r['type']:14s} {year:6s} {r['pseudonym']}")
    for name, result in roles.items():
        print(
            f"\nroles ({name}): macro-F1 {result['macro_f1']:.3f}, "
            f"accuracy {result['accuracy']:.3f}"
        )
        print(f"    {'role':22s} {'P':>5s} {'R':>5s} {'F1':>5s} {'n':>4s}")
        for role, m in result["roles"].items():
            print(
                f"    {role:22s} {m['precision']:5.2f} {m['recall']:5.2f} {m['f1']:5.2f} "
                f"{m['support']:4d}"
            )
        u = result["unquotable"]
        print(
            f"    {'front_matter+partnership_business':34s} P {u['precision']:.2f} "
            f"R {u['recall']:.2f} n {u['support']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--nested",
        action="store_true",
        help="also cross-validate with the confirmed-example weight chosen by inner CV (slow)",
    )
    parser.add_argument(
        "--experiments",
        action="store_true",
        help="also measure the MiniLM embedding stack and an unquotable confidence floor",
    )
    args = parser.parse_args(argv)
    seeds = sorted((args.shared / "seeds").glob("*.txt"))
    if not seeds:
        print(f"no seeds under {args.shared / 'seeds'}: nothing to measure")
        return 0
    documents = ingest_seeds(seeds)
    gold = gold_inputs(args.shared)
    roles = evaluate_roles(*gold)
    if args.nested:
        roles.update(nested_weights(*gold))
    if args.experiments:
        roles.update(experiments(*gold))
    if args.json:
        print(json.dumps({"documents": documents, "roles": roles}, indent=2))
    else:
        print_report(documents, roles)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
