"""Dev-only benchmark: real documents (the seed reports) through the real ingest.

For each seed report in ../shared/seeds: the kind and title inferred, and the reviews found in
it with their type and year (``~`` marks a year inferred from the report's period). Then the
passage-role classifier against ../shared/gold/seed-roles.jsonl, per role precision / recall /
F1 and macro-F1:

* **bundled**: the model trained on the project's own fictional passages only (the gold never
  trains it) - the honest figure for a new deployment;
* **cv-docs**: leave-one-document-out cross-validation where the other four documents' gold
  passages are added to training as if people had confirmed their roles;
* **cv-5**: stratified 5-fold cross-validation, the same way.

    .venv/bin/python benchmarks/real_documents.py [--shared ../shared] [--json]

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
from nlp.roles import ROLES, UNQUOTABLE_ROLES, RoleInput, classify_roles, train  # noqa: E402

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
    from sklearn.model_selection import StratifiedKFold

    results: dict[str, Any] = {}
    bundled = classify_roles(inputs, train())
    results["bundled"] = scores(labels, [d.role for d in bundled])
    folds_docs = [
        (
            [i for i, g in enumerate(groups) if g != held],
            [i for i, g in enumerate(groups) if g == held],
        )
        for held in sorted(set(groups))
    ]
    splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    folds_5 = [(list(a), list(b)) for a, b in splitter.split(inputs, labels)]
    for name, folds in (("cv-docs", folds_docs), ("cv-5", folds_5)):
        predicted = [""] * len(labels)
        for train_idx, test_idx in folds:
            model = train([(inputs[i], labels[i]) for i in train_idx])
            for i, d in zip(
                test_idx, classify_roles([inputs[i] for i in test_idx], model), strict=True
            ):
                predicted[i] = d.role
        results[name] = scores(labels, predicted)
    return results


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
    args = parser.parse_args(argv)
    seeds = sorted((args.shared / "seeds").glob("*.txt"))
    if not seeds:
        print(f"no seeds under {args.shared / 'seeds'}: nothing to measure")
        return 0
    documents = ingest_seeds(seeds)
    roles = evaluate_roles(*gold_inputs(args.shared))
    if args.json:
        print(json.dumps({"documents": documents, "roles": roles}, indent=2))
    else:
        print_report(documents, roles)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
