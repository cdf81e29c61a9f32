"""The authorization matrix: every state-changing route × five callers, against SECURITY.md.

The policy table lives in SECURITY.md ("Policy table: every state-changing route"); this test
parses it, so the written policy and the behaviour cannot drift apart. For each row a fresh world
(tests/web_support.py: Fernhill with a published and an embargoed review, a restricted briefing,
an action answering only the embargoed review) gets the request from every caller: refusals
first, each followed by a check that not one row of any table changed, then the callers allowed
to make the change. A route missing from the table fails the test too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from kb.models import Action, Briefing, Role, ThemeTag
from kb.services.access import Principal
from kb.services.briefings import build_briefing, save_briefing
from kb.services.reviews import get_review
from tests.web_support import World, api_csrf, csrf_from

pytest_plugins = ["tests.web_fixtures"]

SECURITY = (Path(__file__).parent.parent / "SECURITY.md").read_text(encoding="utf-8")
CALLERS = ("anonymous", "viewer", "panel (own)", "panel (other)", "admin")
USER_OF = {
    "viewer": "viewer",
    "panel (own)": "panel-a",
    "panel (other)": "panel-b",
    "admin": "admin",
}
REFUSED = {400, 401, 403, 404}
UPLOAD = b"Child P\n\nBackground\n\nA same-named file with other content.\n"


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    target: str
    expected: dict[str, int]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} [{self.target}]"

    @property
    def destructive(self) -> bool:
        return self.method == "DELETE" or self.path.endswith("/delete")


def policy_rows() -> list[Row]:
    section = SECURITY.split("## Policy table", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = re.match(r"^\| `(\w+) (\S+)` \| ([^|]+) \|(.*)\|$", line)
        if not match:
            continue
        codes = [int(c) for c in match.group(4).split("|")]
        assert len(codes) == len(CALLERS), line
        rows.append(
            Row(match[1], match[2], match[3].strip(), dict(zip(CALLERS, codes, strict=True)))
        )
    assert len(rows) >= 20
    return rows


ROWS = policy_rows()


def _app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route that may change state, wherever it was included."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if hasattr(route, "original_router"):  # an included router
                context = getattr(route, "include_context", None)
                walk(route.original_router.routes, prefix + (getattr(context, "prefix", "") or ""))
            elif getattr(route, "methods", None):
                for method in set(route.methods) - {"GET", "HEAD", "OPTIONS"}:
                    found.add((method, prefix + route.path))
            elif hasattr(route, "routes") and not isinstance(route.routes, property):
                walk(list(route.routes), prefix + getattr(route, "path", ""))

    walk(app.router.routes, "")
    return found


PRECEDENT = ("upload", "docx")


def test_every_state_changing_route_is_in_the_policy_table(web_app: FastAPI) -> None:
    exempt = {("POST", "/login"), ("POST", "/logout"), ("POST", "/account/password")}
    # Precedent answers are POSTs for their long bodies but store nothing (SECURITY.md).
    exempt |= {("POST", p) for p in ("/api/precedent", "/precedent")}
    exempt |= {("POST", f"{p}/{s}") for p in ("/api/precedent", "/precedent") for s in PRECEDENT}
    listed = {(r.method, re.sub(r"\{\w+\}", "{}", r.path)) for r in ROWS}
    routes = {(m, re.sub(r"\{\w+\}", "{}", p)) for m, p in _app_routes(web_app)} - exempt
    assert routes, "no routes found"
    assert routes - listed == set(), f"routes missing from SECURITY.md's table: {routes - listed}"


# --------------------------------------------------------------------------- the world's objects


@dataclass
class Objects:
    world: World
    published_briefing: int
    published_action: int


def _objects(engine: Engine, world: World) -> Objects:
    with Session(engine) as session:
        admin = Principal(username="admin", role=Role.ADMIN)
        draft = build_briefing(session, principal=admin, theme_id="under-1s")
        briefing = save_briefing(session, principal=admin, draft=draft)
        review = get_review(session, principal=admin, review_id=world.published_review)
        action = Action(
            ref="PUB-1", description="Shared action", partnership_id=review.partnership_id
        )
        session.add(action)
        session.commit()
        return Objects(world, briefing.id, action.id)  # type: ignore[arg-type]


def _target_id(objects: Objects, target: str) -> int | None:
    w = objects.world
    return {
        "embargoed review": w.hidden_review,
        "published review": w.published_review,
        "embargoed finding": w.hidden_finding,
        "embargoed recommendation": w.hidden_recommendation,
        "embargoed tag": w.hidden_tags[0],
        "published tag": w.published_tags[0],
        "restricted briefing": w.hidden_briefing,
        "published briefing": objects.published_briefing,
        "embargoed action": w.hidden_action,
        "published action": objects.published_action,
    }.get(target)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the audit log included): a refusal must change none."""
    with engine.connect() as conn:
        return {
            table.name: sorted(map(tuple, conn.execute(sa_select(table)).all()), key=repr)
            for table in SQLModel.metadata.sorted_tables
        }


def _version(engine: Engine, model: Any, row_id: int | None) -> int:
    with Session(engine) as session:
        row = session.get(model, row_id)
        return row.version_id if row is not None else 1


Send = Callable[[TestClient, str, dict[str, str]], Any]


def _sender(row: Row, objects: Objects, engine: Engine) -> Send:
    """How to make this row's request as a given client (bodies read current versions)."""
    oid = _target_id(objects, row.target)
    url = row.path.replace("{id}", str(oid)).replace("{passage}", str(_passage_of(objects, row)))
    counter = iter(range(1, 100))

    def api(client: TestClient, caller: str, headers: dict[str, str]) -> Any:
        n = next(counter)
        if row.path.startswith("/api/documents"):
            files = [("files", ("a.md", UPLOAD + str(n).encode(), "text/markdown"))]
            return client.post(url, files=files, headers=headers)
        if row.path == "/api/tracker/import":
            csv_body = f"Ref,Action\nPUB-1,Changed by import {n}\n".encode()
            files = [("files", ("actions.csv", csv_body, "text/csv"))]
            return client.post(url, files=files, headers=headers)
        body: dict[str, Any]
        if url.endswith("/type"):
            body = {"type": "lcspr" if n % 2 else "scr"}
        elif url.endswith("/role"):
            body = {"role": "finding" if n % 2 else "recommendation"}
        elif url.endswith("/case") and row.method == "POST":
            body = {"other_review_id": objects.world.published_review}
        elif url.endswith("/case"):
            return client.delete(url, headers=headers)
        elif "/status" in url:
            body = {"status": "published" if "embargoed" in row.target else "embargoed"}
        elif "/findings/" in url or "/recommendations/" in url:
            body = {"text": f"Corrected by {caller} {n}"}
        elif "/tags/" in url:
            body = {"version": _version(engine, ThemeTag, oid)}
        elif url == "/api/briefings":
            body = {"review_id": oid, "include_restricted": True}
        elif "/briefings/" in url:
            version = _version(engine, Briefing, oid)
            if row.method == "DELETE":
                return client.delete(url, params={"version": version}, headers=headers)
            body = {"version": version, "title": f"Edited by {caller} {n}"}
        elif url == "/api/actions":
            partnership = _partnership_of(engine, objects)
            body = {"ref": f"NEW-{n}", "description": "New action", "partnership_id": partnership}
        elif "/actions/" in url:
            version = _version(engine, Action, oid)
            if row.method == "DELETE":
                return client.delete(url, params={"version": version}, headers=headers)
            body = {"version": version, "status": "in_progress"}
        else:
            raise AssertionError(f"no request body for {row.id}")
        return client.request(row.method, url, json=body, headers=headers)

    def form(client: TestClient, caller: str, token: dict[str, str]) -> Any:
        data: dict[str, Any] = dict(token)
        if url.endswith("/type"):
            data["kind"] = "lcspr"
        elif url.endswith("/role"):
            data["role"] = "finding"
        elif url.endswith("/case/link"):
            data["other_review_id"] = str(objects.world.published_review)
        elif url.endswith("/case/unlink"):
            pass
        elif "/tags/" in url:
            data["version"] = _version(engine, ThemeTag, oid)
        elif url == "/briefings":
            data.update(review_id=str(oid), include_restricted="true")
        elif url.endswith("/edit"):
            data.update(version=_version(engine, Briefing, oid), title=f"Edited by {caller}")
            data["heading"] = [f"Heading {i}" for i in range(1, 8)]
        elif url.endswith("/delete"):
            data["version"] = _version(engine, Briefing, oid)
        elif "/tracker/actions/" in url:
            data.update(version=_version(engine, Action, oid), status="in_progress")
        else:
            raise AssertionError(f"no form body for {row.id}")
        return client.post(url, data=data, follow_redirects=False)

    return api if row.path.startswith("/api/") else form


def _passage_of(objects: Objects, row: Row) -> int:
    """A passage of the row's review (the role routes name one)."""
    w = objects.world
    return (w.hidden_passages if "embargoed" in row.target else w.published_passages)[0]


def _partnership_of(engine: Engine, objects: Objects) -> int | None:
    with Session(engine) as session:
        return session.exec(
            select(Action.partnership_id).where(Action.id == objects.published_action)
        ).one()


def _credentials(client: TestClient | None, row: Row) -> dict[str, str]:
    if client is None:
        return {}
    if row.path.startswith("/api/"):
        return api_csrf(client)
    return {"csrf_token": csrf_from(client.get("/briefings").text)}


def _check(row: Row, caller: str, response: Any) -> None:
    expected = row.expected[caller]
    assert response.status_code == expected, (row.id, caller, response.status_code, response.text)
    if caller == "anonymous" and expected == 303:
        assert response.headers["location"].startswith("/login")


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_policy_row(
    row: Row, web_app: FastAPI, clients: dict[str, TestClient], web_world: World, engine
) -> None:
    objects = _objects(engine, web_world)
    send = _sender(row, objects, engine)
    anonymous = TestClient(web_app)
    client_of = {caller: clients[user] for caller, user in USER_OF.items()}
    client_of["anonymous"] = anonymous
    refusals = [c for c in CALLERS if row.expected[c] in REFUSED or c == "anonymous"]
    allowed = [c for c in CALLERS if c not in refusals]
    for caller in refusals:
        credentials = _credentials(None if caller == "anonymous" else client_of[caller], row)
        before = snapshot(engine)
        _check(row, caller, send(client_of[caller], caller, credentials))
        assert snapshot(engine) == before, f"{row.id}: refused for {caller} but data changed"
    # A destructive change can be shown once per world; the others get their own below.
    for caller in allowed[:1] if row.destructive else allowed:
        _check(row, caller, send(client_of[caller], caller, _credentials(client_of[caller], row)))
    anonymous.close()


DESTRUCTIVE_EXTRA = [
    (row, caller)
    for row in ROWS
    if row.destructive
    for caller in [c for c in CALLERS if row.expected[c] not in REFUSED and c != "anonymous"][1:]
]


@pytest.mark.parametrize(
    ("row", "caller"), DESTRUCTIVE_EXTRA, ids=[f"{r.id} as {c}" for r, c in DESTRUCTIVE_EXTRA]
)
def test_destructive_change_by_each_allowed_caller(
    row: Row, caller: str, clients: dict[str, TestClient], web_world: World, engine
) -> None:
    objects = _objects(engine, web_world)
    client = clients[USER_OF[caller]]
    _check(row, caller, _sender(row, objects, engine)(client, caller, _credentials(client, row)))
