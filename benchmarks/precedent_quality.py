"""Precedent quality on the demo corpus: for five notifications written for this benchmark (each
modelled on one demo case, reworded: data/precedent_notifications.yaml), is the modelled case
among the top 3 prior cases, and are its main themes found?

    .venv/bin/python benchmarks/precedent_quality.py [--home DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NOTIFICATIONS = Path(__file__).parent / "data" / "precedent_notifications.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", help="KB_HOME to reuse (created and filled when empty)")
    args = parser.parse_args(argv)
    from benchmarks.briefing_quality import load

    engine = load("demo", args.home)
    from sqlmodel import Session, select

    from kb.models import Document, Review
    from kb.services.access import Principal
    from kb.services.precedent import precedent
    from kb.services.tagging import get_tagger

    items = yaml.safe_load(NOTIFICATIONS.read_text(encoding="utf-8"))
    in_top3 = themes_found = themes_total = 0
    with Session(engine) as session:
        tagger = get_tagger()
        for item in items:
            result = precedent(
                session, principal=Principal.system(), text=item["text"], tagger=tagger
            )
            names = [
                session.exec(
                    select(Document.source_name)
                    .join(Review, Review.document_id == Document.id)
                    .where(Review.id == case["review_id"])
                ).one()
                for case in result["cases"][:3]
            ]
            hit = item["modelled_on"] in names
            found = {t["id"] for t in result["themes"]}
            main_themes = set(item["main_themes"])
            in_top3 += hit
            themes_found += len(found & main_themes)
            themes_total += len(main_themes)
            print(
                f"{'TOP3' if hit else 'MISS'} {item['modelled_on']:48} themes "
                f"{len(found & main_themes)}/{len(main_themes)} (found: {', '.join(sorted(found))})"
            )
    n = len(items)
    print(f"modelled case in the top 3: {in_top3}/{n} = {in_top3 / n:.2f}")
    print(f"main themes found: {themes_found}/{themes_total} = {themes_found / themes_total:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
