"""The short run of the API attack suite (tests/web/attack.py): every API operation × role × positive and
negative cases. ``make proof`` runs the same with many more cases per cell (RENKEI_ATTACK_EXAMPLES)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from schemathesis.generation import GenerationMode

from renkei.hub.access.people import Role
from renkei.web.cookies import SESSION_COOKIE
from tests.web.attack import ROLES, Attacker, api_operations, attack, examples, has_input, load_schema
from tests.web.support import OWN, WebWorld, world_on


@dataclass
class Arena:
    world: WebWorld
    schema: Any
    attackers: dict[str, Attacker]


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    directory: Path = tmp_path_factory.mktemp("attack")
    with world_on(f"sqlite:///{directory / 'catalog.db'}", directory) as world:
        people = {role.value: world.person(role, OWN) for role in Role}
        clients = {role: world.client(address=f"10.0.1.{n}") for n, role in enumerate(ROLES, 1)}
        try:
            schema = load_schema(world, people["admin"], clients["admin"])
            yield Arena(world, schema, {r: Attacker(world, people[r], clients[r]) for r in ROLES})
        finally:
            for client in clients.values():
                client.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", api_operations())
def test_attack(arena: Arena, route: str, role: str, mode: GenerationMode) -> None:
    if mode is GenerationMode.NEGATIVE and not has_input(arena.schema, route):
        return  # nothing to get wrong: the positive cases cover it
    attack(arena.schema, arena.attackers[role], route, mode, examples(2))


def test_the_suite_covers_every_operation_of_the_schema(arena: Arena) -> None:
    served = {f"{op.method.upper()} {op.path}" for op in (r.ok() for r in arena.schema.get_all_operations())}
    assert served == set(api_operations())


@pytest.mark.parametrize("body", [b"{not json", b'{"sql": 1}'], ids=["malformed", "invalid"])
def test_a_body_is_not_validated_before_the_caller_is_known(arena: Arena, body: bytes) -> None:
    """Regression: FastAPI parsed the body before the guard ran, so a caller without a session heard 422 and
    which fields were wrong; now the guard answers first, and audits as it always does."""
    client = arena.attackers["analyst"].client
    client.cookies.clear()
    before = arena.world.audit_size()
    response = client.post("/api/v1/query", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
    client.cookies.set(SESSION_COOKIE, "made-up-token")
    response = client.post("/api/v1/query", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert [e.action for e in arena.world.entries(before)] == ["session.rejected"]
