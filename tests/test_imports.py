"""The import graph of the kit's packages: every arrow points one way (issue 21).

Built from the source, not from what happens to be imported at run time, so an import inside
a function counts as much as one at the top of a file: a module never imports one that
imports it back, however late it does so.
"""
import ast
import os

from conftest import ROOT

PACKAGES = ("grader", "helpers_lib")


def module_names():
    """{dotted name: path} of every module in PACKAGES (a package's __init__ is the package)."""
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for file in files:
                if file.endswith(".py"):
                    path = os.path.join(folder, file)
                    parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                    if parts[-1] == "__init__":
                        parts.pop()
                    found[".".join(parts)] = path
    return found


def imports_of(name, path, known):
    """The kit modules that module `name` imports, anywhere in its source."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # `from grader import audit` imports the module grader.audit
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in known else base)
    return {t for t in targets if t in known and t != name}


def import_graph():
    known = module_names()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def find_cycle(graph):
    """One cycle as a list of modules [a, b, ..., a], or None."""
    state = {}  # name -> "open" while on the path, "done" after

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_the_finder_sees_a_cycle_and_its_absence():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_is_read_from_the_source():
    graph = import_graph()
    assert "grader.batch" in graph and "helpers_lib.gradcheck" in graph
    assert "grader.audit" in graph["grader.batch"]  # `from grader import (..., audit, ...)`


def test_no_import_circle_in_the_kits_packages():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)
