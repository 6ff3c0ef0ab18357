"""The API attack suite: schemathesis cases from the portal's own OpenAPI, sent as each role with a real session.

Shared by the short run in ``make test`` (tests/web/test_schemathesis.py) and the long one in ``make proof``
(``RENKEI_ATTACK_EXAMPLES`` raises the number of cases per operation and mode). Each case goes through the app
in process on the enrolled terminal (tests/web/support.py), with the role's session cookie and CSRF header, and
must pass:

- schemathesis' own checks: no 5xx, a declared status and content type, a body that conforms to the response
  schema, and invalid input (negative cases) rejected with a 4xx;
- :func:`one_error_shape`: every error is ``{"error": {code, message_ja, message_en, request_id}}``
  (docs/web.md "One error shape") and its ``request_id`` is the ``X-Request-ID`` header;
- :func:`zoned_date_times`: every date-time in a body carries its zone (``Z`` or ``±hh:mm``);
- :func:`requires_authentication`: the same request without the session cookie is refused with 401
  ``unauthenticated`` unless the routes section of authz_matrix.yaml declares the route public.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from ruamel.yaml import YAML
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from renkei.hub.access.people import Role
from renkei.web.cookies import SESSION_COOKIE
from tests.web.support import ORIGIN, Person, WebWorld

EXAMPLES_ENV = "RENKEI_ATTACK_EXAMPLES"
ROUTES: dict[str, dict[str, Any]] = YAML(typ="safe").load(
    (resources.files("renkei.hub.access") / "authz_matrix.yaml").read_text(encoding="utf-8")
)["routes"]
ROLES = tuple(role.value for role in Role)
ERROR_FIELDS = {"code", "message_ja", "message_en", "request_id"}
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(?P<zone>Z|[+-]\d\d:?\d\d)?$")
SCHEMA_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def examples(default: int) -> int:
    return int(os.environ.get(EXAMPLES_ENV, default))


def has_input(schema: Any, route: str) -> bool:
    """Whether the operation takes anything a negative case could get wrong (parameters or a body)."""
    method, path = route.split(" ", 1)
    definition = schema.raw_schema["paths"][path][method.lower()]
    return bool(definition.get("parameters") or definition.get("requestBody"))


def api_operations() -> list[str]:
    """Every API route of the matrix as "METHOD /path" (the OpenAPI document itself is not in its own schema)."""
    return [key for key in ROUTES if key.split(" ", 1)[1].startswith("/api/") and "openapi.json" not in key]


class AttackFindingError(AssertionError):
    """What the attack suite found wrong with one response."""


def one_error_shape(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError as error:
        raise AttackFindingError(
            f"{response.status_code} without a JSON error body: {response.text[:200]!r}"
        ) from error
    if not (isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], dict)):
        raise AttackFindingError(f"{response.status_code} not in the one error shape: {body!r}")
    if set(body["error"]) != ERROR_FIELDS or not all(
        isinstance(v, str) and v for v in body["error"].values()
    ):
        raise AttackFindingError(f"{response.status_code} error fields: {body!r}")
    if body["error"]["request_id"] != response.headers.get("x-request-id"):
        raise AttackFindingError("the error's request_id is not the X-Request-ID header")


def zoned_date_times(response: httpx.Response) -> None:
    if "json" not in response.headers.get("content-type", "") or not response.content:
        return

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for number, item in enumerate(value):
                walk(item, f"{where}[{number}]")
        elif isinstance(value, str):
            found = DATE_TIME.match(value)
            if found and not found["zone"]:
                raise AttackFindingError(f"a date-time without a zone at {where}: {value!r}")

    walk(response.json(), "$")


@dataclass
class Attacker:
    """One role's browser: a session made as a completed login makes one, renewed when a case ended it."""

    world: WebWorld
    person: Person
    client: httpx.Client
    token: str = ""
    csrf: str = ""
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def renew(self) -> None:
        self.token, self.csrf = self.world.open_session(self.person)

    def send(self, case: Any, *, signed_in: bool = True) -> httpx.Response:
        if not self.token:
            self.renew()
        kwargs = case.as_transport_kwargs(base_url=ORIGIN)
        headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "user-agent"}
        headers["X-CSRF-Token"] = self.csrf
        body: dict[str, Any] = {}
        if "json" in kwargs:
            body["content"] = json.dumps(kwargs["json"]).encode()
            headers.setdefault("Content-Type", "application/json")
        elif kwargs.get("data") is not None:
            data = kwargs["data"]
            body["content"] = data if isinstance(data, bytes | str) else json.dumps(data).encode()
        self.client.cookies.clear()
        if signed_in:
            self.client.cookies.set(SESSION_COOKIE, self.token)
        response = self.client.request(
            kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers, **body
        )
        if not hasattr(response, "_elapsed"):  # the in-process transport never times it; schemathesis asks
            response.elapsed = dt.timedelta(0)
        self.sent += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if signed_in and (case.path.endswith("/logout") or response.status_code == 401):
            self.renew()  # the case ended the session (logout, a password change …): the next one needs a new one
        return response


def attack(schema: Any, attacker: Attacker, route: str, mode: GenerationMode, count: int) -> None:
    """``count`` cases of ``mode`` for ``route``, each checked as the module docstring says."""
    method, path = route.split(" ", 1)
    operation = schema[path][method]
    public = ROUTES[route]["guard"] == "public"
    checks = [*SCHEMA_CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else SCHEMA_CHECKS

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = attacker.send(case)
        case.validate_response(response, checks=checks)
        one_error_shape(response)
        zoned_date_times(response)
        if not public:
            anonymous = attacker.send(case, signed_in=False)
            one_error_shape(anonymous)
            code = anonymous.json()["error"]["code"] if anonymous.status_code >= 400 else ""
            if (anonymous.status_code, code) != (401, "unauthenticated") and anonymous.status_code not in (
                404,
                405,
                413,
            ):  # routing and size limits answer before the guard
                raise AttackFindingError(f"{route} without a session answered {anonymous.status_code} {code}")

    run()


def load_schema(world: WebWorld, person: Person, client: httpx.Client) -> Any:
    """The OpenAPI document as a signed-in user fetches it."""
    token, _ = world.open_session(person)
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, token)
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200, response.text
    return schemathesis.openapi.from_dict(response.json())
