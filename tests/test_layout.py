"""The package's layout is its architecture: no import runs back up a layer, and there is no import circle.

The import graph is read statically (``ast``) from the installed package's own files, so a new module is checked
the moment it exists; nothing here trusts a list of modules. Every import counts, also those inside functions and
under ``TYPE_CHECKING``: a lazy import is still an arrow. The table is docs/design.md's "Layout", which is the
contract LAYOUT.md asks for. A failure names the two modules and the rule.

The light commands' rule is checked the same way: what the CLI imports at module level, plus what each light
command's handler imports, must not include an SDK, the server or the keyring. (``tests/cli/test_light_commands.py``
also runs those commands and looks at ``sys.modules``, which sees imports made deeper inside called functions.)
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = "govuk_imds"

#: Which layers a layer may import (itself always included). A "layer" is a folder of the package, or a top-level
#: module standing alone: ``errors`` (the exception tree), ``hardening`` (no core dumps, no ptrace), ``socket_owner``
#: (who owns a loopback TCP socket), ``control`` (the control channel's client), ``endpoint_client`` (one GET on the
#: endpoint), ``credential_process`` (the lean path), ``entry``/``__main__``.
ALLOWED: Mapping[str, frozenset[str]] = {
    "errors": frozenset(),
    "hardening": frozenset(),
    "socket_owner": frozenset(),
    "core": frozenset({"errors"}),
    "config": frozenset({"core", "errors"}),
    "control": frozenset({"config", "errors"}),
    "endpoint_client": frozenset({"control", "errors", "socket_owner"}),
    "aws": frozenset({"core", "config", "errors"}),
    "keystore": frozenset({"core", "config", "errors"}),
    "daemon": frozenset(
        {"core", "config", "aws", "errors", "control", "keystore", "hardening", "desktop", "socket_owner"}
    ),
    "keys": frozenset({"core", "config", "aws", "keystore", "control", "errors"}),
    "doctor": frozenset({"core", "config", "aws", "keystore", "control", "errors", "endpoint_client"}),
    "autostart": frozenset({"core", "config", "aws", "keystore", "control", "errors"}),
    "console": frozenset({"core", "config", "aws", "control", "errors", "socket_owner"}),
    "govuk": frozenset({"core", "config", "errors"}),
    "shells": frozenset({"core", "config", "errors"}),
    "desktop": frozenset({"core", "errors"}),
    "codes": frozenset({"core", "config", "desktop", "errors"}),
    "cli": frozenset(
        {"core", "config", "aws", "keystore", "daemon", "keys", "doctor", "autostart", "console", "control", "errors",
         "endpoint_client", "govuk", "shells", "hardening", "desktop", "codes", "__init__"}
    ),
    "credential_process": frozenset({"config", "core", "errors", "endpoint_client"}),
    "entry": frozenset({"credential_process", "cli", "shells"}),
    "__main__": frozenset({"entry"}),
    "__init__": frozenset(),
}
#: The daemon holds MFA sessions in the keyring, but a long-term key never enters it: of ``keystore`` it may import
#: only the MFA session store, and reach through it (at any depth) only these modules, none of which holds a way to
#: read a long-term key (``selection`` hands back a bare backend; ``store`` and ``backends`` are the key store).
DAEMON_MAY_USE_OF_KEYSTORE = frozenset({"govuk_imds.keystore.sessions", "govuk_imds.keystore.timeouts"})
DAEMON_MAY_REACH_OF_KEYSTORE = DAEMON_MAY_USE_OF_KEYSTORE | {"govuk_imds.keystore.selection", "govuk_imds.keystore"}
#: Libraries the pure core never imports.
IO_LIBRARIES = ("aiohttp", "aiocache", "boto3", "botocore", "keyring", "secretstorage", "jeepney", "s3transfer")
#: What must not be on a light command's import path.
NOT_FOR_LIGHT_COMMANDS = ("aiohttp", "aiocache", "boto3", "botocore.session", "botocore.client", "keyring",
                          "secretstorage", "jeepney")
#: Light commands and the module and function that handle each.
LIGHT_COMMANDS = {
    "env": ("govuk_imds.cli.shell", "cmd_env"),
    "exec": ("govuk_imds.cli.shell", "cmd_exec"),
    "shell": ("govuk_imds.cli.shell", "cmd_shell"),
    "credential-process": ("govuk_imds.cli.shell", "cmd_credential_process"),
    "profile": ("govuk_imds.cli.shell", "cmd_profile"),
    "status": ("govuk_imds.cli.sessions", "cmd_status"),
    "lock": ("govuk_imds.cli.sessions", "cmd_lock"),
    "accounts": ("govuk_imds.cli.accounts", "cmd_accounts"),
    "completion": ("govuk_imds.cli.shells", "cmd_completion"),
    "prompt": ("govuk_imds.cli.shells", "cmd_prompt"),
    # Answered by entry.main's lean path on every TAB, before the full CLI is imported.
    "__complete": ("govuk_imds.entry", "main"),
    "audit": ("govuk_imds.cli.audit", "cmd_audit"),
}


@dataclass(frozen=True)
class Import:
    source: str
    target: str  # a module of ours, or an outside name as written (``botocore.config``)
    line: int
    module_level: bool  # at the top of the module (not in a function, not only for type checking)
    function: str | None  # the top-level function it sits in, if any


@dataclass
class Package:
    modules: dict[str, Path] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)

    def ours(self, name: str) -> bool:
        return name in self.modules

    def of(self, source: str) -> list[Import]:
        return [item for item in self.imports if item.source == source]


def layer(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def installed_package_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.submodule_search_locations, "govuk_imds is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def read_package(root: Path) -> Package:
    package = Package()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).with_suffix("")
        parts = [PACKAGE, *relative.parts]
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        package.modules[".".join(parts)] = path
    for module, path in package.modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        package.imports += _imports(package, module, is_package, tree)
    return package


def _imports(package: Package, module: str, is_package: bool, tree: ast.Module) -> Iterator[Import]:
    base_package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST, module_level: bool, function: str | None) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                yield from visit_body(child.body, False, function)
                yield from visit_body(child.orelse, module_level, function)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from visit(child, False, function or child.name)
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, module_level, function)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(module, alias.name, child.lineno, module_level, function)
            elif isinstance(child, ast.ImportFrom):
                yield from from_import(child, module_level, function)
            else:
                yield from visit(child, module_level, function)

    def visit_body(body: list[ast.stmt], module_level: bool, function: str | None) -> Iterator[Import]:
        holder = ast.Module(body=body, type_ignores=[])
        yield from visit(holder, module_level, function)

    def from_import(node: ast.ImportFrom, module_level: bool, function: str | None) -> Iterator[Import]:
        if node.level:
            anchor = base_package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            origin = ".".join([*anchor, *([node.module] if node.module else [])])
        else:
            origin = node.module or ""
        for alias in node.names:
            candidate = f"{origin}.{alias.name}"
            target = candidate if package.ours(candidate) else origin
            yield Import(module, target, node.lineno, module_level, function)

    yield from visit(tree, True, None)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def layer_violations(package: Package) -> list[str]:
    problems = []
    for item in package.imports:
        if not item.target.startswith(PACKAGE) or not package.ours(item.target):
            continue
        source_layer, target_layer = layer(item.source), layer(item.target)
        if source_layer == target_layer:
            continue
        if target_layer not in ALLOWED[source_layer]:
            problems.append(
                f"{item.source} imports {item.target} (line {item.line}): {source_layer} may import only "
                f"{', '.join(sorted(ALLOWED[source_layer])) or 'nothing of the package'}"
            )
        elif source_layer == "daemon" and target_layer == "keystore" and item.target not in DAEMON_MAY_USE_OF_KEYSTORE:
            problems.append(
                f"{item.source} imports {item.target} (line {item.line}): the daemon may use the keyring only for "
                f"MFA sessions ({', '.join(sorted(DAEMON_MAY_USE_OF_KEYSTORE))}); a long-term key never enters it"
            )
        elif source_layer == "cli" and item.target == "govuk_imds.cli" and item.source != "govuk_imds.cli":
            problems.append(f"{item.source} imports {item.target} (line {item.line}): command groups never import "
                            "cli/__init__.py (shared parts live in cli/_common.py)")
    for item in package.imports:
        if layer(item.source) == "core" and _is_one_of(item.target, IO_LIBRARIES):
            problems.append(f"{item.source} imports {item.target} (line {item.line}): the core is pure")
    return problems


def _is_one_of(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def cycles(package: Package) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm), and self-imports."""
    edges: dict[str, set[str]] = {name: set() for name in package.modules}
    for item in package.imports:
        if package.ours(item.target) and item.target != item.source:
            edges[item.source].add(item.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def connect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for neighbour in sorted(edges[node]):
            if neighbour not in index:
                connect(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def light_path(package: Package, module: str, function: str) -> dict[str, str]:
    """Everything imported when ``function`` of ``module`` runs from the CLI: the module-level closure of the CLI
    and of the handler's own imports. Maps each name reached to the module that imports it."""
    reached: dict[str, str] = {}
    pending: list[tuple[str, str]] = [("govuk_imds.entry", "(start)"), ("govuk_imds.cli", "govuk_imds.entry")]
    pending += [(item.target, module) for item in package.of(module) if item.function == function]
    while pending:
        name, importer = pending.pop()
        if name in reached:
            continue
        reached[name] = importer
        if package.ours(name):
            pending += [(item.target, name) for item in package.of(name) if item.module_level]
            # importing a.b.c runs a/__init__.py and a/b/__init__.py first
            parts = name.split(".")
            parents = (".".join(parts[:end]) for end in range(1, len(parts)))
            pending += [(parent, name) for parent in parents if package.ours(parent)]
    return reached


@pytest.fixture(scope="module")
def package() -> Package:
    return read_package(installed_package_dir())


def test_the_graph_is_read_from_the_installed_package(package: Package) -> None:
    assert len(package.modules) > 50
    for folder in ("core", "config", "aws", "keystore", "daemon", "keys", "doctor", "autostart", "console", "govuk",
                   "shells", "desktop", "codes", "cli"):
        assert f"govuk_imds.{folder}" in package.modules, f"no {folder}/ in the package"
    assert all(layer(name) in ALLOWED for name in package.modules), "a module outside every layer of the table"


def test_no_module_imports_one_in_a_layer_above_it(package: Package) -> None:
    assert layer_violations(package) == []


def reachable(package: Package, start: Iterable[str]) -> set[str]:
    """Every module of ours that importing ``start`` can run, through any import at any depth."""
    seen: set[str] = set()
    pending = list(start)
    while pending:
        name = pending.pop()
        if name in seen or not package.ours(name):
            continue
        seen.add(name)
        pending += [item.target for item in package.of(name)]
        parts = name.split(".")
        pending += [".".join(parts[:end]) for end in range(1, len(parts))]
    return seen


def test_the_daemon_reaches_no_keystore_module_that_can_read_a_long_term_key(package: Package) -> None:
    daemon = [name for name in package.modules if layer(name) == "daemon"]
    reached = {name for name in reachable(package, daemon) if layer(name) == "keystore"}
    assert "govuk_imds.keystore.sessions" in reached, "the daemon no longer keeps MFA sessions in the keyring?"
    unexpected = sorted(reached - DAEMON_MAY_REACH_OF_KEYSTORE)
    assert unexpected == [], f"the daemon reaches {unexpected}"


def test_there_is_no_import_circle(package: Package) -> None:
    assert cycles(package) == []


@pytest.mark.parametrize("command", sorted(LIGHT_COMMANDS))
def test_light_commands_import_no_sdk_server_or_keyring(package: Package, command: str) -> None:
    module, function = LIGHT_COMMANDS[command]
    reached = light_path(package, module, function)
    heavy = {name: importer for name, importer in reached.items() if _is_one_of(name, NOT_FOR_LIGHT_COMMANDS)}
    assert heavy == {}, f"`govuk-imds {command}` imports {heavy}"


# -- the checker itself: a broken package must be caught (otherwise every test above could pass vacuously) -----------


def _fake(tmp_path: Path, files: Mapping[str, str]) -> Package:
    root = tmp_path / PACKAGE
    for relative, text in {"__init__.py": "", **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return read_package(root)


def test_the_checker_sees_an_arrow_back_up_even_inside_a_function(tmp_path: Path) -> None:
    fake = _fake(tmp_path, {
        "core/__init__.py": "",
        "core/session.py": "def f():\n    from ..config.settings import Settings\n",
        "config/__init__.py": "",
        "config/settings.py": "",
    })
    [problem] = layer_violations(fake)
    assert problem.startswith("govuk_imds.core.session imports govuk_imds.config.settings (line 2)")


def test_the_checker_sees_a_long_term_key_reaching_the_daemon(tmp_path: Path) -> None:
    fake = _fake(tmp_path, {
        "daemon/__init__.py": "", "daemon/app.py": "from ..keystore import store\n",
        "keystore/__init__.py": "", "keystore/store.py": "",
    })
    [problem] = layer_violations(fake)
    assert "a long-term key never enters it" in problem


def test_the_checker_sees_a_circle_and_an_io_library_in_the_core(tmp_path: Path) -> None:
    fake = _fake(tmp_path, {
        "core/__init__.py": "", "core/a.py": "from . import b\nimport aiohttp\n", "core/b.py": "from .a import x\n",
    })
    assert cycles(fake) == [["govuk_imds.core.a", "govuk_imds.core.b"]]
    assert layer_violations(fake) == ["govuk_imds.core.a imports aiohttp (line 2): the core is pure"]


def test_the_checker_follows_a_light_command_into_its_handler_but_not_into_other_handlers(tmp_path: Path) -> None:
    fake = _fake(tmp_path, {
        "entry.py": "from . import cli\n",
        "cli/__init__.py": "from . import shell\n",
        "cli/shell.py": "def cmd_env():\n    from ..config import x\n\ndef cmd_add():\n    import keyring\n",
        "config/__init__.py": "", "config/x.py": "import boto3\n",
    })
    assert "boto3" in light_path(fake, "govuk_imds.cli.shell", "cmd_env")
    assert "keyring" not in light_path(fake, "govuk_imds.cli.shell", "cmd_env")
