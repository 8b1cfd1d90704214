"""The house rules on imports, read from the source: shells use front doors only, and nothing cycles.

Shells (`bulletin/cli/`, `bulletin/web/`) may import:
- shared infrastructure: bulletin.config, bulletin.errors, bulletin.logs, bulletin.db,
  bulletin.statuses, bulletin.workspace, bulletin.ratelimit (limits counted in the database);
- a stage package's front door: `from bulletin.<stage> import X` with X in its
  `__all__`, or a module `bulletin.<stage>.<m>` whose name `m` is in `__all__`.
- a cross-stage unit of work above the stages (CROSS_STAGE: `bulletin.forget`, which
  erases through audience and then delivery).
Never `bulletin.models` and never a stage's internal module. Every import counts,
function-local ones too.

Stages point one way: delivery, inbound and report read the audience, so the
audience stage imports none of them (nor a shell); work that needs both sides
lives above them (`bulletin.forget`).

The cycle check reads module-level imports only (including those inside
top-level `try`/`if`, excluding `if TYPE_CHECKING:`). A function-local import
runs when the function is called, after every module has loaded, so it cannot
leave a module half-initialised; it is how a few modules defer a heavy or
optional dependency (dkim, uvicorn, the web app from the CLI), and it is not an
edge here. A package's implicit import of its parent `__init__` is not an edge.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "bulletin"
SHARED = {"bulletin.config", "bulletin.errors", "bulletin.logs", "bulletin.db", "bulletin.statuses",
          "bulletin.workspace", "bulletin.ratelimit", "bulletin.schema", "bulletin.sqlread",
          "bulletin.signals"}
SHELLS = ("cli", "web")
CROSS_STAGE = {"bulletin.forget"}
# What the audience stage must never import: the stages that read it, and the shells.
ABOVE_AUDIENCE = ("delivery", "inbound", "report", "doctor", "demo", "cli", "web", "forget")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path, *, module_level: bool) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every `bulletin` import in the file."""
    return _imports_in(path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py",
                       module_level=module_level)


def _imports_in(source: str, name: str, is_package: bool, *, module_level: bool) -> list[tuple[int, str, list[str]]]:
    tree = ast.parse(source)
    nodes: list[ast.AST]
    if module_level:
        nodes = []
        todo = list(tree.body)
        while todo:
            n = todo.pop()
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                continue
            if isinstance(n, (ast.If, ast.Try)):
                todo.extend(n.body + n.orelse + getattr(n, "finalbody", []) +
                            [s for h in getattr(n, "handlers", []) for s in h.body])
            nodes.append(n)
    else:
        nodes = list(ast.walk(tree))
    out = []
    for n in nodes:
        if isinstance(n, ast.Import):
            out += [(n.lineno, a.name, []) for a in n.names if a.name.startswith("bulletin")]
        elif isinstance(n, ast.ImportFrom):
            mod = _resolve(n, name, is_package)
            if mod == "bulletin":  # `from bulletin import models` is `import bulletin.models`, checked as such
                out += [(n.lineno, f"bulletin.{a.name}", []) for a in n.names]
            elif mod.startswith("bulletin"):
                out.append((n.lineno, mod, [a.name for a in n.names]))
    return out


def _front_door_problem(module: str, names: list[str]) -> str | None:
    if module in SHARED or module == "bulletin":
        return None
    if module in CROSS_STAGE:
        missing = [n for n in names if n not in getattr(importlib.import_module(module), "__all__", ())]
        return f"imports {missing} from {module}, not in its __all__" if missing else None
    if module == "bulletin.models" or module.startswith("bulletin.models."):
        return "imports bulletin.models (call a stage function instead)"
    parts = module.split(".")
    package = importlib.import_module(".".join(parts[:2]))
    door = set(getattr(package, "__all__", ()))
    if len(parts) == 2:
        missing = [n for n in names if n not in door]
        return f"imports {missing} from {module}, not in its __all__" if missing else None
    if len(parts) == 3 and parts[2] in door:
        return None
    return f"imports {module}, an internal module (front door: {sorted(door)})"


def test_shells_import_only_front_doors_and_shared_infrastructure() -> None:
    problems = []
    for shell in SHELLS:
        for path in sorted((ROOT / shell).rglob("*.py")):
            for line, module, names in _imports(path, module_level=False):
                if module.split(".")[1:2] in ([s] for s in SHELLS):
                    continue
                problem = _front_door_problem(module, names)
                if problem:
                    problems.append(f"{path.relative_to(ROOT.parent)}:{line}: {problem}")
    assert not problems, "\n".join(problems)


def test_importing_a_stage_through_the_top_package_is_seen() -> None:
    """`from bulletin import models` once passed as an import of the package itself."""
    found = _imports_in("from bulletin import models, delivery\nfrom bulletin import config\n",
                        "bulletin.web.pages.x", False, module_level=False)
    assert [(m, _front_door_problem(m, names)) for _line, m, names in found] == [
        ("bulletin.models", "imports bulletin.models (call a stage function instead)"),
        ("bulletin.delivery", None),  # the package itself, as `import bulletin.delivery` is
        ("bulletin.config", None),
    ]


def test_the_audience_stage_imports_no_stage_that_reads_it() -> None:
    """audience.forget once imported delivery.outbox: erasure everywhere now lives in bulletin.forget."""
    problems = []
    for path in sorted((ROOT / "audience").rglob("*.py")):
        for line, module, _names in _imports(path, module_level=False):
            if module.split(".")[1:2] and module.split(".")[1] in ABOVE_AUDIENCE:
                problems.append(f"{path.relative_to(ROOT.parent)}:{line}: imports {module}")
    assert not problems, "\n".join(problems)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for _line, module, names in _imports(path, module_level=True):
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules] or [module]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_inside_bulletin() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_front_door_rule_refuses_models_and_internal_modules() -> None:
    assert _front_door_problem("bulletin.models", ["Subscriber"])
    assert _front_door_problem("bulletin.audience.lifecycle", ["subscribe"])
    assert _front_door_problem("bulletin.config", ["Settings"]) is None
