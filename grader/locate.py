"""Where a submission computes what a failed test checks: the line(s), for the feedback.

Runs in the grader's own process, on the source (`ast`, parsed under the audit's lock: Python
3.11's parser is not safe from two threads), never in the process that runs the submission. For
each rubric test it finds the statements that produce the quantity the test judges:

- `grad_X`: the assignment of grads['X'] in nn_forward_backward (a subscript store, a dict
  literal or `dict(X=...)`, `grads.update(...)`), where grads is the dict the function returns;
- `forward`: nn_forward_pass's return and the lines that assign what it returns;
- `loss` (and `loss_stability`, unless it is about a gradient): the lines that compute the loss
  nn_forward_backward returns;
- `train_update`: the update of params in nn_train (`params[k] -= ...`, re-bound, in-place
  methods, a loop over params' values), with the loop that chooses the keys; or, when the test
  is about loss_func's calls, those calls;
- `train_schedule`: the decay of the learning rate and the `if` that times it, the appends to a
  history, or loss_func's calls, whichever the message is about;
- `predict`: nn_predict's return and the lines that assign what it returns.

From there it follows simple aliases back (`grads['b2'] = db2`, then `db2 = ...`; a sum of names
such as `loss = data_loss + reg_loss`), at most ALIAS_HOPS steps, and into the submission's own
helpers (a function of its own, a method of its own class such as `fc2.backward(dscores)` where
`fc2 = Linear(...)`), saying so: "in Linear.backward (layers.py), line 12". A method found only
by its name (one class of the submission defines it, the object's class is unknown) is marked
"probably". Nothing located means no line is shown: never a wrong line.
"""
import ast
import re
from dataclasses import dataclass

from grader import audit

MODULE = "two_layer_net.py"
ALIAS_HOPS = 2  # `grads['b2'] = db2` then `db2 = g` then `g = ...`: longer chains are rare
HELPER_DEPTH = 2  # nn_forward_backward -> backward helper -> a layer's method
MAX_PLACES = 5  # lines named in one message; more are counted ("and 3 more")
MAX_CODE = 80  # characters of one quoted source line
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
SCOPES = DEFS + (ast.ClassDef,)
PARAM_NAMES = ("W1", "b1", "W2", "b2")
# Calls that change a value's type or copy it, not what it is: a line computing dW1 is where
# `grads['W1'] = torch.from_numpy(dW1)` gets its value.
CONVERSIONS = {"from_numpy", "tensor", "as_tensor", "asarray", "array", "clone", "copy",
               "detach", "contiguous", "float", "double", "to", "type", "type_as", "numpy"}
ARRAY_MODULES = {"torch", "np", "numpy"}
EMPTY = (None, 0, 0.0, "")  # `self.grad = None` in __init__ is no computation
HEADED = (ast.If, ast.While, ast.For, ast.AsyncFor, ast.With, ast.AsyncWith) + SCOPES
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

# A failure about a value the grader saw (not an exception, whose traceback names its line
# already, nor a timeout or the audit's verdict, which are about the whole function).
_VALUE = re.compile(r"relative error|has shape|has dtype|NaN or inf|not the argmax|did not change"
                    r"|moved up the gradient|without the learning rate|subtracted"
                    r"|stepped with learning rate|stats\['|loss_func (received|was called)"
                    r"|could not be followed")
_NOT_A_VALUE = re.compile(r" raised |torch\.autograd|finite differences|cannot trust"
                          r"|returned no grads|^not graded|timed out|memory limit")


def value_failure(message):
    """Whether a failed test's message is about a value the grader judged (so a line computing
    that value is worth naming)."""
    return bool(_VALUE.search(message or "")) and not _NOT_A_VALUE.search(message or "")


@dataclass(frozen=True)
class Place:
    file: str
    line: int
    code: str
    where: str = ""  # "in Linear.backward" when not in the tested function itself


class _Function:
    """One function's statements (nested blocks included, nested defs not), each with the
    compound statements around it."""

    def __init__(self, file, node, label, cls=None):
        self.file, self.node, self.label = file, node, label
        self.cls = cls  # the class of a method, else None
        self.args = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
        self.parents = {}
        self._visit(node.body, ())
        self.statements = sorted(self.parents, key=lambda s: (s.lineno, s.col_offset))

    def _visit(self, body, parents):
        for stmt in body:
            self.parents[stmt] = parents
            if isinstance(stmt, SCOPES):
                continue
            for name in ("body", "orelse", "finalbody"):
                inner = getattr(stmt, name, None)
                if isinstance(inner, list):
                    self._visit(inner, parents + (stmt,))
            for handler in getattr(stmt, "handlers", ()):
                self._visit(handler.body, parents + (stmt,))
            for case in getattr(stmt, "cases", ()):
                self._visit(case.body, parents + (stmt,))

    def returns(self):
        return [s for s in self.statements if isinstance(s, ast.Return) and s.value is not None]


def _header_nodes(stmt):
    """The expressions of a statement itself (a compound statement's header only)."""
    if isinstance(stmt, (ast.If, ast.While)):
        roots = [stmt.test]
    elif isinstance(stmt, (ast.For, ast.AsyncFor)):
        roots = [stmt.target, stmt.iter]
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        roots = [i.context_expr for i in stmt.items]
    elif isinstance(stmt, SCOPES) or hasattr(stmt, "handlers") or hasattr(stmt, "cases"):
        roots = []
    else:
        roots = [stmt]
    for root in roots:
        yield from ast.walk(root)


def _root(node):
    """The name at the root of `a[k].b`, or None."""
    while isinstance(node, (ast.Subscript, ast.Attribute, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _targets(stmt):
    if isinstance(stmt, ast.Assign):
        return stmt.targets
    if isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        return [stmt.target]
    return []


def _flat(target, value):
    """[(target, paired value, (index, length) or None)] of one assignment target: a tuple
    target against a tuple value pairs element by element; against another value (a call) it
    keeps the index, to pair with what the call returns."""
    if isinstance(target, (ast.Tuple, ast.List)):
        if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
            return [p for t, v in zip(target.elts, value.elts) for p in _flat(t, v)]
        return [(t, value, (i, len(target.elts))) for i, t in enumerate(target.elts)]
    return [(target, value, None)]


def _pairs(stmt):
    value = getattr(stmt, "value", None)
    return [p for t in _targets(stmt) for p in _flat(t, value)]


def _const(node):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _in_place_call(node):
    """`x.sub_(...)`, `x[k].mul_(...)`: torch's in-place methods end in one underscore."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr.endswith("_") and not node.func.attr.startswith("_"))


def _literal(container, key):
    """[(where the entry starts, its value)] for `key` in a dict literal (`{'W1': dW1}`,
    `dict(W1=dW1)`), or None when `container` is no dict literal or lacks the key."""
    if isinstance(container, ast.Dict):
        return [(k, v) for k, v in zip(container.keys, container.values)
                if _const(k) == key] or None
    if (isinstance(container, ast.Call) and isinstance(container.func, ast.Name)
            and container.func.id == "dict"):
        return [(kw, kw.value) for kw in container.keywords if kw.arg == key] or None
    return None


def _empty(node):
    """`None`, `0`, `{}`, `[]`: an initial value, not a computation."""
    return (isinstance(node, ast.Constant) and node.value in EMPTY) or (
        isinstance(node, (ast.Dict, ast.List, ast.Tuple)) and not getattr(
            node, "keys", getattr(node, "elts", None)))


def _leaves(node):
    """The names (`dW1`) and own objects' attributes (`fc1.dW`, `fc1.grad['W']`) of a sum of
    them and constants (`data_loss + reg_loss`); None for anything else (a call, a product:
    `h.T @ dscores` is computed on its own line, not on the lines of h and dscores)."""
    if isinstance(node, ast.Name):
        return [node]
    if isinstance(node, ast.Constant):
        return []
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return [node]
    if (isinstance(node, ast.Subscript) and isinstance(node.value, (ast.Name, ast.Attribute))
            and _root(node.value) and _const(node.slice) is not None):
        return [node]  # fc1.grad['W'] (followed), params['W1'] (an input: not followed)
    if isinstance(node, ast.UnaryOp):
        return _leaves(node.operand)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        left, right = _leaves(node.left), _leaves(node.right)
        return None if left is None or right is None else left + right
    return None


def _converted(node):
    """The expression a conversion wraps (`torch.from_numpy(dW1)`, `dW1.clone()`,
    `torch.tensor(dW1).to(X.dtype)` -> dW1); other expressions as they are."""
    while isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name not in CONVERSIONS:
            break
        if isinstance(func, ast.Attribute) and not (
                isinstance(func.value, ast.Name) and func.value.id in ARRAY_MODULES):
            node = func.value
        elif node.args:
            node = node.args[0]
        else:
            break
    return node


def _rebinds(node, name):
    """Whether a top-level statement binds `name` other than by a def at the top level (an
    assignment, an import, a def under an `if` or `try`): then which code runs is not read."""
    pending = [node]
    while pending:
        inner = pending.pop()
        if isinstance(inner, SCOPES):
            if inner.name == name:
                return True
            continue  # what a def or class binds inside is its own
        if isinstance(inner, ast.Name) and inner.id == name and isinstance(inner.ctx, ast.Store):
            return True
        if isinstance(inner, ast.alias) and (inner.asname or inner.name) == name:
            return True
        pending.extend(ast.iter_child_nodes(inner))
    return False


def _short(code):
    """Source code as one short, printable line (it is quoted between backquotes)."""
    code = " ".join(code.split())
    code = "".join(c if c.isprintable() else "?" for c in code).replace("`", "'")
    return code if len(code) <= MAX_CODE else code[:MAX_CODE - 1] + "…"


def _where(helper, caller, guess=""):
    """"in Linear.backward", "in Linear.backward (layers.py)", or, for a method found by its
    name alone, "probably in Linear.backward (the only class with a method backward)"."""
    notes = [helper.file] if helper.file != caller.file else []
    notes += [guess] if guess else []
    return ("probably in " if guess else "in ") + helper.label + (
        f" ({'; '.join(notes)})" if notes else "")


class Source:
    """A submission's parsed .py files and what its own modules and classes define."""

    def __init__(self, files):
        self.text, self.trees = {}, {}
        total = sum(len(v) for k, v in files.items() if k.endswith(".py"))
        if total > audit.MAX_SOURCE:
            return
        for file, data in files.items():
            if not file.endswith(".py"):
                continue
            try:
                text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
                with audit._PARSING:
                    self.trees[file] = ast.parse(text, filename=file)
                self.text[file] = text
            except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
                continue
        self.modules = {file[:-3].replace("/", "."): file for file in self.trees}
        self.classes = {}
        for file in sorted(self.trees, key=lambda f: f == MODULE):  # the module's own win
            for node in self.trees[file].body:
                if isinstance(node, ast.ClassDef):
                    self.classes[node.name] = (file, node)

    # Finding functions

    def function(self, name, file=MODULE, seen=()):
        """The top-level def of `name` in `file` (the last one: it wins at import), or one that
        `file` imports from an own module by that name; a _Function or None."""
        tree = self.trees.get(file)
        if tree is None or (name, file) in seen:
            return None
        found = None
        for node in tree.body:
            if isinstance(node, DEFS) and node.name == name:
                found = _Function(file, node, name)
            elif isinstance(node, ast.ImportFrom) and node.module in self.modules:
                for alias in node.names:
                    if (alias.asname or alias.name) == name and self.modules[node.module] != file:
                        found = self.function(alias.name, self.modules[node.module],
                                              seen + ((name, file),))
            elif _rebinds(node, name):
                found = None  # bound another way (assigned, imported, under an if): not read
        return found

    def _method(self, cls, name):
        file, node = self.classes[cls]
        for item in node.body:
            if isinstance(item, DEFS) and item.name == name:
                return _Function(file, item, f"{cls}.{name}", cls)
        return None

    def _class_of(self, fn, name):
        """The own class of the object `name` in `fn`, from `name = Cls(...)` there or at the
        module's top level; None when it is not known."""
        scopes = [fn.statements, self.trees[fn.file].body]
        for statements in scopes:
            for stmt in reversed(statements):
                for target, value, _ in _pairs(stmt):
                    if not (isinstance(target, ast.Name) and target.id == name
                            and isinstance(value, ast.Call)):
                        continue
                    func = value.func
                    if isinstance(func, ast.Name) and func.id in self.classes:
                        return func.id
                    if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                            and self._own_module(fn.file, func.value.id)
                            and func.attr in self.classes):
                        return func.attr
        return None

    def callee(self, fn, call):
        """(_Function, guess) for a call of the submission's own function or method, or None."""
        func = call.func
        if isinstance(func, ast.Name):
            found = self.function(func.id, fn.file)
            if found is None and func.id in self.classes:
                found = self._method(func.id, "__init__")
            return (found, False) if found else None
        if not isinstance(func, ast.Attribute):
            return None
        base = func.value.id if isinstance(func.value, ast.Name) else None
        module = base and self._own_module(fn.file, base)
        if module:
            found = self.function(func.attr, module)
            return (found, False) if found else None
        cls = base and self._class_of(fn, base)
        if cls:
            found = self._method(cls, func.attr)
            return (found, False) if found else None
        owners = [c for c in self.classes if self._method(c, func.attr)]
        if len(owners) == 1 and base != "self":
            return self._method(owners[0], func.attr), True
        return None

    def _own_module(self, file, name):
        for node in self.trees[file].body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if (alias.asname or alias.name) == name and alias.name in self.modules:
                        return self.modules[alias.name]
        return None

    # Places

    def place(self, fn, stmt, where=""):
        """Where `stmt` is, with its code (a compound statement's or a def's first line)."""
        text = self.text[fn.file]
        code = None
        if not isinstance(stmt, HEADED):
            code = ast.get_source_segment(text, stmt)
        if code is None:
            code = _LINE_BREAK.split(text)[stmt.lineno - 1]  # the lines as ast counts them
        return Place(fn.file, stmt.lineno, _short(code), where)

    def entry_place(self, fn, stmt, start, value, where):
        """The statement, when it is one short line; else the entry itself (`'b2': db2`)."""
        whole = self.place(fn, stmt, where)
        if stmt.lineno == stmt.end_lineno and not whole.code.endswith("…"):
            return whole
        text = self.text[fn.file]
        code = ast.get_source_segment(text, start) or ""  # W1=dW1 (a keyword), or 'W1' (a key)
        if not isinstance(start, ast.keyword):
            code += ": " + (ast.get_source_segment(text, value) or "")
        return Place(fn.file, start.lineno, _short(code), where)

    def bindings(self, fn, name, before=None):
        """The statements of `fn` that bind or change `name` (assigned, augmented, an element
        or attribute stored, an in-place method called), those before line `before` if any."""
        found = []
        for stmt in fn.statements:
            stores = any(_root(t) == name and (isinstance(t, ast.Name) or not isinstance(
                stmt, ast.AnnAssign) or stmt.value is not None) for t, _, _ in _pairs(stmt))
            stores = stores or any(_in_place_call(n) and _root(n.func.value) == name
                                   for n in _header_nodes(stmt) if not isinstance(stmt, SCOPES))
            if stores:
                found.append(stmt)
        earlier = [s for s in found if before is None or s.lineno < before]
        return earlier or found

    def follow(self, fn, value, pairing, hops, line, where, depth):
        """Places that compute `value` (an expression of `fn`): the bindings of the names it is
        made of (a plain alias, a conversion such as `torch.from_numpy(dW1)`, or arithmetic of
        names), the stores of an own object's attribute (`fc1.grad['W']`), or what an own helper
        it calls returns."""
        if value is None or hops <= 0:
            return []
        if isinstance(value, ast.Call) and self.callee(fn, value):
            return self.through_call(fn, value, pairing, depth)
        value = _converted(value)
        leaves = _leaves(value) if pairing is None else None
        if not leaves:
            return []
        places = []
        for leaf in leaves:
            if not isinstance(leaf, ast.Name):
                attribute = leaf if isinstance(leaf, ast.Attribute) else leaf.value
                if isinstance(attribute, ast.Attribute) and isinstance(attribute.value, ast.Name):
                    places += self.attribute(fn, attribute)
                continue
            if leaf.id in fn.args:
                continue
            for stmt in self.bindings(fn, leaf.id, line):
                pairs = [(v, p) for t, v, p in _pairs(stmt)
                         if isinstance(t, ast.Name) and t.id == leaf.id and not (isinstance(
                             stmt, ast.AugAssign) and not isinstance(stmt.op, (ast.Add, ast.Sub)))]
                if pairs and self._unpacks_input(fn, pairs[0][0]):
                    continue  # W1 = params['W1']: an input, not a computation
                places.append(self.place(fn, stmt, where))
                for v, p in pairs:
                    places += self.follow(fn, v, p, hops - 1, stmt.lineno, where, depth)
        return places

    @staticmethod
    def _unpacks_input(fn, value):
        """`params['W1']`, `params.get('W1')`, `dict.__getitem__(params, 'W1')`."""
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and \
                value.func.attr in ("get", "__getitem__"):
            value = value.args[0] if value.func.attr == "__getitem__" and value.args \
                else value.func.value
        return isinstance(value, (ast.Subscript, ast.Attribute, ast.Name)) and \
            _root(value) in fn.args

    def through_call(self, fn, call, pairing, depth):
        """What an own helper returns for this call (its `index` of `length` when the call's
        result is unpacked), in the helper, said so."""
        found = self.callee(fn, call) if depth > 0 else None
        if not found:
            return []
        helper, guess = found
        where = _where(helper, fn, guess and f"the only class with a method {helper.node.name}")
        places = []
        for stmt in helper.returns():
            value = stmt.value
            if pairing is not None:
                index, length = pairing
                if not (isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == length):
                    continue
                value = value.elts[index]
            inner = self.follow(helper, value, None, ALIAS_HOPS, stmt.lineno, where, depth - 1)
            places += inner or [self.place(helper, stmt, where)]
        return places or [self.place(helper, helper.node, where)]

    def attribute(self, fn, value):
        """`fc2.dW` where fc2 is an object of an own class: the stores of `self.dW` there."""
        cls = fn.cls if value.value.id == "self" else self._class_of(fn, value.value.id)
        owners = [cls] if cls else [c for c in self.classes if self._stores_attr(c, value.attr)]
        if len(owners) != 1 or not self._stores_attr(owners[0], value.attr):
            return []
        stores = self._stores_attr(owners[0], value.attr)
        computed = [(m, s) for m, s in stores if not _empty(s.value)]
        places = []
        for method, stmt in computed or stores:
            where = _where(method, fn, not cls and f"the only class that sets self.{value.attr}")
            places.append(self.place(method, stmt, where))
        return places

    def _stores_attr(self, cls, attr):
        file, node = self.classes[cls]
        found = []
        for item in node.body:
            if isinstance(item, DEFS):
                method = _Function(file, item, f"{cls}.{item.name}", cls)
                for stmt in method.statements:
                    if any(isinstance(t, ast.Attribute) and t.attr == attr and _root(t) == "self"
                           for t, _, _ in _pairs(stmt)):
                        found.append((method, stmt))
        return found

    def returned(self, fn, index, length=2):
        """The expressions `fn` returns at `index` of its `length`-tuples, with their returns."""
        out = []
        for stmt in fn.returns():
            if isinstance(stmt.value, (ast.Tuple, ast.List)) and len(stmt.value.elts) == length:
                out.append((stmt, stmt.value.elts[index]))
        return out

    def entry(self, fn, container, key, where="", depth=HELPER_DEPTH, hops=ALIAS_HOPS,
              stmt=None):
        """Places where the dict `container` (an expression of `fn`, in its statement `stmt`)
        gets its entry `key`."""
        literal = _literal(container, key)
        if literal is not None:
            start, value = literal[-1]
            return ([self.entry_place(fn, stmt, start, value, where)] if stmt is not None
                    else []) + self.follow(fn, value, None, ALIAS_HOPS, stmt.lineno if stmt
                                           else None, where, depth)
        if isinstance(container, ast.Call):
            found = self.callee(fn, container) if depth > 0 else None
            if not found:
                return []
            helper = found[0]
            inner = _where(helper, fn)
            return [p for ret in helper.returns()
                    for p in self.entry(helper, ret.value, key, inner, depth - 1, stmt=ret)]
        if not isinstance(container, ast.Name):
            return []
        name, places, sources = container.id, [], []
        for stmt in fn.statements:
            for target, value, pairing in _pairs(stmt):
                if (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                        and target.value.id == name and _const(target.slice) == key):
                    places.append(self.place(fn, stmt, where))
                    places += self.follow(fn, value, pairing, ALIAS_HOPS, stmt.lineno, where, depth)
                elif isinstance(target, ast.Name) and target.id == name:
                    literal = _literal(value, key)
                    if literal and _empty(literal[-1][1]):
                        continue  # grads = {'W1': None, ...}, filled later
                    if literal:
                        start, entry = literal[-1]
                        places.append(self.entry_place(fn, stmt, start, entry, where))
                        places += self.follow(fn, entry, None, ALIAS_HOPS, stmt.lineno,
                                              where, depth)
                    elif pairing is None and isinstance(value, (ast.Name, ast.Call)):
                        sources.append(value)
                    elif pairing is not None and isinstance(value, ast.Call):
                        sources.append((value, pairing))
            for node in _header_nodes(stmt):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "update" and _root(node.func.value) == name
                        and isinstance(node.func.value, ast.Name)):
                    entries = [(kw, kw.value) for kw in node.keywords if kw.arg == key]
                    entries += [e for a in node.args for e in (_literal(a, key) or [])]
                    for start, v in entries:
                        places.append(self.entry_place(fn, stmt, start, v, where))
                        places += self.follow(fn, v, None, ALIAS_HOPS, stmt.lineno, where, depth)
        if places or hops <= 0:
            return places
        for source in sources:  # grads = other (an alias), grads = helper(...)
            if isinstance(source, tuple):
                call, (index, length) = source
                found = self.callee(fn, call) if depth > 0 else None
                if found:
                    helper = found[0]
                    inner = _where(helper, fn)
                    for ret, value in self.returned(helper, index, length):
                        places += self.entry(helper, value, key, inner, depth - 1, stmt=ret)
            else:
                places += self.entry(fn, source, key, where, depth, hops - 1)
        return places

    # What each test checks

    def loss_func_calls(self, fn):
        name = fn.args[1] if len(fn.args) > 1 else None
        return [self.place(fn, stmt) for stmt in fn.statements
                if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                       and n.func.id == name for n in _header_nodes(stmt))]

    def _loop_header(self, fn, stmt, where):
        """The innermost loop around `stmt` whose variables `stmt` uses (`for k in ...:`)."""
        used = {n.id for n in _header_nodes(stmt) if isinstance(n, ast.Name)}
        for parent in reversed(fn.parents[stmt]):
            if isinstance(parent, (ast.For, ast.AsyncFor)) and used & {
                    n.id for n in ast.walk(parent.target) if isinstance(n, ast.Name)}:
                return [self.place(fn, parent, where)]
        return []

    def updates(self, fn, params, where="", depth=HELPER_DEPTH):
        """The statements of `fn` that update the dict `params` (or the tensors a loop over its
        values yields), with the loop that picks the keys; else those of an own helper that
        `fn` hands params to."""
        views, taken = set(), set()
        for stmt in fn.statements:
            if isinstance(stmt, (ast.For, ast.AsyncFor)) and any(
                    isinstance(n, ast.Name) and n.id == params for n in ast.walk(stmt.iter)):
                views |= {n.id for n in ast.walk(stmt.target) if isinstance(n, ast.Name)}
            for target, value, _ in _pairs(stmt):  # W1 = params['W1']: a view of params
                if isinstance(target, ast.Name) and isinstance(value, ast.Subscript) \
                        and _root(value) == params and isinstance(stmt, ast.Assign):
                    views.add(target.id)
                    taken.add(stmt)
        places = []
        for stmt in fn.statements:
            if isinstance(stmt, SCOPES) or stmt in taken:
                continue
            nodes = list(_header_nodes(stmt))
            hit = any((isinstance(t, (ast.Subscript, ast.Attribute)) and _root(t) == params)
                      or (isinstance(t, ast.Name) and t.id in views) for t, _, _ in _pairs(stmt))
            hit = hit or any(_in_place_call(n) and _root(n.func.value) in views | {params}
                             for n in nodes)
            hit = hit or any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                             and n.func.attr == "update" and isinstance(n.func.value, ast.Name)
                             and n.func.value.id == params for n in nodes)
            if hit:
                places += [self.place(fn, stmt, where)] + self._loop_header(fn, stmt, where)
        if places or depth <= 0:
            return places
        for stmt in fn.statements:
            for call in (n for n in _header_nodes(stmt) if isinstance(n, ast.Call)):
                positions = [i for i, a in enumerate(call.args)
                             if isinstance(a, ast.Name) and a.id == params]
                found = self.callee(fn, call) if positions else None
                if found and not found[1] and positions[0] < len(found[0].args):
                    helper = found[0]
                    inner = _where(helper, fn)
                    places += self.updates(helper, helper.args[positions[0]], inner, depth - 1)
        return places

    def decay(self, fn):
        """The statements that multiply the learning rate by its decay, the `if` that times
        them, and what that `if` tests (`iterations_per_epoch = ...`)."""
        name = "learning_rate_decay" if "learning_rate_decay" in fn.args else (
            fn.args[8] if len(fn.args) > 8 else None)
        places = []
        for stmt in fn.statements:
            if not isinstance(stmt, (ast.Assign, ast.AugAssign)) or not any(
                    isinstance(n, ast.Name) and n.id == name for n in ast.walk(stmt.value)):
                continue
            places.append(self.place(fn, stmt))
            test = next((p for p in reversed(fn.parents[stmt]) if isinstance(p, ast.If)), None)
            if test is not None:
                places.append(self.place(fn, test))
                for n in ast.walk(test.test):
                    if isinstance(n, ast.Name) and n.id not in fn.args:
                        places += [self.place(fn, s) for s in self.bindings(fn, n.id, test.lineno)
                                   if isinstance(s, (ast.Assign, ast.AnnAssign))]
        return places

    def history(self, fn, key):
        """Where nn_train fills the list it returns as stats[key]."""
        lists = []
        for stmt in fn.returns():
            values = [stmt.value]
            if isinstance(stmt.value, ast.Name):
                values += [v for s in self.bindings(fn, stmt.value.id, stmt.lineno)
                           for t, v, _ in _pairs(s) if isinstance(t, ast.Name)]
            lists += [v for value in values for _, v in (_literal(value, key) or [])]
        places = []
        for name in {v.id for v in lists if isinstance(v, ast.Name)}:
            for stmt in fn.statements:
                calls = [n for n in _header_nodes(stmt) if isinstance(n, ast.Call)
                         and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
                         and n.func.value.id == name and n.func.attr in ("append", "extend")]
                if not calls and not (isinstance(stmt, ast.AugAssign) and _root(stmt.target) == name):
                    continue
                places.append(self.place(fn, stmt))
                test = next((p for p in reversed(fn.parents[stmt]) if isinstance(p, ast.If)), None)
                places += [self.place(fn, test)] if test is not None else []
                for call in calls:
                    for arg in call.args:
                        places += self.follow(fn, arg, None, 1, stmt.lineno, "", 0)
        return places

    def _returned_places(self, fn, index, length, show_return):
        places = []
        for stmt, value in (self.returned(fn, index, length) if index is not None
                            else [(s, s.value) for s in fn.returns()]):
            found = self.follow(fn, value, None, ALIAS_HOPS, stmt.lineno, "", HELPER_DEPTH)
            shown = show_return or not found or not isinstance(value, ast.Name)
            places += ([self.place(fn, stmt)] if shown else []) + found
        return places

    def locate(self, test, message):
        """(what, [Place]) for a failed test, from its message; ("", []) when not located."""
        if test.startswith("grad_") or (test == "loss_stability"
                                        and re.search(r"grads\['(\w+)'\]", message)):
            key = test[5:] if test.startswith("grad_") else re.search(
                r"grads\['(\w+)'\]", message).group(1)
            fn = self.function("nn_forward_backward")
            if fn is None or key not in PARAM_NAMES:
                return "", []
            return f"grads['{key}'] is set", [p for ret, grads in self.returned(fn, 1)
                                               for p in self.entry(fn, grads, key, stmt=ret)]
        if test in ("loss", "loss_stability"):
            fn = self.function("nn_forward_backward")
            return "the loss is computed", fn and self._returned_places(fn, 0, 2, False) or []
        if test == "forward":
            fn = self.function("nn_forward_pass")
            if fn is None:
                return "", []
            # scores are computed from hidden: a wrong scores names both, a wrong hidden itself
            shown = [1] if ", hidden:" in message else [0, 1]
            what = " and ".join(("scores", "hidden")[i] for i in shown)
            return (f"{what} {'is' if len(shown) == 1 else 'are'} computed",
                    [p for i in shown for p in self._returned_places(fn, i, 2, True)])
        if test == "predict":
            fn = self.function("nn_predict")
            return "the labels are computed", fn and self._returned_places(fn, None, 0, True) or []
        fn = self.function("nn_train")
        if fn is None or not fn.args:
            return "", []
        if test not in ("train_update", "train_schedule"):
            return "", []
        if "loss_func" in message:
            return "nn_train calls loss_func", self.loss_func_calls(fn)
        if "stepped with learning rate" in message:
            return "the learning rate decays", self.decay(fn)
        history = re.search(r"stats\['(\w+)'\]", message)
        if history:
            return f"stats['{history.group(1)}'] is filled", self.history(fn, history.group(1))
        return "params is updated", self.updates(fn, fn.args[0])


def render(what, places):
    """One sentence: `what` at each place, the tested function's own lines first, in order."""
    unique = list({(p.where, p.file, p.line): p for p in places}.values())
    unique.sort(key=lambda p: (p.where != "", p.where, p.file, p.line))
    parts, context = [], None
    for p in unique[:MAX_PLACES]:
        head = ""
        if (p.where, p.file) != context:
            head = f"{p.where}, " if p.where else f"at {p.file} "
            context = (p.where, p.file)
        parts.append(f"{head}line {p.line}: `{p.code}`")
    more = len(unique) - MAX_PLACES
    return f"{what} " + "; ".join(parts) + (f"; and {more} more" if more > 0 else "") + "."


def annotate(files, failures):
    """{test: sentence} naming where the submission ({file name: bytes}) computes what each
    failed test {test: message} checks; tests whose quantity is not located are left out."""
    wanted = {t: m for t, m in failures.items() if value_failure(m)}
    if not wanted:
        return {}
    source = Source(files)
    if MODULE not in source.trees:
        return {}
    found = {}
    for test, message in wanted.items():
        what, places = source.locate(test, message)
        if places:
            found[test] = render(what, places)
    return found
