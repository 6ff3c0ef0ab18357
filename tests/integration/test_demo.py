"""`renkei demo` end to end on a small city, then the console commands a staff member would run next.

The demo must end with a disclosure-controlled linked table; the analyst then logs in as the portal does
(ID, password, TOTP on the demo terminal), builds a table without code, writes the same table in SQL and gets
the same numbers, and exports it within the quota.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from renkei.cli.main import app
from renkei.hub.access.authz import Actor
from renkei.hub.access.passwords import Passwords, set_password
from renkei.hub.access.people import User
from renkei.hub.access.totp import current_code
from renkei.hub.analysis import service
from renkei.hub.analysis.ledger import Release
from renkei.hub.home import Hub
from renkei.hub.tables.request import Category, TableRequest
from tests.support.tls import free_port

ANALYST = "bunseki-analyst"
STEWARD = "shimin-steward"  # 市民課, owns juki
NEW_PASSWORD = "港町の坂道と朝霧の白い灯台"
STEP = dt.timedelta(seconds=30)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    directory = tmp_path_factory.mktemp("demo") / "d"
    result = CliRunner().invoke(
        app, ["demo", "--dir", str(directory), "--residents", "3000", "--years", "2"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return directory, result.output


def test_the_demo_ends_with_a_protected_linked_table(demo: tuple[Path, str]) -> None:
    _, output = demo
    assert "要介護認定を受けている住民" in output
    assert "撹乱" in output and "公表台帳" in output  # perturbed, and recorded in the release ledger
    assert "北区" in output and "計" in output  # wards across, age bands down, totals


def test_what_the_demo_prints_fits_80_columns(demo: tuple[Path, str]) -> None:
    """Issue 10 item 5: nothing is cut; only a command to copy (one long path) may run past 80 columns."""
    _, output = demo
    assert "…" not in output
    for line in output.splitlines():
        assert cell_len(line) <= 80 or line.startswith("  /"), line


def test_the_demo_prints_a_demo_users_current_code(demo: tuple[Path, str]) -> None:
    directory, _ = demo
    printed = CliRunner().invoke(app, ["demo", "--dir", str(directory), "--code", ANALYST])
    assert printed.exit_code == 0, printed.output
    secret = _totp_secret(directory / "people.txt", ANALYST)
    now = dt.datetime.now(dt.UTC)
    assert printed.output.strip() in {current_code(secret, now + k * STEP) for k in (-1, 0, 1)}
    refused = CliRunner().invoke(app, ["demo", "--dir", str(directory / "hub"), "--code", ANALYST])
    assert refused.exit_code != 0 and "not a demo directory" in refused.output


def test_the_demo_can_end_by_serving_the_portal_to_its_terminal(tmp_path: Path) -> None:
    """``make demo`` (``--serve``): the portal answers on 127.0.0.1 to the demo terminal's certificate."""
    port = free_port()
    directory = tmp_path / "d"
    command = [sys.executable, "-m", "renkei.cli.main", "demo", "--dir", str(directory), "--residents", "100",
               "--years", "1", "--serve", "--port", str(port)]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as demo_run:
        try:
            assert demo_run.stdout is not None
            printed = "".join(_until(demo_run.stdout, "で待ち受けます"))
            assert f"https://localhost:{port}/" in printed and "bunseki-analyst" in printed
            terminal = directory / "terminal"
            context = ssl.create_default_context(cafile=directory / "tls" / "server.crt")
            context.load_cert_chain(terminal / "demo-terminal.crt", terminal / "demo-terminal.key")
            page = httpx.get(f"https://localhost:{port}/login", verify=context, timeout=10)
            assert page.status_code == 200 and "ログイン" in page.text
        finally:
            demo_run.terminate()
            demo_run.wait(10)


def _until(stream: IO[str], marker: str) -> Iterator[str]:
    for line in stream:
        yield line
        if marker in line:
            return
    raise AssertionError(f"the demo ended before {marker!r}")


def test_an_analyst_builds_a_table_writes_the_same_in_sql_and_exports_it(
    demo: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, _ = demo
    home = directory / "hub"
    secret = _totp_secret(directory / "people.txt", ANALYST)
    _set_own_password(Hub(home))
    runner = CliRunner()
    common = ["--user", ANALYST, "--terminal", "demo-terminal", "--home", str(home)]

    def run(*arguments: str, code_at: dt.datetime) -> str:
        monkeypatch.setenv("RENKEI_PASSWORD", NEW_PASSWORD)
        monkeypatch.setenv("RENKEI_TOTP", current_code(secret, code_at))
        result = runner.invoke(app, [*arguments, *common], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    now = dt.datetime.now(dt.UTC)  # each login takes a later TOTP step: before, now, after
    table = json.loads(
        run(
            "table",
            "--dataset",
            "juki",
            "--by",
            "住所_ward",
            "--link",
            "kaigo",
            "--format",
            "json",
            code_at=now - STEP,
        )
    )
    sql = (
        'SELECT b."住所_ward", count(*) AS n FROM juki AS b WHERE EXISTS '
        "(SELECT 1 FROM kaigo AS l WHERE l.pid = b.pid AND l.period = b.period) GROUP BY 1"
    )
    by_sql = json.loads(run("query", sql, "--format", "json", code_at=now))
    wards = {row[0]: row[1] for row in table["rows"] if row[0] != "計"}
    assert wards and {row[0]: row[1] for row in by_sql["rows"]} == wards

    quota = runner.invoke(app, ["quota", "set", ANALYST, "--may-download", "--home", str(home)])
    assert quota.exit_code == 0, quota.output
    out = directory / "table.csv"
    release = _latest_release(home)
    run("export", str(release), "--format", "csv", "--out", str(out), code_at=now + STEP)
    assert out.read_bytes().startswith("\ufeff".encode()) and "住所_ward" in out.read_text(
        encoding="utf-8-sig"
    )


def test_a_steward_previews_and_publishes_a_table_as_open_data(
    demo: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console faces of docs/opendata.md: a preview that spends nothing, then the CSV and its record."""
    directory, _ = demo
    home = directory / "hub"
    hub = Hub(home)
    with hub.session() as session:
        analyst = session.query(User).filter_by(login_id=ANALYST).one()
        session.expunge(analyst)
    request = TableRequest(dataset="juki", dimensions=[Category(column="住所_ward")], title="区別人口")
    release = service.table_for(hub, Actor.for_user(analyst, terminal="demo-terminal"), request).release_id
    _set_own_password(hub, STEWARD)
    secret = _totp_secret(directory / "people.txt", STEWARD)
    runner = CliRunner()
    common = ["--user", STEWARD, "--terminal", "demo-terminal", "--home", str(home), "--epsilon", "0.5"]

    def run(*arguments: str, code_at: dt.datetime) -> str:
        monkeypatch.setenv("RENKEI_PASSWORD", NEW_PASSWORD)
        monkeypatch.setenv("RENKEI_TOTP", current_code(secret, code_at))
        result = runner.invoke(app, [*arguments, *common], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    now = dt.datetime.now(dt.UTC)
    shown = run("opendata", "preview", str(release), code_at=now - STEP)
    assert "誤差（95%）±6.43" in shown and "juki 2024年度: 0 / 1 → 0.5" in shown, shown
    out = directory / "kubetsu.csv"
    published = run("opendata", "publish", str(release), "--out", str(out), code_at=now)
    assert "juki 2024年度: 0.5 / 1 → 0.5" in published, published
    lines = [
        line for line in shown.splitlines() + published.splitlines() if not line.startswith(str(directory))
    ]
    assert all(cell_len(line) <= 80 for line in lines)  # a path goes on a line of its own
    assert out.read_text(encoding="utf-8-sig").startswith("住所_ward,人数,誤差（95%）")
    record = json.loads((directory / "kubetsu.record.json").read_text(encoding="utf-8"))
    assert record["differential_privacy"]["library"] == "opendp"


def _people_entry(people: Path, login: str) -> str:
    text = people.read_text(encoding="utf-8")
    start = text.index(login)
    return text[start : start + 400]


def _totp_secret(people: Path, login: str) -> str:
    found = re.search(r"secret=([A-Z2-7]+)", _people_entry(people, login))
    assert found is not None
    return found.group(1)


def _set_own_password(hub: Hub, login: str = ANALYST) -> None:
    """What the first login's forced change leaves (the portal's flow is tested in tests/web): a password of
    the user's own. Set directly, so that the three console logins below can use three TOTP steps."""
    with hub.session() as session:
        user = session.query(User).filter_by(login_id=login).one()
        set_password(session, user, NEW_PASSWORD, passwords=Passwords(), changed_by=login, must_change=False)
        session.commit()


def _latest_release(home: Path) -> int:
    with Hub(home).session() as session:
        return max(r.id for r in session.query(Release).all())


def test_a_console_login_from_a_revoked_terminal_is_refused_by_name(
    demo: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9 item 8: the refusal's audit entry names the revoked terminal (it used to be empty)."""
    directory, _ = demo
    home = directory / "hub"
    runner = CliRunner()
    revoked = runner.invoke(app, ["terminal", "revoke", "demo-terminal", "--home", str(home)])
    assert revoked.exit_code == 0, revoked.output
    monkeypatch.setenv("RENKEI_PASSWORD", NEW_PASSWORD)
    monkeypatch.setenv("RENKEI_TOTP", "000000")
    size = Hub(home).audit.size()
    common = ["--user", ANALYST, "--terminal", "demo-terminal", "--home", str(home)]
    refused = runner.invoke(app, ["table", "--dataset", "juki", "--by", "住所_ward", *common])
    assert refused.exit_code != 0 and "not registered" in refused.output, refused.output
    entry = next(e for e in Hub(home).audit.tail(5) if e.seq >= size and e.action == "login.password")
    assert (entry.result, entry.reason, entry.terminal) == ("denied", "terminal_revoked", "demo-terminal")
