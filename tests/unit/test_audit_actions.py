"""One registry of audit actions: a static scan of src/ for every action an audit append can be given, and
docs/audit-log.md against the enums.

An action reaches ``AuditLog.append`` / ``append_in`` (keyword ``action=``) either written out, which must be
``AuditAction.MEMBER``, or through a value typed ``AuditAction``: a parameter or field annotated so, or a
property returning one. Wherever such a parameter or field is filled in (a call of the function or of the
dataclass), the same rule applies. A string, an f-string, ``.value`` or ``str(...)`` is refused everywhere on
that path, so a new action cannot be added without a member (and its row in the doc).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import renkei
from renkei.hub.access.applications import Event
from renkei.hub.access.authz import Action
from renkei.hub.audit import ACTION_FORMAT, MAX_ACTION, AuditError, AuditLog
from renkei.hub.audit_actions import AuditAction
from renkei.hub.db import Base, make_engine

SRC = Path(renkei.__file__).resolve().parent
DOC = Path(__file__).parents[2] / "docs" / "audit-log.md"
APPENDS = {"append", "append_in"}
ENUM = "AuditAction"


@dataclass(frozen=True, slots=True)
class Sink:
    """A function or dataclass one of whose arguments is an audit action: where it sits among the arguments."""

    module: str
    name: str
    index: int | None  # positional index as called (``self`` not counted); None: keyword-only
    keyword: str
    owner: str  # the class of a method (called as ``obj.name(...)``), "" for a function or a dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    where: str
    text: str


def _is_enum(annotation: ast.expr | None) -> bool:
    return annotation is not None and ast.unparse(annotation).strip("'\"") == ENUM


def _sinks(tree: ast.Module, module: str) -> tuple[set[Sink], set[str]]:
    """Arguments typed AuditAction (functions and dataclass fields), and the attribute names typed so."""
    sinks: set[Sink] = set()
    typed: set[str] = set()

    def function(node: ast.FunctionDef | ast.AsyncFunctionDef, owner: str) -> None:
        if _is_enum(node.returns):
            typed.add(node.name)  # a property (or method) that gives one
        positional = [*node.args.posonlyargs, *node.args.args]
        offset = 1 if owner and positional and positional[0].arg in ("self", "cls") else 0
        for i, arg in enumerate(positional):
            if _is_enum(arg.annotation):
                sinks.add(Sink(module, node.name, i - offset, arg.arg, owner))
        for arg in node.args.kwonlyargs:
            if _is_enum(arg.annotation):
                sinks.add(Sink(module, node.name, None, arg.arg, owner))

    def visit(node: ast.AST, owner: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                function(child, owner)
                visit(child, "")
            elif isinstance(child, ast.ClassDef):
                fields = [
                    f for f in child.body if isinstance(f, ast.AnnAssign) and isinstance(f.target, ast.Name)
                ]
                for i, item in enumerate(fields):
                    if _is_enum(item.annotation) and isinstance(item.target, ast.Name):
                        sinks.add(Sink(module, child.name, i, item.target.id, ""))
                        typed.add(item.target.id)
                visit(child, child.name)
            else:
                visit(child, owner)

    visit(tree, "")
    return sinks, typed


def _imports(tree: ast.Module) -> dict[str, str]:
    """Names imported with ``from renkei.x import name``: name -> module (as a path under src/renkei)."""
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("renkei."):
            path = node.module.removeprefix("renkei.").replace(".", "/") + ".py"
            found.update({alias.asname or alias.name: path for alias in node.names})
    return found


def _called(call: ast.Call) -> str:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return call.func.id if isinstance(call.func, ast.Name) else ""


def _argument(call: ast.Call, sink: Sink) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == sink.keyword:
            return keyword.value
    before = call.args[: (sink.index or 0) + 1]
    if sink.index is None or sink.index >= len(call.args) or any(isinstance(a, ast.Starred) for a in before):
        return None  # not given positionally, or its position is unknown (``*args``): mypy still types it
    return call.args[sink.index]


def _enclosing_parameters(stack: list[ast.AST]) -> dict[str, ast.arg]:
    for node in reversed(stack):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            return {a.arg: a for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    return {}


def _judge(value: ast.expr, stack: list[ast.AST], typed: set[str]) -> str | None:
    """Why ``value`` may not be an audit action, or None when it is one for sure."""
    text = ast.unparse(value)
    if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == ENUM:
        return None if value.attr in AuditAction.__members__ else f"{text} is not a member"
    if isinstance(value, ast.Call) and _called(value) == ENUM:
        literal = value.args[0] if value.args else None
        if isinstance(literal, ast.Constant) and literal.value not in {a.value for a in AuditAction}:
            return f"{text}: no such member"
        return None  # a conversion raises for anything that is not a member
    if isinstance(value, ast.Name):
        parameter = _enclosing_parameters(stack).get(value.id)
        if parameter is not None and _is_enum(parameter.annotation):
            return None
        return f"{text} is not a parameter typed {ENUM}"
    if isinstance(value, ast.Attribute) and value.attr in typed:
        return None
    return f"{text} is not an {ENUM}"


def problems(paths: list[Path], root: Path) -> list[Problem]:
    trees = {p.relative_to(root).as_posix(): ast.parse(p.read_text(encoding="utf-8")) for p in paths}
    sinks: set[Sink] = set()
    typed: set[str] = set()
    for module, tree in trees.items():
        found, names = _sinks(tree, module)
        sinks |= found
        typed |= names
    found_problems: list[Problem] = []
    for module, tree in trees.items():
        imported = _imports(tree)
        for call, stack in _calls(tree):
            candidates = _candidates(call, module, imported, sinks, stack)
            for value in _action_values(call):
                reason = _judge(value, stack, typed)
                if reason is not None:
                    found_problems.append(Problem(f"{module}:{call.lineno}", reason))
            # A name several methods share: refused only when no candidate's signature accepts the call.
            verdicts = [_judge_sink(call, sink, stack, typed) for sink in candidates]
            if verdicts and all(v is not None for v in verdicts):
                found_problems.append(Problem(f"{module}:{call.lineno}", next(v for v in verdicts if v)))
    return found_problems


def _candidates(
    call: ast.Call, module: str, imported: dict[str, str], sinks: set[Sink], stack: list[ast.AST]
) -> list[Sink]:
    """The sinks a call may reach: ``f()`` in its module or where it is imported from; ``self.f()`` in the
    enclosing class; ``Cls.f()`` in Cls; ``x.f()`` any method or module function named f."""
    name = _called(call)
    if isinstance(call.func, ast.Name):
        home = module if any(s.module == module and s.name == name for s in sinks) else imported.get(name)
        return [s for s in sinks if s.name == name and s.module == home and not s.owner]
    named = [s for s in sinks if s.name == name]
    receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
    if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
        owner = next((n.name for n in reversed(stack) if isinstance(n, ast.ClassDef)), "")
        return [s for s in named if s.owner == owner and s.module == module]
    if isinstance(receiver, ast.Name) and receiver.id.lstrip("_")[:1].isupper():
        return [s for s in named if s.owner == receiver.id]
    return named


def _judge_sink(call: ast.Call, sink: Sink, stack: list[ast.AST], typed: set[str]) -> str | None:
    argument = _argument(call, sink)
    return None if argument is None else _judge(argument, stack, typed)


def _action_values(call: ast.Call) -> list[ast.expr]:
    """What an audit append is given as its action."""
    if _called(call) not in APPENDS:
        return []
    values: list[ast.expr] = [k.value for k in call.keywords if k.arg == "action"]
    if any(k.arg is None for k in call.keywords):
        values.append(ast.Name(id="**kwargs"))  # cannot be checked: refused
    return values


def _calls(tree: ast.AST) -> Iterator[tuple[ast.Call, list[ast.AST]]]:
    def visit(node: ast.AST, stack: list[ast.AST]) -> Iterator[tuple[ast.Call, list[ast.AST]]]:
        if isinstance(node, ast.Call):
            yield node, stack
        for child in ast.iter_child_nodes(node):
            yield from visit(child, [*stack, node])

    yield from visit(tree, [])


def source_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_audit_action_in_src_is_an_audit_action_member() -> None:
    assert problems(source_files(), SRC) == []


def test_the_scan_sees_the_appends() -> None:
    """Not blind: the scan reaches the helpers that pass an action on (login's steps, the CLI, the workspace)."""
    trees = [ast.parse(p.read_text(encoding="utf-8")) for p in source_files()]
    sinks = {s.name for tree in trees for s in _sinks(tree, "")[0]}
    assert {"append", "append_in", "_Attempt", "_check_password", "_second_step"} <= sinks
    appended = [
        c
        for tree in trees
        for c, _ in _calls(tree)
        if _called(c) in APPENDS and any(k.arg == "action" for k in c.keywords)
    ]
    assert len(appended) >= 30


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ('def f(hub):\n    hub.audit.append(actor="x", action="brand.new")\n', "'brand.new' is not"),
        ('def f(log, s):\n    log.append_in(s, actor="x", action=f"admin.{s}")\n', "is not an AuditAction"),
        ("def f(log):\n    log.append(actor='x', action=AuditAction.NOT_THERE)\n", "is not a member"),
        (
            "def f(log):\n    log.append(actor='x', action=AuditAction.IMPORT.value)\n",
            "is not an AuditAction",
        ),
        ("def f(log):\n    log.append(actor='x', action=AuditAction('no.such'))\n", "no such member"),
        ("def f(log, **kw):\n    log.append(**kw)\n", "**kwargs"),
        ("def f(log, a: str):\n    log.append(actor='x', action=a)\n", "not a parameter typed"),
        (
            "def note(log, action: AuditAction):\n    log.append(actor='x', action=action)\n"
            "def g(log):\n    note(log, 'admin.sneaky')\n",
            "'admin.sneaky' is not",
        ),
        (
            "class Step:\n    action: AuditAction\n    who: str\n"
            "def g():\n    return Step('login.sneaky', 'x')\n",
            "'login.sneaky' is not",
        ),
        (
            "class M:\n    def _audit(self, action: AuditAction, result: str = 'ok'):\n"
            "        self.log.append(actor='x', action=action)\n"
            "    def run(self):\n        self._audit('workspace.sneaky')\n",
            "'workspace.sneaky' is not",
        ),
    ],
)
def test_the_scan_refuses_a_bare_action(tmp_path: Path, source: str, reason: str) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    found = problems([probe], tmp_path)
    assert len(found) == 1 and reason in found[0].text, found


def test_the_scan_accepts_typed_actions(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def note(log, action: AuditAction):\n    log.append(actor='x', action=action)\n"
        "def g(log, step):\n    note(log, AuditAction.IMPORT)\n"
        "    log.append(actor='x', action=step.event.audit_action)\n"
        "class E:\n    @property\n    def audit_action(self) -> AuditAction:\n        return AuditAction(self.value)\n",
        encoding="utf-8",
    )
    assert problems([probe], tmp_path) == []


def test_the_log_refuses_an_action_that_is_not_a_member(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    Base.metadata.create_all(engine)
    log = AuditLog(engine)
    with pytest.raises(AuditError, match="not an AuditAction"):
        log.append(actor="x", action="snapshot.read")  # an access name, not an action
    assert log.size() == 0
    assert log.append(actor="x", action=AuditAction.IMPORT).action == "import"


def test_every_member_has_the_logs_format() -> None:
    for action in AuditAction:
        assert ACTION_FORMAT.fullmatch(action) and len(action) <= MAX_ACTION, action


def test_every_workflow_event_is_an_audit_action() -> None:
    assert {e.audit_action for e in Event} <= set(AuditAction)


# --- the doc ------------------------------------------------------------------------------------------------


def _table_names(heading: str) -> set[str]:
    """First-column names of the table under ``heading`` (up to the next heading)."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(heading + "\n")
    end = re.search(r"^#{2,3} ", text[start + len(heading) :], flags=re.MULTILINE)
    body = text[start : start + len(heading) + (end.start() if end else len(text))]
    return set(re.findall(r"^\| `([^`]+)` \|", body, flags=re.MULTILINE))


def test_the_doc_lists_every_audit_action_and_no_other() -> None:
    assert _table_names("## Actions (操作名)") == {a.value for a in AuditAction}


def test_the_doc_lists_every_decided_access_and_no_other() -> None:
    assert _table_names("### Accesses decided (`details.access` of `authz.decision`)") == {
        a.value for a in Action
    }
