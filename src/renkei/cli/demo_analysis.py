"""The demo's last step: an analyst applies, both owning departments approve, and a linked table is built.

It takes the path a user takes: an application through the workflow, grants, a workspace over exactly the
granted snapshots, the table builder, disclosure control. Nothing here bypasses ``authorize()``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from renkei.cli.common import out
from renkei.cli.listing import print_wide
from renkei.hub.access.applications import (
    ApplicationForm,
    DatasetRequest,
    approve_part,
    create_application,
    submit,
)
from renkei.hub.access.authz import Actor
from renkei.hub.access.people import User
from renkei.hub.analysis.service import TableOutcome, table_for
from renkei.hub.home import Hub
from renkei.hub.tables.request import AgeBand, Category, Link, TableRequest

ANALYST, STEWARDS = "bunseki-analyst", ("shimin-steward", "kaigo-steward")
DEMO_TABLE = TableRequest(
    dataset="juki",
    dimensions=[Category(column="住所_ward"), AgeBand(width=5, top=90)],
    links=[Link(dataset="kaigo")],
    title="要介護認定を受けている住民（区・5歳階級別）",
    chart="bar",
)


def approve_demo_application(hub: Hub, today: dt.date) -> int:
    """The demo analyst's application for 住基 and 介護 (every period), approved by both stewards."""
    with hub.session() as session:
        users = {u.login_id: u for u in session.scalars(select(User))}
        analyst = Actor.for_user(users[ANALYST], terminal="demo-terminal")
        application = create_application(
            session,
            hub.audit,
            analyst,
            ApplicationForm(
                purpose="高齢者の介護需要を区・年齢別に把握し、地域包括ケアの資源配分を検討する",
                outputs="区・5歳階級別の要介護認定者数の集計表",
                use_start=today,
                use_end=today + dt.timedelta(days=180),
                row_level=False,
                requests=[
                    DatasetRequest("juki", all_periods=True),
                    DatasetRequest("kaigo", all_periods=True),
                ],
            ),
        )
        submit(session, hub.audit, analyst, application.id)
        for part in list(application.parts):
            steward = next(users[s] for s in STEWARDS if users[s].department_id == part.department_id)
            approve_part(session, hub.audit, Actor.for_user(steward, terminal="demo-terminal"), part.id)
        return application.id


def run_demo_analysis(hub: Hub, today: dt.date, period: dt.date) -> TableOutcome:
    """Apply, approve, then build the demo's linked table as the analyst, through the service a face calls."""
    approve_demo_application(hub, today)
    with hub.session() as session:
        analyst = session.scalars(select(User).where(User.login_id == ANALYST)).one()
        actor = Actor.for_user(analyst, terminal="demo-terminal")
    request = DEMO_TABLE.model_copy(update={"periods": [period], "title": f"{DEMO_TABLE.title} {period}"})
    outcome = table_for(hub, actor, request)
    print_crosstab(outcome, request.title)
    return outcome


def print_crosstab(outcome: TableOutcome, title: str) -> None:
    """A two-dimensional table as city statistics books print it: the second dimension down, the first across."""
    shown = outcome.shown
    across = list(dict.fromkeys(row[0] for row in shown.rows))
    down = list(dict.fromkeys(row[1] for row in shown.rows))
    values = {(row[0], row[1]): row[2] for row in shown.rows}
    rows = [[str(key), *(str(values.get((name, key), "")) for name in across)] for key in down]
    print_wide(out, [shown.header[1], *map(str, across)], rows, title=title or None,
               right=range(1, len(across) + 1))  # fmt: skip
    for note in shown.notes:
        out.print(note, highlight=False)
    out.print(f"集計表 {outcome.release_id} として公表台帳に記録 (recorded in the release ledger)")
    out.print("SQL:")
    for line in outcome.sql.split("\n"):  # SQL wraps at spaces, so a copy still runs
        out.print(line, highlight=False)
