"""Briefing quality: do the quoted items come from the right kind of passage?

For every theme with a tagged review, builds the theme briefing (restricted material included:
reports ingested without a manifest are unpublished) and
measures, over items that quote a passage:

* role match: share of items whose passage role fits their section (1 Background ←
  case_synopsis, 3 What we found ← finding, 5 What practitioners should do ← recommendation /
  action); goal >= 0.95;
* unquotable: items quoting front matter or partnership business; goal 0;
* duplicate cases: items beyond the first from one case in a section; goal 0.

Corpora: the bundled demo (files + tracker) and, when present, the seed reports in
../shared/seeds (text files; never copied into the repository).

    .venv/bin/python benchmarks/briefing_quality.py [--corpus demo|seeds] [--home DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_REPO = Path(__file__).resolve().parent.parent
# ../shared/seeds beside the checkout (a worktree one level deeper finds it one level up).
SEEDS = next(
    (
        p
        for p in (_REPO.parent / "shared" / "seeds", _REPO.parent.parent / "shared" / "seeds")
        if p.is_dir()
    ),
    _REPO.parent / "shared" / "seeds",
)
EXPECTED = {1: {"case_synopsis"}, 3: {"finding"}, 5: {"recommendation", "action"}}
UNQUOTABLE = {"front_matter", "partnership_business"}


def load(corpus: str, home: str | None) -> object:
    """A knowledge base holding the corpus (reused when ``home`` already has one)."""
    os.environ["KB_HOME"] = home or tempfile.mkdtemp(prefix=f"kb-briefing-{corpus}-")
    os.environ.pop("KB_DATABASE_URL", None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from corpus.demo import FILES_DIR, MANIFEST, TRACKER
    from corpus.metadata import load_manifest
    from kb import db
    from kb.config import get_settings
    from kb.services.access import Principal
    from kb.services.analysis import passage_hook
    from kb.services.ingest import IngestOptions, ingest_paths

    get_settings.cache_clear()
    db.get_engine.cache_clear()
    engine = db.get_engine()
    db.init_db(engine)
    if corpus == "demo":
        from kb.services.tagging import MODEL_FILE, train_model

        if not (get_settings().model_dir / MODEL_FILE).exists():
            train_model(engine)  # as ``kb demo`` does: the tagger with its learned model
    if home and (Path(home) / "kb.sqlite3").exists() and _has_reviews(engine):
        return engine
    paths = [FILES_DIR] if corpus == "demo" else sorted(SEEDS.glob("*.txt"))
    options = IngestOptions(manifest=load_manifest(MANIFEST)) if corpus == "demo" else None
    report = ingest_paths(
        engine=engine,
        paths=paths,
        options=options or IngestOptions(),
        on_passages=passage_hook(get_settings()),
    )
    if report.failed:
        print(f"ingest failures: {report.failed}")
    if corpus == "demo" and TRACKER.exists():
        from sqlmodel import Session

        from kb.services.tracker_io import import_tracker

        with Session(engine) as session:
            import_tracker(session, principal=Principal.system(), path=TRACKER)
            session.commit()
    return engine


def _has_reviews(engine) -> bool:  # type: ignore[no-untyped-def]
    from sqlmodel import Session, func, select

    from kb.models import Review

    with Session(engine) as session:
        return bool(session.exec(select(func.count()).select_from(Review)).one())


def measure(engine) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from sqlmodel import Session, select

    from kb.models import Passage, Review, TagStatus, ThemeTag
    from kb.services.access import Principal
    from kb.services.briefings import build_briefing
    from kb.services.cases import case_keys

    counts: Counter[str] = Counter()
    with Session(engine) as session:
        themes = sorted(
            set(
                session.exec(
                    select(ThemeTag.theme_id).where(ThemeTag.status != TagStatus.REJECTED)
                ).all()
            )
        )
        # Everything, unpublished included: reports ingested without a manifest are unpublished.
        reader = Principal.system()
        for theme in themes:
            try:
                draft = build_briefing(
                    session, principal=reader, theme_id=theme, include_restricted=True
                )
            except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not stop
                print(f"  {theme}: {exc}")
                continue
            counts["briefings"] += 1
            for sec in draft.sections:
                items = [i for i in sec.items if i["passage_id"] is not None]
                keys = case_keys(session, {i["review_id"] for i in items})
                seen: Counter[object] = Counter(keys[i["review_id"]] for i in items)
                counts["duplicate_cases"] += sum(n - 1 for n in seen.values())
                for item in items:
                    role = session.get(Passage, item["passage_id"]).role  # type: ignore[union-attr]
                    counts["quoted"] += 1
                    counts["unquotable"] += role in UNQUOTABLE
                    if sec.number in EXPECTED:
                        counts["checked"] += 1
                        counts["matched"] += role in EXPECTED[sec.number]
        counts["reviews"] = len(session.exec(select(Review.id)).all())
    return dict(counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", choices=("demo", "seeds"), default="demo")
    parser.add_argument("--home", help="KB_HOME to reuse (created and filled when empty)")
    args = parser.parse_args(argv)
    if args.corpus == "seeds" and not SEEDS.is_dir():
        print(f"no seed reports at {SEEDS}: skipped")
        return 0
    counts = measure(load(args.corpus, args.home))
    checked = max(counts.get("checked", 0), 1)
    print(
        f"{args.corpus}: {counts.get('briefings', 0)} theme briefings over "
        f"{counts.get('reviews', 0)} reviews, {counts.get('quoted', 0)} quoted items"
    )
    print(
        f"role matches section: {counts.get('matched', 0)}/{counts.get('checked', 0)} = "
        f"{counts.get('matched', 0) / checked:.3f} (goal >= 0.95)"
    )
    print(f"items from front matter / partnership business: {counts.get('unquotable', 0)} (goal 0)")
    print(f"duplicate cases within a section: {counts.get('duplicate_cases', 0)} (goal 0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
