"""Property-based fuzzing of every JSON API operation with schemathesis, in process.

The schema is the one the app serves (GET /api/openapi.json, behind login), loaded through the
ASGI transport; every operation is called as the admin over HTTP Basic (no cookie, so no CSRF
token is needed) with a bounded, derandomised number of generated cases, valid and invalid.

What must hold for every case:

* no 5xx (``not_a_server_error``): malformed input is the caller's fault, so it gets a 4xx with
  a JSON ``{"detail": ...}`` message;
* every response with a documented schema conforms to it (``response_schema_conformance``) and
  has the documented content type (``content_type_conformance``). A 422 is the exception:
  FastAPI documents its default ``[{loc, msg, type}]`` list, while this app answers every error
  as ``{"detail": "<message>"}`` (plus ``errors``: ``[{loc, msg}]``), which is checked instead;
* every 4xx JSON answer carries a non-empty ``detail`` message.

Not checked: status-code conformance (400 / 401 / 403 / 404 / 422 are answered by every
operation but FastAPI documents only some of them per route) and ``negative_data_rejection``
(FastAPI's lax parsing accepts ``review_id=4.0`` as 4 and the last of repeated parameters, so
some "invalid" requests rightly succeed). Negative cases still must never give a 5xx.

Excluded: ``POST /api/documents`` (upload). It ingests every generated file through the full
reader / segmenter / tagger pipeline, which is slow and already fuzzed on hostile files by
tests/test_hostile_input.py and tests/test_api_upload.py. Every other operation is fuzzed,
including the deleting ones: the world is rebuilt for this test alone, so deletions of its
actions and briefings only shrink what later cases can hit.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, BaseSchema, GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.web_support import PASSWORD, World, api_csrf

pytest_plugins = ["tests.web_fixtures"]

ADMIN = ("admin", PASSWORD)
MAX_EXAMPLES = 15  # per operation and generation mode: the whole file stays near a minute
EXCLUDED = {("POST", "/api/documents")}
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
]
CHECKS_422 = [c for c in CHECKS if c is not response_schema_conformance]


@pytest.fixture
def api_schema(web_app: FastAPI, web_world: World) -> BaseSchema:
    """The served schema, fetched as the admin (it is behind login like everything else)."""
    return schemathesis.openapi.from_asgi("/api/openapi.json", web_app, auth=ADMIN)


def _fuzz(operation: APIOperation, mode: GenerationMode) -> list[str]:
    """Run up to MAX_EXAMPLES generated cases of ``operation``; the failures, described."""
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report, do not minimise
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        where = f"{operation.label} [{mode}] {case.as_curl_command()}"
        try:
            response = case.call(auth=ADMIN, timeout=120)  # 2 shared cores: be patient
        except Exception as exc:  # noqa: BLE001 - the in-process app raised: a 500 on a server
            failures.append(f"{where}\n  -> raised {type(exc).__name__}: {exc}"[:2000])
            return
        # FastAPI documents 422 as its default [{loc, msg, type}] list; this app answers every
        # error as {"detail": "<message>"} (plus "errors" for 422), checked below instead.
        checks = CHECKS if response.status_code != 422 else CHECKS_422
        try:
            case.validate_response(response, checks=checks)
        except (Failure, FailureGroup) as exc:
            found = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
            why = "; ".join(f"{f.title}: {f.message}" for f in found)
            failures.append(f"{where}\n  -> {response.status_code}: {why}"[:2000])
            return
        content_type = (response.headers.get("content-type") or [""])[0]
        if response.status_code >= 400 and content_type.startswith("application/json"):
            body = response.json()
            detail = body.get("detail")
            if not (isinstance(detail, str) and detail):
                failures.append(f"{where}\n  -> {response.status_code} without a message")
            if response.status_code == 422 and "errors" in body:
                assert all({"loc", "msg"} <= set(e) for e in body["errors"]), body

    try:
        run()
    except Unsatisfiable:  # nothing about this operation can be invalid (no inputs)
        assert mode == GenerationMode.NEGATIVE, operation.label
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_operations_never_fail_on_generated_input(
    api_schema: BaseSchema, mode: GenerationMode
) -> None:
    """No generated request, valid or not, makes the server fail or break its schema."""
    fuzzed, failures = [], []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in EXCLUDED:
            continue
        fuzzed.append(operation.label)
        failures += _fuzz(operation, mode)
    assert len(fuzzed) >= 20, fuzzed  # the schema really lists the API
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures[:30])


def test_what_the_fuzzer_found_is_a_clear_4xx(clients, web_world: World) -> None:
    """Regressions for the server errors fuzzing found, each now a 4xx with a message."""
    admin = clients["admin"]
    headers = api_csrf(admin)
    huge = 2**70
    for response in (
        admin.get(f"/api/reviews/{huge}"),
        admin.get(f"/api/briefings?review_id={huge}"),
        admin.patch(f"/api/briefings/{huge}", json={"version": 1}, headers=headers),
        admin.post(f"/api/tags/{huge}/confirm", json={"version": huge}, headers=headers),
    ):
        assert response.status_code in (200, 404, 422), response.text
        if response.status_code != 200:
            assert response.json()["detail"], response.text
    # SQLite cannot bind the number (OverflowError), PostgreSQL refuses it (DataError): both 422.
    lookup = admin.get(f"/api/reviews/{huge}")
    assert lookup.status_code == 422 and "out of range" in lookup.json()["detail"]
    existing = admin.get(f"/api/actions/{web_world.hidden_action}").json()["ref"]
    duplicate = admin.post(
        "/api/actions", json={"ref": existing, "description": "again"}, headers=headers
    )
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["detail"]
    orphan = admin.post(
        "/api/actions",
        json={"ref": "NEW-1", "description": "x", "partnership_id": 99999},
        headers=headers,
    )
    assert orphan.status_code == 400 and "unknown partnership" in orphan.json()["detail"]
    control = admin.post(
        "/api/actions", json={"ref": "CTL-1", "description": "bell \x07 here"}, headers=headers
    )
    assert control.status_code == 201, control.text
    export = admin.get("/api/tracker/export.xlsx")
    assert export.status_code == 200 and export.content[:2] == b"PK"
