"""Theme commands: tag without storing, evaluate, decide tags, re-tag, retrain."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from corpus.document import ExtractedDocument, ReaderError, sha256_bytes
from corpus.readers import read_document
from corpus.segment import segment
from kb.cli.common import console, fail, print_json, progress_bar, ready_engine, shown
from kb.db import session_scope
from kb.models import TagStatus
from kb.services.access import Principal
from kb.services.errors import Forbidden
from kb.services.reviews import NotFound
from kb.services.tagging import (
    Conflict,
    decide_tag,
    decision_report,
    get_tagger,
    passages_of,
    retag_all,
    review_tags,
    tags_to_check,
    theme_precision,
    train_heads_from_gold,
    train_model,
)
from kb.services.users import principal_named
from nlp.embeddings import bundled_sentence_embedder
from nlp.evaluate import (
    evaluate_documents,
    evaluate_tagger,
    load_document_gold,
    load_gold,
    prepare_documents,
    score_tagger_on_documents,
)
from nlp.head_training import VectorCache, labelled_units
from nlp.training_data import load_training_passages

tags_app = typer.Typer(
    help="Review, confirm and reject suggested theme tags.", no_args_is_help=True
)
eval_app = typer.Typer(help="Measure quality against labelled data.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (a stable contract).")]


def _stdin_document() -> ExtractedDocument:
    text = sys.stdin.read().replace("\r\n", "\n")
    return ExtractedDocument(
        path=Path("-"), format="text", text=text, sha256=sha256_bytes(text.encode())
    )


def document_themes(doc: ExtractedDocument) -> list[dict[str, Any]]:
    """Document-level themes with evidence offsets into the document's canonical text."""
    spans = [p for section in segment(doc) for p in section.passages]
    results = get_tagger().tag_many([p.text for p in spans])
    themes: dict[str, dict[str, Any]] = {}
    for span, tags in zip(spans, results, strict=True):
        for tag in tags:
            entry = themes.setdefault(
                tag.theme_id,
                {"id": tag.theme_id, "label": tag.label, "confidence": 0.0, "evidence": []},
            )
            entry["confidence"] = max(entry["confidence"], round(float(tag.confidence), 4))
            entry["evidence"] += [
                {"text": e.text, "start": span.start + e.start, "end": span.start + e.end}
                for e in tag.evidence
            ]
    return sorted(themes.values(), key=lambda t: (-t["confidence"], t["id"]))


def tag(
    paths: Annotated[list[str], typer.Argument(help="Documents to tag, or - for stdin.")],
    json_: JsonFlag = False,
) -> None:
    """Tag documents (or text on stdin) without storing them; one JSON line per input."""
    failed = False
    for name in paths:
        try:
            doc = _stdin_document() if name == "-" else read_document(Path(name))
        except ReaderError as exc:
            console.print(f"[red]failed[/red] {shown(exc)}", highlight=False)
            failed = True
            continue
        themes = document_themes(doc)
        if json_:
            print_json({"source": name, "themes": themes})
            continue
        Console().print(f"[bold]{name}[/bold]")
        for theme in themes:
            first = theme["evidence"][0]["text"] if theme["evidence"] else ""
            Console().print(
                f"  {theme['id']:28} {theme['confidence']:.2f}  {first[:90]}",
                markup=False,
                highlight=False,
            )
    if failed:
        raise typer.Exit(1)


@eval_app.command("tagging")
def eval_tagging(
    gold: Annotated[
        Path,
        typer.Argument(help="JSONL: id, text, themes per line (with --documents: file, themes)."),
    ],
    method: Annotated[
        str,
        typer.Option(
            help="rules, model (alone) or combined (rules + the learned model / theme heads)."
        ),
    ] = "combined",
    folds: Annotated[
        int,
        typer.Option(
            help="k for cross-validating what learns from GOLD; with --documents, 0 scores the "
            "installed tagger as `kb tag` runs it."
        ),
    ] = 5,
    documents: Annotated[
        bool,
        typer.Option(
            "--documents",
            help="GOLD labels whole documents (file, themes, why, hard_negatives); files are "
            "found next to GOLD or in the folder named like it.",
        ),
    ] = False,
    json_: JsonFlag = False,
) -> None:
    """Per-theme precision, recall, F1 and support, micro and macro averages.

    With a learned model (model / combined) the figures are k-fold cross-validated: the model
    is trained on the bundled training passages plus k-1 folds of GOLD and scored on the
    held-out fold, so nothing is ever scored by a model that saw it. With --documents a
    document carries a theme when any passage does, folds are whole documents, and a confusion
    report lists every false positive with its evidence sentence and every miss with the best
    candidate sentence.
    """
    if method not in ("rules", "model", "combined"):
        raise fail("--method must be rules, model or combined")
    if documents:
        result = _eval_documents(gold, method, folds)
        if json_:
            print_json(result)
            return
        _print_scores(result["scores"], f"{gold} ({method}, documents)")
        _print_confusion(result["confusion"])
        return
    try:
        items = load_gold(gold)
    except (OSError, ValueError) as exc:
        raise fail(f"{gold}: {exc}") from exc
    scores = evaluate_tagger(items, taxonomy=get_tagger().taxonomy, method=method, folds=folds)
    if json_:
        print_json(scores)
        return
    _print_scores(scores, f"{gold} ({method})")


def _eval_documents(gold: Path, method: str, folds: int) -> dict[str, Any]:
    """Document-level evaluation (see :func:`nlp.evaluate.evaluate_documents`)."""
    try:
        gold_docs = load_document_gold(gold)
    except (OSError, ValueError) as exc:
        raise fail(f"{gold}: {exc}") from exc
    tagger = get_tagger()
    try:
        prepared = prepare_documents(gold_docs, passages_of, tagger)
    except ReaderError as exc:
        raise fail(f"{gold}: {shown(exc)}") from exc
    heads_method = "heads" if method == "model" else method
    theme_ids = [t.id for t in tagger.taxonomy]
    if folds >= 2 and method != "rules":
        vectors = VectorCache(bundled_sentence_embedder())
        base = labelled_units([(e.text, e.positives) for e in load_training_passages()], theme_ids)
        evaluation = evaluate_documents(
            prepared,
            theme_ids,
            method=heads_method,
            folds=folds,
            vectors=vectors,
            base_units=base,
        )
    else:
        evaluation = score_tagger_on_documents(prepared, gold_docs, passages_of, tagger)
    return {
        "method": method,
        "folds": folds if method != "rules" else 0,
        "documents": len(gold_docs),
        "scores": evaluation.scores,
        "hard_negative_errors": evaluation.hard_negative_errors,
        "confusion": evaluation.confusion,
    }


def _print_scores(scores: dict[str, Any], title: str) -> None:
    table = Table("theme", "precision", "recall", "f1", "support", title=title)
    for theme_id, row in sorted(scores["themes"].items()):
        table.add_row(
            theme_id, *(f"{row[k]:.2f}" for k in ("precision", "recall", "f1")), str(row["support"])
        )
    for avg in ("micro", "macro"):
        table.add_row(avg, *(f"{scores[avg][k]:.2f}" for k in ("precision", "recall", "f1")), "")
    Console().print(table)


def _print_confusion(confusion: list[dict[str, Any]]) -> None:
    out = Console()
    for row in confusion:
        out.print(f"[bold]{row['file']}[/bold]")
        for fp in row["false_positives"]:
            out.print(f"  + {fp['theme']:26} {fp['evidence'][:110]}", markup=False)
        for miss in row["misses"]:
            shown_text = miss["candidate"] or ""
            out.print(f"  - {miss['theme']:26} {shown_text[:110]}", markup=False)


@tags_app.command("queue")
def tags_queue(
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many suggestions.")] = 20,
    json_: JsonFlag = False,
) -> None:
    """Suggested tags most worth a decision (confidence nearest 0.5 first), with each theme's
    precision measured from the confirmations and rejections so far."""
    with session_scope(ready_engine()) as session:
        principal = Principal.system()
        tags = tags_to_check(session, principal=principal, limit=limit)
        precision = theme_precision(session, principal=principal)
    rows = [t.model_dump(mode="json") for t in tags]
    if json_:
        print_json({"tags": rows, "precision": precision})
        return
    table = Table("id", "theme", "confidence", "theme precision", "evidence")
    for row in rows:
        measured = precision.get(row["theme_id"], {}).get("precision")
        table.add_row(
            str(row["id"]),
            row["theme_id"],
            f"{row['confidence']:.2f}",
            "-" if measured is None else f"{measured:.2f}",
            row["evidence"][0]["text"][:70] if row["evidence"] else "",
        )
    Console().print(table)


@tags_app.command("list")
def tags_list(review_id: int, json_: JsonFlag = False) -> None:
    """Tags on a review's passages, with status and evidence."""
    with session_scope(ready_engine()) as session:
        try:
            tags = review_tags(session, principal=Principal.system(), review_id=review_id)
        except NotFound as exc:
            raise fail(str(exc)) from exc
    rows = [t.model_dump(mode="json") for t in tags]
    if json_:
        print_json(rows)
        return
    table = Table("id", "theme", "status", "confidence", "method", "evidence")
    for row in rows:
        evidence = row["evidence"][0]["text"][:70] if row["evidence"] else ""
        table.add_row(
            str(row["id"]),
            row["theme_id"],
            row["status"],
            f"{row['confidence']:.2f}",
            row["method"],
            evidence,
        )
    Console().print(table)


def _decide(
    tag_id: int,
    status: TagStatus,
    user: str,
    as_user: str | None,
    version: int | None,
    json_: bool,
) -> None:
    """The operator decides as an admin (recorded under ``--user``); ``--as-user`` applies
    that user's rule exactly as the API would (a viewer is refused, a hidden tag not found)."""
    with session_scope(ready_engine()) as session:
        try:
            principal = (
                principal_named(session, as_user)
                if as_user
                else Principal(username=user, role=Principal.system().role)
            )
            result = decide_tag(
                session, principal=principal, tag_id=tag_id, status=status, expected_version=version
            )
        except (NotFound, Conflict, Forbidden) as exc:
            raise fail(str(exc)) from exc
    if json_:
        print_json(result.model_dump(mode="json"))
    else:
        console.print(f"tag {tag_id} ({result.theme_id}) {status.value} by {principal.username}")


UserOpt = Annotated[str, typer.Option("--user", help="Who decided (kept with the tag).")]
AsUserOpt = Annotated[
    str | None, typer.Option("--as-user", help="Decide as this user, under their rules.")
]
VersionOpt = Annotated[int | None, typer.Option(help="Refuse if the tag changed since.")]


@tags_app.command("confirm")
def tags_confirm(
    tag_id: int,
    user: UserOpt = "cli",
    as_user: AsUserOpt = None,
    version: VersionOpt = None,
    json_: JsonFlag = False,
) -> None:
    """Confirm a suggested tag (kept through re-tagging; a positive label for training)."""
    _decide(tag_id, TagStatus.CONFIRMED, user, as_user, version, json_)


@tags_app.command("reject")
def tags_reject(
    tag_id: int,
    user: UserOpt = "cli",
    as_user: AsUserOpt = None,
    version: VersionOpt = None,
    json_: JsonFlag = False,
) -> None:
    """Reject a suggested tag (never suggested again; a negative label for training)."""
    _decide(tag_id, TagStatus.REJECTED, user, as_user, version, json_)


def retag(
    stale_only: Annotated[
        bool, typer.Option(help="Only passages tagged by an older taxonomy or model.")
    ] = False,
) -> None:
    """Re-run tagging over the whole corpus (after the taxonomy or the model changed)."""
    engine = ready_engine()
    with progress_bar("re-tagging") as bar:
        task = bar.add_task("re-tagging", total=None, item="")
        count = retag_all(
            engine,
            only_stale=stale_only,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(f"{count} passages re-tagged")


def train(
    force: Annotated[bool, typer.Option(help="Retrain even if labels are unchanged.")] = False,
    gold: Annotated[
        Path | None,
        typer.Option(
            help="Document-level gold JSONL (file, themes, why, hard_negatives): also train the "
            "theme heads over sentence embeddings and keep them in the model folder."
        ),
    ] = None,
    passage_gold: Annotated[
        Path | None, typer.Option(help="Passage-level gold JSONL (id, text, themes) for the heads.")
    ] = None,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Also report, per theme, cross-validated P/R/F1 on people's decisions before "
            "and after the model learned from them.",
        ),
    ] = False,
    json_: JsonFlag = False,
) -> None:
    """Retrain the learned theme model from bundled labels plus confirmed / rejected tags."""
    engine = ready_engine()
    result = train_model(engine, force=force)
    if report:
        result["decision_report"] = decision_report(engine)
    if gold is not None:
        try:
            result["heads"] = train_heads_from_gold(engine, gold, passage_gold=passage_gold)
        except (OSError, ValueError, ReaderError) as exc:
            raise fail(f"{gold}: {exc}") from exc
    if json_:
        print_json(result)
    else:
        console.print(result)
