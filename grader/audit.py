"""Read a submission's source, in the grader's own process, for routes to torch.autograd.

The child that runs a submission watches for autograd too, but the submission runs there as well
and can undo the watch. This audit parses the .py files with `ast` in the grader's process, which
the submission's code never reaches, and reports three kinds of finding:

- autograd: gradients computed by torch (`.backward()`, `torch.autograd`, `torch.func`, `.grad`,
  `requires_grad=True`, dual numbers, hooks, `torch.optim`).
- tampering: reaching the grader's or torch's internals, or leaving the watched process: frames,
  the autograd engine, `torch._C`, gc walks, `sys.modules`, ctypes, patched modules, raw
  descriptors and /proc, signals, sockets, other processes.
- unverifiable: hiding what is called: computed attribute names, eval/exec/compile, dynamic or
  unknown imports, dunder names, star imports, code loaded from data (pickle, torch.load).

Guaranteed: a submission whose backward pass uses autograd through any route visible in its source,
or that hides what it calls anywhere, scores 0 on the gradient tests (`gradient_verdict`). Names
are resolved through imports, the submission's own modules and simple aliases (`import torch as t`,
`g = t.autograd.grad`, `getattr(x, "grad")`), so renaming hides nothing; a local variable that only
shares a name (`grad`, `grads`) is not a finding.
Not seen: autograd inside a third-party library that the submission calls innocently; objects
passed under new names through containers or arguments (modules may not be passed at all); a
descriptor number held in a variable and given to open(); code the submission writes to files at
run time, caught only by the exec and import rules (importing a module that is neither the
submission's, the standard library's nor installed is unverifiable). Threads are not flagged: they
run the submission's own code, read here, in the process the run-time watch covers.

A finding is in the backward pass when it lies at module level (import-time code runs before every
test) or in a top-level function or class reachable from nn_forward_backward: by name (called,
passed as a value or decorated), as `module.name` of an own module, or as `obj.method` when a class
of the submission defines `method`. Code under `if __name__ == "__main__":` is not reachable.
"""
import ast
import builtins
import functools
import importlib.metadata
import re
import sys
from dataclasses import dataclass

AUTOGRAD, TAMPERING, UNVERIFIABLE = "autograd", "tampering", "unverifiable"
ENTRY = "nn_forward_backward"
MAIN = "__main__"  # the owner of code under `if __name__ == "__main__":`, which nothing reaches
GRADER_MODULES = {"linear_classifier"}  # the grader supplies it when the submission has none
COMPILED = (".so", ".pyd", ".pyc")  # importable, but not source this audit can read
DEEP = "code nested too deeply to read"
SHOWN = 3  # findings named in a verdict


@dataclass(frozen=True)
class Finding:
    """One route the audit found, where, and whether nn_forward_backward can reach it."""
    kind: str  # AUTOGRAD, TAMPERING or UNVERIFIABLE
    file: str
    line: int
    what: str  # student-readable: "loss.backward()", "sys._getframe (walks the grader's call stack)"
    in_backward: bool


def _rules(kind, note, names):
    return {name: (kind, note) for name in names.split()}


STACK = "walks the grader's call stack"
_SPAWN = " ".join(f"os.{verb}{tail}" for verb in ("exec", "spawn")
                  for tail in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe"))
# Resolved dotted names, matched from any component on; the longest match decides; None allows.
DOTTED = {
    **_rules(AUTOGRAD, "", "torch.autograd torch.func functorch torch.optim torch.enable_grad "
                           "torch.set_grad_enabled torch.nn.utils.stateless"),
    **dict.fromkeys("torch.autograd.no_grad torch.autograd.grad_mode.no_grad torch.signal "
                    "types.SimpleNamespace gc.collect".split()),
    **_rules(TAMPERING, STACK, "sys._getframe sys._current_frames sys._current_exceptions "
             "sys.settrace sys.setprofile sys.last_traceback sys.monitoring threading.settrace "
             "threading.setprofile threading.settrace_all_threads threading.setprofile_all_threads "
             "inspect traceback.walk_stack traceback.walk_tb builtins.breakpoint pdb bdb"),
    **_rules(TAMPERING, "reaches objects the grader owns", "sys.modules sys.meta_path "
             "sys.path_hooks sys.path_importer_cache sys.addaudithook gc unittest.mock mock"),
    **_rules(TAMPERING, "reads or writes memory directly", "ctypes _ctypes cffi mmap"),
    **_rules(TAMPERING, "torch's internals", "torch.ops torch.library"),
    **_rules(TAMPERING, "runs code in another process, out of the grader's watch", "subprocess "
             "multiprocessing torch.multiprocessing torch.distributed pty os.system os.popen "
             "os.fork os.forkpty os.posix_spawn os.posix_spawnp asyncio.create_subprocess_exec "
             "asyncio.create_subprocess_shell concurrent.futures.ProcessPoolExecutor " + _SPAWN),
    **_rules(TAMPERING, "writes to descriptors it did not open", "os.write os.writev os.pwrite "
             "os.pwritev os.dup os.dup2 os.fdopen os.sendfile os.openpty"),
    **_rules(TAMPERING, "signals or leaves the grader's processes", "os.kill os.killpg os.setsid "
             "os.setpgid os.setpgrp os.pidfd_open signal"),
    **_rules(TAMPERING, "opens a network connection", "socket"),
    **_rules(UNVERIFIABLE, "runs code from a string", "builtins.eval builtins.exec "
             "builtins.compile code codeop timeit doctest runpy cProfile profile trace torch.jit "
             "torch.fx torch.utils.cpp_extension"),
    **_rules(UNVERIFIABLE, "imports by a computed name", "builtins.__import__ importlib imp "
             "pkgutil pydoc zipimport torch.hub"),
    **_rules(UNVERIFIABLE, "loads code from data", "pickle _pickle cPickle marshal dill "
             "cloudpickle shelve joblib copyreg torch.package torch.export"),
    **_rules(UNVERIFIABLE, "looks objects up by computed names", "builtins.globals builtins.vars "
             "builtins.locals operator.attrgetter operator.methodcaller string.Formatter "
             "torch.overrides"),
    **_rules(UNVERIFIABLE, "builds functions or classes from data", "types"),
    **_rules(UNVERIFIABLE, "passed as a value, so the name it reaches cannot be read",
             "builtins.getattr builtins.setattr builtins.delattr builtins.hasattr"),
}
PRIVATE = {"torch": "torch's internals", "sys": "the interpreter's internals"}  # x._anything
# Attribute names that mean the same on any object.
ATTRS = {
    **_rules(AUTOGRAD, "", "backward grad _grad grad_fn _grad_fn requires_grad_ retain_grad "
             "register_hook register_post_accumulate_grad_hook register_backward_hook "
             "register_full_backward_hook register_full_backward_pre_hook make_dual unpack_dual "
             "dual_level forward_ad"),
    **_rules(TAMPERING, "torch's autograd engine", "_execution_engine run_backward"),
    **_rules(TAMPERING, STACK, "f_back f_locals f_globals f_builtins f_code f_trace tb_frame "
             "tb_next gi_frame cr_frame ag_frame __traceback__"),
}
GETATTR = {"builtins.getattr": ast.Load, "builtins.hasattr": ast.Load,
           "builtins.setattr": ast.Store, "builtins.delattr": ast.Del}
OPENERS = {"builtins.open", "io.open", "io.FileIO", "os.open"}
PLAIN_DUNDERS = {"__init__", "__name__", "__doc__", "__file__", "__version__", "__all__",
                 "__qualname__"}
WRITABLE = ("torch.backends.",)  # settings a submission may change: they reach no gradient
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
    """(kind, note) for a resolved dotted name, or None."""
    parts = dotted.split(".")
    for i in range(len(parts)):
        for j in range(len(parts), i, -1):
            if ".".join(parts[i:j]) in DOTTED:
                return DOTTED[".".join(parts[i:j])]
        if parts[i] in PRIVATE and any(p[:1] == "_" and not _dunder(p) for p in parts[i + 1:]):
            return TAMPERING, PRIVATE[parts[i]]
    return None


def _alias(node):
    """(name, value) of a simple alias `name = value` or `name := value`, else (None, None)."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        node = ast.NamedExpr(node.targets[0], node.value)
    if isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def _absolute(node, package):
    """The module an ImportFrom names, a relative one made absolute."""
    parts = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
    return ".".join([p for p in parts if p] + ([node.module] if node.module else []))


def _module_name(file):
    parts = file[:-3].replace("\\", "/").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=1)
def _installed():
    return frozenset(sys.stdlib_module_names) | frozenset(importlib.metadata.packages_distributions())


class _Reader(ast.NodeVisitor):
    """One file: its import bindings, its findings (each with its owner: "" for module level, a
    top-level function or class, or MAIN) and the names and attributes each owner mentions."""

    def __init__(self, file, tree, own):
        module = _module_name(file)
        self.own = own  # {module name: its bindings} for every file of the submission
        self.package = module if file.endswith("__init__.py") else module.rpartition(".")[0]
        self.names, self.modules, self.stars, self.found = {}, set(), [], {}
        self.owner, self.refs, self.attrs, self.functions, self.methods = "", {}, {}, set(), {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                child.audit_parent = node
            for alias in node.names if isinstance(node, ast.Import) else []:
                local = alias.asname or alias.name.partition(".")[0]
                self.names[local] = alias.name if alias.asname else local
                self.modules.add(local)
            for alias in node.names if isinstance(node, ast.ImportFrom) else []:
                base = _absolute(node, self.package)
                if alias.name == "*":
                    self.stars.append(base)
                else:
                    self.names[alias.asname or alias.name] = f"{base}.{alias.name}"
        for _ in range(2):  # an alias of an alias
            for target, value in map(_alias, ast.walk(tree)):
                if target and _resolve(value, self.names):
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
        return root not in _installed() and any(m.partition(".")[0] == root for m in self.own)

    def read(self, tree):
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

    def _found(self, kind, node, what):
        self.found.setdefault((kind, node.lineno), (what, self.owner))  # one of a kind a line

    def _mention(self, names, attr=None):
        self.refs.setdefault(self.owner, set()).update(names)
        self.attrs.setdefault(self.owner, set()).update([attr] if attr else [])

    def visit_Import(self, node):
        self._imported(node, [alias.name for alias in node.names])

    def visit_ImportFrom(self, node):
        base = _absolute(node, self.package)
        subs = [f"{base}.{alias.name}".lstrip(".") for alias in node.names]
        self._imported(node, [base] * bool(base) + [s for s in subs if s in self.own])
        if "*" in [alias.name for alias in node.names] and base not in self.own:
            self._found(UNVERIFIABLE, node, f"from {base} import * (the names it binds cannot be "
                                            "read)")

    def _imported(self, node, modules):
        """Importing runs a module's top level; a module no one can read is unverifiable."""
        for module in modules:
            self._mention(module.split("."))
            root = module.partition(".")[0]
            if not any(m.partition(".")[0] == root for m in self.own) \
                    and root not in GRADER_MODULES and root not in _installed():
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
        if dotted is None:  # a resolved chain holds nothing more to read
            self.generic_visit(node)

    def _check(self, node, dotted, name):
        rule = self._rule(node, dotted, name, isinstance(node, ast.Attribute), node.audit_parent)
        if rule:
            self._found(rule[0], node, rule[1])

    def _rule(self, node, dotted, name, attribute, parent):
        """(kind, what) for one name or attribute access, or None."""
        if dotted and self._own(dotted):  # the submission's own code, read where it stands
            dotted, attribute = None, False
        if attribute and not isinstance(node.ctx, ast.Load) and dotted \
                and not dotted.startswith(WRITABLE):
            return TAMPERING, f"{dotted} = ... (patches {dotted.partition('.')[0]})"
        if attribute and name == "requires_grad" and isinstance(node.ctx, ast.Store) \
                and not _is_const(getattr(parent, "value", None), False):
            return AUTOGRAD, f"{ast.unparse(node)} = True"
        own_method = attribute and isinstance(node.value, ast.Name) and node.value.id == "self" \
            and name in self.methods.get(self.owner, ())
        hit = next((p for p in (dotted.split(".")[1:] if dotted else [name] * attribute)
                    if p in ATTRS), None)
        rule = ATTRS[hit] if hit and not own_method else dotted and _dotted_rule(dotted)
        if not rule and _dunder(name) and name not in PLAIN_DUNDERS:
            rule = UNVERIFIABLE, "a dunder name: what it reaches cannot be read"
        if not rule:
            return None
        called = isinstance(parent, ast.Call) and parent.func is getattr(node, "audit_call", node) \
            and not dotted
        shown = dotted.removeprefix("builtins.") if dotted else ast.unparse(node)[:60]
        return rule[0], shown + "()" * called + (f" ({rule[1]})" if rule[1] else "")

    def visit_Call(self, node):
        func = self.resolve(node.func)
        literal = _literal_attribute(node, self.names)
        if literal is not None:  # read as the attribute access it stands for
            literal.audit_parent, literal.audit_call = node.audit_parent, node
            return self._visit_as(self.owner, [literal, *node.args[2:], *node.keywords])
        if func in GETATTR:
            self._found(UNVERIFIABLE, node, f"{func[9:]} with a computed name")
            return self._visit_as(self.owner, [*node.args, *node.keywords])
        for kind, what in self._call_rules(node, func):
            self._found(kind, node, what)
        self.generic_visit(node)

    @staticmethod
    def _call_rules(node, func):
        values = {kw.arg: kw.value for kw in node.keywords}
        if "requires_grad" in values and not _is_const(values["requires_grad"], False):
            yield AUTOGRAD, "requires_grad=True"
        if "allow_pickle" in values and not _is_const(values["allow_pickle"], False):
            yield UNVERIFIABLE, "allow_pickle=True (loads code from data)"
        if func in ("torch.load", "torch.serialization.load") \
                and not _is_const(values.get("weights_only"), True):
            yield UNVERIFIABLE, "torch.load without weights_only=True (loads code from data)"
        if func == "builtins.type" and len(node.args) == 3:
            yield UNVERIFIABLE, "type() with three arguments (builds a class from data)"
        if func == "torch.inference_mode" and not all(
                _is_const(v, True) for v in [*node.args, *values.values()]):
            yield AUTOGRAD, "torch.inference_mode(False)"
        first = node.args[0] if node.args else None
        if func in OPENERS and isinstance(first, ast.Constant) and isinstance(first.value, int):
            yield TAMPERING, (f"{func.removeprefix('builtins.')}({first.value}) (writes to "
                              "descriptors it did not open)")

    def visit_Constant(self, node):
        text = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
        if not isinstance(text, str) or isinstance(node.audit_parent, ast.Expr):
            return  # docstrings and other bare strings do nothing
        if PROC.search(text):
            self._found(TAMPERING, node, f"the path '{text[:40]}' (another process's memory or "
                                         "descriptors)")
        if node.value == "requires_grad":
            self._found(AUTOGRAD, node, "'requires_grad' as a string")


def _reachable(readers):
    """{(file, owner)} that import-time code or nn_forward_backward can reach."""
    mains = [f for f in readers if f.rpartition("/")[2] == "two_layer_net.py"] or list(readers)
    reached = {(f, "") for f in mains} | {(f, ENTRY) for f in readers}
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
    skipped (the import reports their SyntaxError)."""
    own, trees, readers, findings = {}, {}, {}, []
    for file, data in files.items():
        try:
            if file.endswith(".py"):
                trees[file] = ast.parse(data, filename=file)
                readers[file] = _Reader(file, trees[file], own)
            elif file.endswith(COMPILED):
                findings.append(Finding(UNVERIFIABLE, file, 1, "a compiled module (the grader "
                                                               "cannot read it)", True))
        except (SyntaxError, ValueError):
            continue
        except (RecursionError, MemoryError):
            findings.append(Finding(UNVERIFIABLE, file, 1, DEEP, True))
    own.update({_module_name(file): reader.names for file, reader in readers.items()})
    for reader in readers.values():
        for base in reader.stars:  # from own_module import *: its names resolve here too
            reader.names = {**own.get(base, {}), **reader.names}
    for file, reader in readers.items():
        try:
            reader.read(trees[file])
        except (RecursionError, MemoryError):
            reader.found[(UNVERIFIABLE, 1)] = (DEEP, "")
    reached = _reachable(readers)
    for file, reader in readers.items():
        findings += [Finding(kind, file, line, what, (file, owner) in reached)
                     for (kind, line), (what, owner) in reader.found.items()]
    return sorted(findings, key=lambda f: (f.file != "two_layer_net.py", f.file, f.line))


def flags(findings):
    """Short labels for grades.csv's `flags` column; deduplicated, in the findings' order."""
    labels = []
    for f in findings:
        kind = f.kind if f.kind != AUTOGRAD else (
            "autograd in backward pass" if f.in_backward else "autograd outside the backward pass")
        labels.append(f"{kind} ({f.file}:{f.line} {f.what})")
    return list(dict.fromkeys(labels))


def _listed(findings, template):
    shown = ", ".join(template.format(f=f) for f in findings[:SHOWN])
    return shown + (f" and {len(findings) - SHOWN} more" if len(findings) > SHOWN else "")


def gradient_verdict(findings):
    """None when the gradient tests may be judged on their values; otherwise why they score 0."""
    autograd = [f for f in findings if f.kind == AUTOGRAD and f.in_backward]
    tampering = [f for f in findings if f.kind == TAMPERING]
    hidden = [f for f in findings if f.kind == UNVERIFIABLE]
    if autograd:
        return ("nn_forward_backward used torch.autograd ("
                + _listed(autograd, "{f.what} at {f.file} line {f.line}")
                + "); the gradients must be computed by hand, so the gradient tests score 0")
    if tampering:
        return ("the grader cannot trust its autograd check: "
                + _listed(tampering, "{f.file} line {f.line} uses {f.what}")
                + "; the gradient tests score 0")
    if hidden:
        return ("the grader cannot verify by reading it that the backward pass is by hand: "
                + _listed(hidden, "{f.file} line {f.line} uses {f.what}")
                + "; write it out plainly (the gradient tests score 0 until then)")
    return None
