"""Read a submission's source, in the grader's own process: the explaining layer of the grader.

The walls and the process model carry the hard guarantees (a child cannot start programs, shadow
the standard library or reach another submission; the child watches for autograd at run time).
This audit parses the .py files with `ast` in the grader's process, which the submission's code
never reaches, and explains what it finds with the file and line. The rules are a table,
grader/audit_rules.py: autograd, finite differences, tampering (frames, torch's internals,
patched modules, other processes, raw descriptors), unverifiable (code hidden from a reader).

What a finding costs (`gradient_verdict`): a SURE finding that graded code reaches scores the
gradient tests 0 (autograd or finite differences reachable from nn_forward_backward: e.g.
torch.autograd.grad, `.backward()` on what is not an object of the submission's own classes,
torch.func, helpers.numeric_gradient; tampering reachable from any graded function or at import).
Everything else is at most a flag for a person (`flags`): what the audit is unsure of (hooks,
requires_grad, a method name that the submission's own classes define too, hidden names) and
whatever the graded functions cannot reach (tuning code, find_best_net, notebook helpers, code
under `if __name__ == "__main__":`). Hidden names there are not even flagged.

Names are resolved through imports, the submission's own modules and simple aliases (`import
torch as t`, `g = t.autograd.grad`, `getattr(x, "grad")`), and through its own classes: a
`Linear.backward` the student wrote, called on `fc = Linear(...)` or on `self`, is the
student's, and so is a `self.grad` field. Switching autograd off (`torch.no_grad`,
`set_grad_enabled(False)`, `requires_grad_(False)`, `detach`) is no finding.
Not seen: autograd inside a third-party library that the submission calls innocently; objects
passed under new names through containers or arguments; code the submission writes to files at
run time (the walls and the run-time watch cover what runs).

Only two_layer_net.py and the files it imports are read (no other file runs when it is graded);
unchanged copies of the kit's modules that come with a release are the kit's. A finding is
reachable from a function when it lies at module level (import-time code runs before every
test) or in a top-level function or class that the function reaches: by name (called, passed as
a value or decorated), as `module.name` of an own module, or as `obj.method` when a class of the
submission defines `method`.
"""
import ast
import builtins
import functools
import importlib.metadata
import os
import re
import sys
import threading
from dataclasses import dataclass

from grader import KIT_ROOT, audit_rules
from grader.audit_rules import (
    AUTOGRAD,
    NUMERIC,
    PLAIN_DUNDERS,
    PRIVATE,
    STORED_DUNDERS,
    SURE,
    SWITCHES_OFF,
    TAMPERING,
    UNVERIFIABLE,
    WRITABLE,
)

# Python 3.11's parser is not safe to enter from two threads at once (the job slots audit in
# parallel): it failed once here with "SystemError: AST constructor recursion depth mismatch".
_PARSING = threading.Lock()
ENTRY = "nn_forward_backward"
GRADED = (ENTRY, "nn_forward_pass", "nn_train", "nn_predict")  # the functions the rubric calls
MAIN = "__main__"  # the owner of code under `if __name__ == "__main__":`, which nothing reaches
KIT_MODULES = {"linear_classifier", "eecs598", "a2_helpers", "helpers", "grader", "grade",
               "main"}  # importable in a child (grader/standins.py supplies the course's)
KIT_COPIES = {"helpers.py", "grade.py", "main.py"}  # a release's copies, often submitted with it
COMPILED = (".so", ".pyd", ".pyc")  # importable, but not source this audit can read
DEEP = "code nested too deeply to read"
MAX_SOURCE = 1 << 20  # bytes of .py in all; a hand-written two_layer_net.py is a few kB
SHOWN = 3  # findings named in a verdict


@dataclass(frozen=True)
class Finding:
    """One route the audit found, where, and whether nn_forward_backward can reach it."""
    kind: str  # AUTOGRAD, TAMPERING or UNVERIFIABLE
    file: str
    line: int
    what: str  # for students: "loss.backward()", "sys._getframe (walks the grader's call stack)"
    in_backward: bool  # reachable from nn_forward_backward (or at import)
    sure: bool = True  # audit_rules.SURE: costs points where reached; else only a flag
    in_graded: bool = True  # reachable from a function the rubric calls (or at import)


# Resolved dotted names are matched from the name's start and from any gateway in it
# (linear_classifier.torch.autograd is torch.autograd).
GATEWAYS = {"torch", "functorch", "sys", "os", "builtins", "gc", "ctypes", "importlib", "inspect",
            "subprocess", "pickle", "helpers", "grader", "eecs598", "posix"}
DOTTED, ATTRS = audit_rules.tables()
GETATTR = {"builtins.getattr": ast.Load, "builtins.hasattr": ast.Load,
           "builtins.setattr": ast.Store, "builtins.delattr": ast.Del}
OPENERS = {"builtins.open", "io.open", "io.FileIO", "os.open"}
PROC = re.compile(r"/proc\b|/dev/fd\b")
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _is_const(node, value):
    return isinstance(node, ast.Constant) and node.value is value


def _dunder(name):
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _resolve(node, names):
    """The dotted name an expression stands for through imports and aliases, or None."""
    if isinstance(node, ast.Name):
        return names.get(node.id) or (f"builtins.{node.id}" if hasattr(builtins, node.id) else None)
    if isinstance(node, ast.Call):
        node = _literal_attribute(node, names)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, names)
        return base and f"{base}.{node.attr}"
    return None


def _literal_attribute(call, names):
    """getattr(obj, "x") (or hasattr, setattr, delattr) as the attribute access obj.x, or None."""
    ctx = GETATTR.get(_resolve(call.func, names))
    name = call.args[1] if ctx and len(call.args) >= 2 else None
    if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
        return None
    return ast.copy_location(ast.Attribute(call.args[0], name.value, ctx()), call)


def _dotted_rule(dotted):
    """(kind, note, sure) for a resolved dotted name, or None."""
    parts = dotted.split(".")
    for i in [0] + [i for i in range(1, len(parts)) if parts[i] in GATEWAYS]:
        for j in range(len(parts), i, -1):
            if ".".join(parts[i:j]) in DOTTED:
                return DOTTED[".".join(parts[i:j])]
        if parts[i] in PRIVATE and any(p[:1] == "_" and not _dunder(p) for p in parts[i + 1:]):
            return TAMPERING, PRIVATE[parts[i]], SURE
    if parts[0][:1] == "_" and not _dunder(parts[0]):  # _posixsubprocess, _thread, _testcapi
        return TAMPERING, "the interpreter's internals", SURE
    return None


def _after_allowed(dotted):
    """The parts of a dotted name after its module and after its longest allowed prefix (in
    `eecs598.grad.rel_error`, `grad` is the course package's module, not an attribute)."""
    parts = dotted.split(".")
    start = max([j for j in range(1, len(parts) + 1)
                 if DOTTED.get(".".join(parts[:j]), 0) is None], default=1)
    return parts[start:]


def _alias(node):
    """(name, value) of a simple alias `name = value` or `name := value`, else (None, None)."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        node = ast.NamedExpr(node.targets[0], node.value)
    if isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def _absolute(node, package):
    """The module an ImportFrom names, a relative one made absolute."""
    parts = package.split(".") if package and node.level else []
    parts = parts[:max(len(parts) - node.level + 1, 0)]
    return ".".join(parts + ([node.module] if node.module else []))


def _packages(module):
    """"a.b.c" -> ["a", "a.b", "a.b.c"]: importing a module imports its packages first."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _module_name(file):
    parts = file[:-3].replace("\\", "/").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _kit_copy(file, data):
    """Whether `file` is an unchanged copy of one of the kit's modules (from the release)."""
    path = os.path.join(KIT_ROOT, file)
    if file not in KIT_COPIES or not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return f.read() == data


@functools.lru_cache(maxsize=1)
def _installed():
    """Top-level names of the standard library's modules and of every installed package."""
    return frozenset(sys.stdlib_module_names).union(importlib.metadata.packages_distributions())


class _OwnClasses:
    """What the submission's own classes define, so that `layer.backward(dout)` on an instance
    of the student's `Linear` is the student's method, not torch's."""

    def __init__(self, trees=()):
        self.classes, self.attrs, self.instances = set(), set(), set()
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    self.classes.add(node.name)
                    self.attrs.update(s.name for s in node.body if isinstance(s, DEFS))
                    self.attrs.update(n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
                                      and not isinstance(n.ctx, ast.Load) and self._is_self(n.value))
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and self._new(node.value):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    self.instances.update(ast.unparse(t) for t in targets
                                          if isinstance(t, (ast.Name, ast.Attribute)))

    @staticmethod
    def _is_self(node):
        return isinstance(node, ast.Name) and node.id == "self"

    def _new(self, node):
        func = node.func if isinstance(node, ast.Call) else None
        return isinstance(func, ast.Name) and func.id in self.classes \
            or isinstance(func, ast.Attribute) and func.attr in self.classes  # layers.Linear()

    def owns(self, receiver, name, reader):
        """True when `receiver.attr` is surely the submission's own (an own class defines the
        name and the receiver is `self`, a new instance or a name bound to one), else None."""
        known = self._is_self(receiver) or self._new(receiver) or (
            isinstance(receiver, (ast.Name, ast.Attribute)) and ast.unparse(receiver) in self.instances
            and not (isinstance(receiver, ast.Name) and receiver.id in reader.names))
        return True if known and name in self.attrs else None


class _Reader(ast.NodeVisitor):
    """One file: its import bindings, its findings (each with its owner: "" for module level, a
    top-level function or class, or MAIN) and the names and attributes each owner mentions."""

    def __init__(self, file, tree, own):
        module = _module_name(file)
        self.own = own  # {module name: its bindings} for every file of the submission
        self.shared = _OwnClasses()  # what every file's classes define, set before read()
        self.package = module if file.endswith("__init__.py") else module.rpartition(".")[0]
        self.names, self.modules, self.stars, self.found = {}, set(), [], {}
        self.owner, self.refs, self.attrs, self.functions, self.methods = "", {}, {}, set(), {}
        aliases, self.imports = [], set()  # module names it imports, with their packages
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                child.audit_parent = node
            aliases += [_alias(node)] if _alias(node)[0] else []
            for alias in node.names if isinstance(node, ast.Import) else []:
                local = alias.asname or alias.name.partition(".")[0]
                self.names[local] = alias.name if alias.asname else local
                self.modules.add(local)
                self.imports.update(_packages(alias.name))
            for alias in node.names if isinstance(node, ast.ImportFrom) else []:
                base = _absolute(node, self.package)
                self.imports.update(_packages(base), [f"{base}.{alias.name}".lstrip(".")])
                if alias.name == "*":
                    self.stars.append(base)
                else:
                    self.names[alias.asname or alias.name] = f"{base}.{alias.name}".lstrip(".")
        for _ in range(2):  # an alias of an alias
            for target, value in aliases:
                if _resolve(value, self.names):
                    self.names[target] = _resolve(value, self.names)

    def resolve(self, node):
        """_resolve, following names that the submission's own modules re-export."""
        dotted = _resolve(node, self.names)
        for _ in range(8 if dotted else 0):  # a few hops; a cycle stops here
            parts = dotted.split(".")
            hop = next((i for i in range(len(parts) - 1, 0, -1)
                        if parts[i] in self.own.get(".".join(parts[:i]), {})), None)
            if hop is None:
                break
            dotted = ".".join([self.own[".".join(parts[:hop])][parts[hop]], *parts[hop + 1:]])
        return dotted

    def _own(self, dotted):
        """Whether `dotted` names something in the submission's own modules (not one that
        shadows an installed module: the child has already imported that one)."""
        root = dotted.partition(".")[0]
        return root not in _installed() and root != "grader" \
            and any(m.partition(".")[0] == root for m in self.own)

    def read(self, tree):
        """Record the findings and mentions of each top-level statement under its owner."""
        for stmt in tree.body:
            if isinstance(stmt, ast.If) and ast.unparse(stmt.test).replace('"', "'") in (
                    "__name__ == '__main__'", "'__main__' == __name__"):
                self._visit_as(MAIN, stmt.body)
                self._visit_as("", stmt.orelse)
            elif isinstance(stmt, DEFS):
                self.functions.add(stmt.name)
                self._define(stmt, stmt.name)
            elif isinstance(stmt, ast.ClassDef):
                self.methods[stmt.name] = {s.name for s in stmt.body if isinstance(s, DEFS)}
                self._header(stmt, [*stmt.decorator_list, *stmt.bases, *stmt.keywords])
                for item in stmt.body:  # the class body runs at import; its methods belong to it
                    self._define(item, stmt.name) if isinstance(item, DEFS) else self.visit(item)
            else:
                self.visit(stmt)

    def _define(self, fn, owner):
        """A def's decorators and defaults run at import; its body belongs to `owner`."""
        self._header(fn, [*fn.decorator_list, fn.args, *([fn.returns] if fn.returns else [])])
        self._visit_as(owner, fn.body)

    def _header(self, node, parts):
        if node.decorator_list:  # a decorator receives the def as a value and may call it
            self.refs.setdefault("", set()).add(node.name)
        self._visit_as("", parts)

    def _visit_as(self, owner, nodes):
        saved, self.owner = self.owner, owner
        for node in nodes:
            self.visit(node)
        self.owner = saved

    def _found(self, kind, node, what, sure=None):
        sure = kind != UNVERIFIABLE if sure is None else sure  # unverifiable: never sure
        self.found.setdefault((kind, node.lineno), (what, self.owner, sure))  # one a kind a line

    def _mention(self, names, attr=None):
        self.refs.setdefault(self.owner, set()).update(names)
        self.attrs.setdefault(self.owner, set()).update([attr] if attr else [])

    def visit_Import(self, node):
        self._imported(node, [alias.name for alias in node.names])

    def visit_ImportFrom(self, node):
        base = _absolute(node, self.package)
        subs = [f"{base}.{alias.name}".lstrip(".") for alias in node.names]
        self._imported(node, [base] * bool(base) + [s for s in subs if s in self.own])
        self._mention([a.name for a in node.names if (a.asname or a.name) == ENTRY])
        if "*" in [alias.name for alias in node.names] and base not in self.own:
            self._found(UNVERIFIABLE, node, f"from {base} import * (the names it binds cannot be "
                                            "read)")

    def _imported(self, node, modules):
        """Importing runs a module's top level; a module no one can read is unverifiable."""
        if any(_dunder(alias.asname or "") for alias in node.names):
            self._found(UNVERIFIABLE, node, "import ... as a dunder name")
        for module in modules:
            self._mention(module.split("."))
            root = module.partition(".")[0]
            if root not in KIT_MODULES and root not in _installed() and not self._own(root):
                self._found(UNVERIFIABLE, node, f"import {module} (neither in the submission nor "
                                                "installed: the grader cannot read it)")

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            self._mention([node.id])
            if node.id in self.modules and not self._module_access(node):
                self._found(UNVERIFIABLE, node, f"module {node.id} used as a value (what is "
                                                "called on it cannot be read)")
        self._check(node, self.resolve(node) if isinstance(node.ctx, ast.Load) else None, node.id)

    def _module_access(self, node):
        """An imported module used as `module.x`, `getattr(module, ...)` or `alias = module`."""
        parent = node.audit_parent
        return (isinstance(parent, ast.Attribute) and parent.value is node
                or isinstance(parent, ast.Call) and parent.args[:1] == [node]
                and _resolve(parent.func, self.names) in GETATTR
                or _alias(parent)[1] is node)

    def visit_Attribute(self, node):
        dotted = self.resolve(node)
        self._mention(dotted.split(".") if dotted else [], node.attr)
        self._check(node, dotted, node.attr)
        if dotted is None:
            return self.generic_visit(node)
        while isinstance(node, (ast.Attribute, ast.Call)):  # a resolved chain: only getattr's
            if isinstance(node, ast.Call):                  # defaults remain to be read
                self._visit_as(self.owner, [*node.args[2:], *node.keywords])
            node = node.args[0] if isinstance(node, ast.Call) else node.value

    def _check(self, node, dotted, name):
        rule = self._rule(node, dotted, name, isinstance(node, ast.Attribute), node.audit_parent)
        if rule:
            self._found(rule[0], node, rule[1], rule[2])

    def _rule(self, node, dotted, name, attribute, parent):
        """(kind, what, sure) for one name or attribute access, or None."""
        if dotted and self._own(dotted):  # the submission's own code, read where it stands
            dotted, attribute = None, False
        if attribute and not isinstance(node.ctx, ast.Load) and dotted \
                and not dotted.startswith(WRITABLE):
            return TAMPERING, f"{dotted} = ... (patches {dotted.partition('.')[0]})", SURE
        if attribute and name == "requires_grad" and isinstance(node.ctx, ast.Store) \
                and not _is_const(getattr(parent, "value", None), False):
            return AUTOGRAD, f"{ast.unparse(node)} = True", not SURE
        hit = next((p for p in (_after_allowed(dotted) if dotted else [name] * attribute)
                    if p in ATTRS), None)
        own = hit and not dotted and self.shared.owns(node.value, name, self)
        if own is True:  # a method or field of the submission's own class
            return None
        rule = ATTRS[hit] if hit else dotted and _dotted_rule(dotted)
        if rule and own is None and hit in self.shared.attrs:
            rule = (*rule[:2], not SURE)  # the name is one the submission's classes define too
        plain = STORED_DUNDERS if isinstance(node.ctx, ast.Store) else PLAIN_DUNDERS
        if not rule and _dunder(name) and name not in plain:
            rule = UNVERIFIABLE, "a dunder name: what it reaches cannot be read", not SURE
        if not rule or self._switched_off(node, dotted or name, parent):
            return None
        called = isinstance(parent, ast.Call) and parent.func is getattr(node, "audit_call", node) \
            and not dotted
        shown = dotted.removeprefix("builtins.") if dotted else ast.unparse(node)[:60]
        return rule[0], shown + "()" * called + (f" ({rule[1]})" if rule[1] else ""), rule[2]

    @staticmethod
    def _switched_off(node, name, parent):
        """`torch.set_grad_enabled(False)`, `x.requires_grad_(False)`: autograd switched off."""
        called = isinstance(parent, ast.Call) and parent.func is getattr(node, "audit_call", node)
        values = [*parent.args, *(kw.value for kw in parent.keywords)] if called else []
        return (called and values and all(_is_const(v, False) for v in values)
                and (name in SWITCHES_OFF or name.rpartition(".")[2] in SWITCHES_OFF))

    def visit_Call(self, node):
        func = self.resolve(node.func)
        literal = _literal_attribute(node, self.names)
        if literal is not None:  # read as the attribute access it stands for
            literal.audit_parent, literal.audit_call = node.audit_parent, node
            return self._visit_as(self.owner, [literal, *node.args[2:], *node.keywords])
        if func in GETATTR:
            self._found(UNVERIFIABLE, node, f"{func[9:]} with a computed name")
            return self._visit_as(self.owner, [*node.args, *node.keywords])
        for kind, what, sure in self._call_rules(node, func):
            self._found(kind, node, what, sure)
        self.generic_visit(node)

    @staticmethod
    def _call_rules(node, func):
        values = {kw.arg: kw.value for kw in node.keywords}
        if "requires_grad" in values and not _is_const(values["requires_grad"], False):
            yield AUTOGRAD, "requires_grad=True", not SURE
        if "allow_pickle" in values and not _is_const(values["allow_pickle"], False):
            yield UNVERIFIABLE, "allow_pickle=True (loads code from data)", not SURE
        if func in ("torch.load", "torch.serialization.load") and "weights_only" in values \
                and not _is_const(values["weights_only"], True):  # True by default since 2.6
            yield UNVERIFIABLE, "torch.load without weights_only=True (loads code from data)", \
                not SURE
        if func == "builtins.type" and len(node.args) == 3:
            yield UNVERIFIABLE, "type() with three arguments (builds a class from data)", not SURE
        if func == "torch.inference_mode" and not all(
                _is_const(v, True) for v in [*node.args, *values.values()]):
            yield AUTOGRAD, "torch.inference_mode(False)", not SURE
        first = node.args[0] if node.args else None
        if func in OPENERS and isinstance(first, ast.Constant) and isinstance(first.value, int):
            yield TAMPERING, (f"{func.removeprefix('builtins.')}({first.value}) (writes to "
                              "descriptors it did not open)"), SURE

    def visit_Constant(self, node):
        text = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
        if not isinstance(text, str) or isinstance(node.audit_parent, ast.Expr):
            return  # docstrings and other bare strings do nothing
        if PROC.search(text):
            self._found(TAMPERING, node, f"the path '{text[:40]}' (another process's memory or "
                                         "descriptors)")
        if node.value == "requires_grad":
            self._found(AUTOGRAD, node, "'requires_grad' as a string", not SURE)
        if "WEIGHTS_ONLY" in text:  # TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns torch.load's default
            self._found(UNVERIFIABLE, node, f"'{text[:40]}' (loads code from data)")


def _mains(readers):
    return [f for f in readers if f.rpartition("/")[2] == "two_layer_net.py"] or list(readers)


def _imported_files(readers):
    """The files two_layer_net.py imports, directly or through others: the only ones that run
    when it is graded (an import by a computed name is unverifiable anyway)."""
    files = {_module_name(f): f for f in readers}
    kept, frontier = set(_mains(readers)), _mains(readers)
    while frontier:
        for module in readers[frontier.pop()].imports:
            file = files.get(module)
            if file and file not in kept:
                kept.add(file)
                frontier.append(file)
    return kept


def _reachable(readers, entries):
    """{(file, owner)} that import-time code or the functions `entries` can reach."""
    reached = {(f, "") for f in _mains(readers)} | {(f, e) for f in readers for e in entries} | {
        (f, name) for f, r in readers.items() for name in {*r.functions, *r.methods}
        if _dunder(name)}  # a module's __getattr__ runs when a name is looked up on it
    units = [(f, name, {name}, r.methods.get(name, set())) for f, r in readers.items()
             for name in {*r.functions, *r.methods}]  # reached by its name, or by a method's
    units += [(f, "", {_module_name(f).rpartition(".")[2]}, set()) for f in readers]
    frontier = list(reached)
    while frontier:
        file, owner = frontier.pop()
        attrs = readers[file].attrs.get(owner, set())
        names = readers[file].refs.get(owner, set()) | attrs
        for f, name, by_name, by_method in units:
            if (f, name) not in reached and (by_name & names or by_method & attrs):
                reached.add((f, name))
                frontier.append((f, name))
    return reached


def audit(files):
    """Findings in a submission's .py files ({file name: bytes}); files that do not parse are
    skipped (the import reports their SyntaxError), and so are files that two_layer_net.py does
    not import (they never run) and unchanged copies of the kit's own modules."""
    own, trees, readers, findings, total = {}, {}, {}, [], 0
    for file, data in files.items():
        total += len(data) if file.endswith(".py") else 0
        try:
            if _kit_copy(file, data):
                continue
            if file.endswith(".py") and total > MAX_SOURCE:
                findings.append(Finding(UNVERIFIABLE, file, 1, f"more than {MAX_SOURCE} bytes of "
                                                               "source (too much to read)", True))
            elif file.endswith(".py"):
                with _PARSING:
                    trees[file] = ast.parse(data, filename=file)
                readers[file] = _Reader(file, trees[file], own)
            elif file.endswith(COMPILED):
                findings.append(Finding(UNVERIFIABLE, file, 1, "a compiled module (the grader "
                                                               "cannot read it)", True))
        except (SyntaxError, ValueError):
            continue
        except (RecursionError, MemoryError):
            findings.append(Finding(UNVERIFIABLE, file, 1, DEEP, True))
    readers = {f: readers[f] for f in readers if f in _imported_files(readers)}
    own.update({_module_name(file): reader.names for file, reader in readers.items()})
    shared = _OwnClasses([trees[file] for file in readers])
    for reader in readers.values():
        for base in reader.stars:  # from own_module import *: its names resolve here too
            reader.names = {**own.get(base, {}), **reader.names}
    for file, reader in readers.items():
        reader.shared = shared
        try:
            reader.read(trees[file])
        except (RecursionError, MemoryError):
            reader.found[(UNVERIFIABLE, 1)] = (DEEP, "", False)
    backward, graded = _reachable(readers, (ENTRY,)), _reachable(readers, GRADED)
    for file, reader in readers.items():
        findings += [Finding(kind, file, line, what, (file, owner) in backward, sure,
                             (file, owner) in graded)
                     for (kind, line), (what, owner, sure) in reader.found.items()]
    return sorted(findings, key=lambda f: (f.file != "two_layer_net.py", f.file, f.line))


def flags(findings):
    """Short labels for grades.csv's `flags` column; deduplicated, in the findings' order. Code
    the graded functions cannot reach is labelled so; hidden names there are left out."""
    labels = []
    for f in findings:
        if f.kind == UNVERIFIABLE and not f.in_graded:
            continue
        if f.kind in (AUTOGRAD, NUMERIC):
            where = " in backward pass" if f.in_backward else " outside the backward pass"
        else:
            where = "" if f.in_graded else " outside graded code"
        unsure = "possible " if not f.sure and f.kind != UNVERIFIABLE else ""
        labels.append(f"{unsure}{f.kind}{where} ({f.file}:{f.line} {f.what})")
    return list(dict.fromkeys(labels))


def _listed(findings, template):
    shown = ", ".join(template.format(f=f) for f in findings[:SHOWN])
    return shown + (f" and {len(findings) - SHOWN} more" if len(findings) > SHOWN else "")


def gradient_verdict(findings):
    """None when the gradient tests may be judged on their values; otherwise why they score 0.

    Only SURE findings that graded code reaches cost points: autograd or finite differences in
    nn_forward_backward, tampering in any graded function or at import. The rest are flags."""
    sure = [f for f in findings if f.sure]
    autograd = [f for f in sure if f.kind == AUTOGRAD and f.in_backward]
    numeric = [f for f in sure if f.kind == NUMERIC and f.in_backward]
    tampering = [f for f in sure if f.kind == TAMPERING and f.in_graded]
    if autograd:
        return ("nn_forward_backward used torch.autograd ("
                + _listed(autograd, "{f.what} at {f.file} line {f.line}")
                + "); the gradients must be computed by hand, so the gradient tests score 0")
    if numeric:
        return ("nn_forward_backward computes finite differences ("
                + _listed(numeric, "{f.what} at {f.file} line {f.line}")
                + "), not backpropagation by hand, so the gradient tests score 0")
    if tampering:
        return ("the grader cannot trust its autograd check: "
                + _listed(tampering, "{f.file} line {f.line} uses {f.what}")
                + "; the gradient tests score 0")
    return None
