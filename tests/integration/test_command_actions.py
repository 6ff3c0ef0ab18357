"""Each console command of the CLI is decided under exactly the actions authz_matrix.yaml names for it.

Every console command is run once, as the hub's operator would, on one small hub (a synthetic city, one imported
package, a few users, an application and a grant); the ``authz.decision`` entries it appended to the audit log
are the decisions it made through ``authorize()``, and their ``access`` must be exactly the command's
``actions``. A console command this test does not know how to run fails it, as does a command of the CLI that
the matrix does not list (and test_command_matrix.py holds the list against the CLI).
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from sqlalchemy import func, select
from typer.testing import CliRunner

from renkei.cli import analysis as analysis_cli
from renkei.cli import opendata as opendata_cli
from renkei.cli.main import app
from renkei.clock import SYSTEM_CLOCK, city_today
from renkei.hub.access.applications import (
    Application,
    ApplicationItem,
    ApplicationPart,
    ApplicationState,
    PartState,
)
from renkei.hub.access.authz import Action, Actor
from renkei.hub.access.grants import Grant
from renkei.hub.access.people import User
from renkei.hub.analysis.ledger import Release, ReleaseStatus
from renkei.hub.audit import AuditEntry
from renkei.hub.catalog import Dataset, Snapshot
from renkei.hub.home import Hub
from tests.integration.hub_world import World, make_world
from tests.integration.test_command_matrix import cli_commands

COMMANDS: dict[str, dict[str, Any]] = YAML(typ="safe").load(
    (resources.files("renkei.hub.access") / "authz_matrix.yaml").read_text(encoding="utf-8")
)["commands"]
AS_OF = dt.date(2025, 1, 1)
DEPARTMENT = "市民課"
PASSWORD = "港町の坂道と朝霧の灯台 連携"
CONSOLE_ACTOR = f"cli:{getpass.getuser()}"


@dataclass
class Console:
    """The hub, its home, and what the commands before made (the package, the ids of an application and grant)."""

    world: World
    root: Path
    packages: list[Path]
    application_id: int = 0
    grant_id: int = 0
    release_id: int = 0  # the analyst's query sent to review, then their table
    backed_up: int = 0  # the size of the log before the backup was taken

    @property
    def hub(self) -> Hub:
        return self.world.hub

    @property
    def home(self) -> list[str]:
        return ["--home", str(self.hub.home)]


@dataclass(frozen=True)
class Run:
    """One invocation: its arguments (``--home`` is added), what it reads on stdin, and the hub whose log to read."""

    args: list[str]
    stdin: str | None = None
    home: Path | None = None  # a command that makes another hub (restore, demo): that hub's log …
    since: int = 0  # … from this entry on, but for the entries it shares with the console's hub (a restore)
    # whose decisions count: the console actor's, or those of the user a user command names
    actor: str = CONSOLE_ACTOR


def restore_run(c: Console) -> Run:
    target = c.root / "restored"
    return Run(
        ["restore", "--from", str(c.root / "backup"), "--keys", str(c.hub.home), "--home", str(target)],
        home=target,
        since=c.backed_up,
    )


# How to run each console command; the order is the order they run in (later ones use what earlier ones made).
RUNS: dict[str, Callable[[Console], Run]] = {
    "hub migrate": lambda c: Run(["hub", "migrate"]),
    "import": lambda c: Run(["import", *map(str, c.packages)]),
    "hub add-sender": lambda c: Run(["hub", "add-sender", "--name", "kikan", "--public-key", "A" * 43 + "="]),
    "catalog list": lambda c: Run(["catalog", "list"]),
    "catalog show": lambda c: Run(["catalog", "show", "juki"]),
    "dept add": lambda c: Run(["dept", "add", "新設課"]),
    "dept list": lambda c: Run(["dept", "list"]),
    "user add": lambda c: Run(
        [
            "user",
            "add",
            "sato",
            "--name",
            "佐藤",
            "--role",
            "analyst",
            "--dept",
            DEPARTMENT,
            "--password-stdin",
        ],
        stdin=PASSWORD + "\n",
    ),
    "user list": lambda c: Run(["user", "list"]),
    "user change": lambda c: Run(["user", "change", "sato", "--role", "analyst", "--dept", DEPARTMENT]),
    "user set-password": lambda c: Run(
        ["user", "set-password", "sato", "--password-stdin"], stdin=PASSWORD + "\n"
    ),
    "user totp-enroll": lambda c: Run(["user", "totp-enroll", "sato"]),
    "user card-ticket": lambda c: Run(["user", "card-ticket", "sato"]),
    "user card-revoke": lambda c: Run(["user", "card-revoke", "sato"]),
    "user disable": lambda c: Run(["user", "disable", "sato"]),
    "user enable": lambda c: Run(["user", "enable", "sato"]),
    "terminal enroll": lambda c: Run(["terminal", "enroll", "pc-1", "--out", str(c.root / "pc-1")]),
    "terminal list": lambda c: Run(["terminal", "list"]),
    "terminal revoke": lambda c: Run(["terminal", "revoke", "pc-1"]),
    "quota set": lambda c: Run(["quota", "set", "sato", "--may-download"]),
    "application list": lambda c: Run(["application", "list"]),
    "application show": lambda c: Run(["application", "show", str(c.application_id)]),
    "grant list": lambda c: Run(["grant", "list"]),
    "grant revoke": lambda c: Run(["grant", "revoke", str(c.grant_id), "--reason", "目的外利用の疑い"]),
    "folder acl": lambda c: Run(["folder", "acl", "juki"]),
    "audit tail": lambda c: Run(["audit", "tail", "-n", "3"]),
    "audit verify": lambda c: Run(["audit", "verify"]),
    "audit checkpoint": lambda c: Run(["audit", "checkpoint", "--out", str(c.root / "checkpoint.json")]),
    "audit inspection": lambda c: Run(
        ["audit", "inspection", "--month", f"{city_today(SYSTEM_CLOCK):%Y-%m}"]
    ),
    "vault verify": lambda c: Run(["vault", "verify"]),
    "vault rotate-key": lambda c: Run(["vault", "rotate-key"]),
    "backup": lambda c: Run(["backup", "--to", str(c.root / "backup")]),
    "restore": restore_run,
    "demo": lambda c: Run(
        ["demo", "--dir", str(c.root / "demo"), "--residents", "100", "--years", "1"],
        home=c.root / "demo" / "hub",
    ),
}
ANALYST, STEWARD = "sato", "kimura"
# The login itself is the portal's (tests/integration/test_login.py); here the user is taken as signed in.
TERMINAL = ["--terminal", "pc-2"]


def as_analyst(*args: str) -> Run:
    return Run([*args, "--user", ANALYST, *TERMINAL], actor=ANALYST)


def as_steward(*args: str) -> Run:
    return Run([*args, "--user", STEWARD, *TERMINAL], actor=STEWARD)


# The user commands: an analyst's table, saved and run again, a query sent to review and approved, exported,
# the table previewed and published as open data.
RUNS.update(
    {
        "table": lambda c: as_analyst("table", "--dataset", "juki", "--by", "住所_ward", "--save", "区別"),
        "analysis list": lambda c: as_analyst("analysis", "list"),
        "analysis run": lambda c: as_analyst("analysis", "run", "区別"),
        "query": lambda c: as_analyst(
            "query",
            "SELECT 住所_ward, count(*) AS n FROM juki GROUP BY 住所_ward",
            "--request-review",
            "区別の人数",
        ),
        "review list": lambda c: as_steward("review", "list"),
        "review decide": lambda c: as_steward(
            "review", "decide", str(c.release_id), "--approve", "--comment", "確認"
        ),
        "export": lambda c: as_analyst("export", str(c.release_id), "--out", str(c.root / "table.csv")),
        "opendata preview": lambda c: as_analyst(
            "opendata", "preview", str(c.release_id), "--epsilon", "0.5"
        ),
        "opendata publish": lambda c: as_steward(
            "opendata",
            "publish",
            str(c.release_id),
            "--epsilon",
            "0.5",
            "--out",
            str(c.root / "opendata.csv"),
        ),
    }
)
# What a command needs made first, by other means than the CLI.
BEFORE: dict[str, Callable[[Console], None]] = {}


def run_commands() -> list[str]:
    return [name for name, spec in COMMANDS.items() if spec["guard"] in ("console", "user")]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console")
    world = make_world(root, residents=120, years=1, as_of=AS_OF)
    packages = [world.extract(dataset, AS_OF) for dataset in ("juki", "kaigo")]
    try:
        yield Console(world, root, packages)
    finally:
        world.hub.engine.dispose()


def make_application_and_grant(c: Console, *, dataset: str = "juki", row_level: bool = False) -> None:
    """An approved application of the analyst ``sato`` on the dataset's snapshot, and its grant."""
    today = city_today(SYSTEM_CLOCK)
    now = SYSTEM_CLOCK.now()
    with c.hub.session() as session:
        user = session.scalars(select(User).where(User.login_id == "sato")).one()
        snapshot = session.scalars(select(Snapshot).join(Dataset).where(Dataset.name == dataset)).one()
        part = ApplicationPart(
            department_id=snapshot.dataset.owner_id,
            state=PartState.APPROVED,
            items=[ApplicationItem(snapshot_id=snapshot.id)],
        )
        application = Application(
            applicant_id=user.id,
            purpose="目的",
            outputs="集計表",
            use_start=today,
            use_end=today + dt.timedelta(days=90),
            row_level=row_level,
            state=ApplicationState.APPROVED,
            submitted_at=now,
            applied_on=today,
            created_at=now,
            updated_at=now,
            parts=[part],
        )
        session.add(application)
        session.flush()
        grant = Grant(
            application_id=application.id,
            part_id=part.id,
            user_id=user.id,
            dataset_id=snapshot.dataset_id,
            row_level=row_level,
            valid_from=today,
            valid_until=today + dt.timedelta(days=90),
            issued_at=now,
            snapshots=[snapshot],
        )
        session.add(grant)
        session.commit()
        c.application_id, c.grant_id = application.id, grant.id


def note_log_size(c: Console) -> None:
    c.backed_up = c.hub.audit.size()


def make_steward_and_grant(c: Console) -> None:
    """The owning department's steward, and fresh grants for the analyst (the console's one is revoked): one with
    row-level viewing (個票閲覧), one without, so that a workspace decides snapshot.read_rows and snapshot.read."""
    made = CliRunner().invoke(
        app,
        [
            "user",
            "add",
            STEWARD,
            "--name",
            "木村",
            "--role",
            "steward",
            "--dept",
            DEPARTMENT,
            "--password-stdin",
            *c.home,
        ],
        input=PASSWORD + "\n",
    )
    assert made.exit_code == 0, made.output
    make_application_and_grant(c, dataset="kaigo")
    make_application_and_grant(c, row_level=True)


def send_to_review(c: Console) -> None:
    """The analyst's query, again, as the automatic checks would have sent it to review (that it passed them
    is the disclosure tests' business)."""
    with c.hub.session() as session:
        query = session.get_one(Release, session.scalars(select(func.max(Release.id))).one())
        copy = {
            k: getattr(query, k)
            for k in (
                "user_id",
                "kind",
                "title",
                "definition",
                "sql",
                "snapshot_ids",
                "datasets",
                "cells",
                "shown",
                "record",
                "record_sha256",
            )
        }
        review = Release(
            **copy, status=ReleaseStatus.REVIEW, review_reason="区別の人数", created_at=query.created_at
        )
        session.add(review)
        session.commit()
        c.release_id = review.id


def signed_in(hub: Hub, login_id: str, terminal: str) -> Actor:
    """The user, as a console login would give them (the login is the portal's, tested on its own)."""
    with hub.session() as session:
        user = session.scalars(select(User).where(User.login_id == login_id)).one()
        return Actor.for_user(user, terminal=terminal, client_addr="console")


BEFORE["application list"] = make_application_and_grant
BEFORE["table"] = make_steward_and_grant
BEFORE["review list"] = send_to_review


def take_the_table(c: Console) -> None:
    """Open data is published from a table of the builder: the analyst's first one."""
    with c.hub.session() as session:
        c.release_id = session.scalars(select(func.min(Release.id)).where(Release.kind == "table")).one()


BEFORE["opendata preview"] = take_the_table
BEFORE["backup"] = note_log_size


def decisions(home: Path, since: int) -> list[AuditEntry]:
    hub = Hub(home)
    try:
        with hub.session() as session:
            return list(
                session.scalars(
                    select(AuditEntry).where(AuditEntry.seq >= since, AuditEntry.action == "authz.decision")
                )
            )
    finally:
        hub.engine.dispose()


def decided(home: Path, since: int, source: Path, actor: str) -> tuple[set[str], list[AuditEntry]]:
    """The actions of ``actor``'s decisions in ``home``'s log from ``since`` on, and those entries;
    without those that are ``source``'s too (a restored log begins with the backed-up one)."""
    known = {e.leaf_hash for e in decisions(source, since)} if home != source else set()
    mine = [e for e in decisions(home, since) if e.actor == actor and e.leaf_hash not in known]
    return {str(e.details["access"]) for e in mine}, mine


def test_every_console_command_has_actions_that_are_actions() -> None:
    known = {str(a) for a in Action}
    for name, spec in COMMANDS.items():
        actions = spec.get("actions")
        assert isinstance(actions, list), f"{name}: no `actions` list in authz_matrix.yaml"
        assert set(actions) <= known, name
        assert len(set(actions)) == len(actions), name
        if spec["guard"] in ("sender", "local"):
            assert actions == [], f"{name}: a {spec['guard']} command decides nothing"


def test_this_test_runs_every_console_and_user_command_and_only_those() -> None:
    assert sorted(set(run_commands()) - set(RUNS)) == [], "console or user commands this test does not run"
    assert sorted(set(RUNS) - set(run_commands())) == [], "runs of commands that are neither"
    assert set(cli_commands()) >= set(RUNS)


def test_each_command_decides_under_exactly_its_actions(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis_cli, "login", signed_in)
    monkeypatch.setattr(opendata_cli, "login", signed_in)
    runner = CliRunner()
    seen: dict[str, set[str]] = {}
    for name, make_run in RUNS.items():
        if name in BEFORE:
            BEFORE[name](console)
        run = make_run(console)
        since = console.hub.audit.size() if run.home is None else run.since
        args = run.args if run.home is not None else [*run.args, *console.home]
        result = runner.invoke(app, args, input=run.stdin)
        assert result.exit_code == 0, (name, result.output)
        actions, entries = decided(run.home or console.hub.home, since, console.hub.home, run.actor)
        assert all(e.result == "allowed" for e in entries), (name, [(e.details, e.reason) for e in entries])
        seen[name] = actions
    wrong = {
        n: (sorted(a), COMMANDS[n]["actions"]) for n, a in seen.items() if a != set(COMMANDS[n]["actions"])
    }
    assert wrong == {}, "decided under other actions than authz_matrix.yaml says (decided, listed)"
