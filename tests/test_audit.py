"""grader.audit: the routes to torch.autograd a submission's source shows, read in the grader."""
import io
import os
import re
import textwrap
import zipfile

import pytest

import grading_corpus
from conftest import ROOT
from grader import audit

CLEAN_FILES = [os.path.join(ROOT, "two_layer_net.py"),
               os.path.join(ROOT, "tests", "submissions", "student_solution.py")]
# The corpus's autograd entries; every entry before its first hostile one is a plain bug.
AUTOGRAD_ENTRIES = {"autograd_backward", "torch_func_backward"}
FIRST_HOSTILE = "os_exit"


def read(source, **more):
    """Findings in a submission of two_layer_net.py = `source` and `more` {stem: source}."""
    files = {"two_layer_net.py": source, **{f"{k}.py": v for k, v in more.items()}}
    return audit.audit({k: textwrap.dedent(v).encode() for k, v in files.items()})


def backward_with(body, imports="import torch"):
    """A submission whose nn_forward_backward runs `body` (with `loss` and `X` defined)."""
    return (f"{imports}\n\n\ndef nn_forward_backward(params, X, y=None, reg=0.0):\n"
            f"    loss = X.sum()\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
            + "\n    return loss, {}\n")


def line_of(source, fragment, after=0):
    """The number of the first line of `source` after line `after` that holds `fragment`."""
    lines = textwrap.dedent(source).splitlines()
    return next(i for i, line in enumerate(lines, 1) if i > after and fragment in line)


def entry_files(entry):
    """{file name: bytes} of a corpus entry's .py files."""
    if entry.kind == "py":
        return {"two_layer_net.py": entry.source.encode()}
    if entry.kind == "folder":
        return {k: v.encode() for k, v in entry.files.items() if k.endswith(".py")}
    if entry.kind == "zip":
        archive = zipfile.ZipFile(io.BytesIO(entry.raw))
        return {n.rpartition("/")[2]: archive.read(n) for n in archive.namelist()
                if n.endswith(".py") and not n.startswith("__MACOSX")}
    return {}


def plain_bugs():
    everything = grading_corpus.entries([], "/tmp/x")
    names = [e.name for e in everything]
    assert FIRST_HOSTILE in names, f"the corpus has no entry {FIRST_HOSTILE}; update FIRST_HOSTILE"
    return [e for e in everything[:names.index(FIRST_HOSTILE)]
            if e.name not in AUTOGRAD_ENTRIES and not e.flags]  # flags: a finding is expected


# (id, source, kind, what the finding names): one route each; the verdict must score 0.
A, T, U = audit.AUTOGRAD, audit.TAMPERING, audit.UNVERIFIABLE
ROUTES = [
    ("backward", backward_with("loss.backward()"), A, "loss.backward()"),
    ("tensor_backward", backward_with("torch.Tensor.backward(loss)"), A, "torch.Tensor.backward"),
    ("import_as", backward_with("t.autograd.grad(loss, [X])", "import torch as t"), A,
     "torch.autograd.grad"),
    ("from_torch_import_as",
     backward_with("ag.grad(loss, [X])", "from torch import autograd as ag"), A,
     "torch.autograd.grad"),
    ("from_autograd_import", backward_with("grad(loss, [X])", "from torch.autograd import grad"),
     A, "torch.autograd.grad"),
    ("alias", backward_with("g = torch.autograd.grad\ng(loss, [X])"), A, "torch.autograd.grad"),
    ("torch_func", backward_with("grad_and_value(f)(params)",
                                 "from torch.func import grad_and_value"),
     A, "torch.func.grad_and_value"),
    ("torch_func_vjp", backward_with("torch.func.vjp(f, X)"), A, "torch.func.vjp"),
    ("functorch", backward_with("functorch.grad(f)(X)", "import functorch"), A, "functorch.grad"),
    ("getattr_literal", backward_with("getattr(loss, 'backward')()"), A, "loss.backward()"),
    ("getattr_default", backward_with("getattr(torch, 'nn', loss.backward()).functional"), A,
     "loss.backward()"),
    ("grad_read", backward_with("dW = X.grad"), A, "X.grad"),
    ("grad_write", backward_with("X.grad = None"), A, "X.grad"),
    ("requires_grad_keyword", backward_with("W = torch.zeros(3, requires_grad=True)"), A,
     "requires_grad=True"),
    ("requires_grad_unpacked", backward_with("W = torch.zeros(3, **{'requires_grad': True})"), A,
     "'requires_grad'"),
    ("requires_grad_method", backward_with("X.requires_grad_()"), A, "X.requires_grad_()"),
    ("requires_grad_attribute", backward_with("X.requires_grad = True"), A,
     "X.requires_grad = True"),
    ("grad_fn", backward_with("node = loss.grad_fn"), A, "loss.grad_fn"),
    ("forward_ad",
     backward_with("fwAD.make_dual(X, X)", "import torch.autograd.forward_ad as fwAD"), A,
     "torch.autograd.forward_ad.make_dual"),
    ("dual_level", backward_with("with dual_level():\n    pass",
                                 "from torch.autograd.forward_ad import dual_level"),
     A, "torch.autograd.forward_ad.dual_level"),
    ("enable_grad", backward_with("with torch.enable_grad():\n    pass"), A, "torch.enable_grad"),
    ("set_grad_enabled", backward_with("torch.set_grad_enabled(True)"), A,
     "torch.set_grad_enabled"),
    ("inference_mode_off", backward_with("with torch.inference_mode(False):\n    pass"), A,
     "torch.inference_mode(False)"),
    ("register_hook", backward_with("X.register_hook(print)"), A, "X.register_hook()"),
    ("optim", backward_with("torch.optim.SGD([X], lr=1.0).step()"), A, "torch.optim.SGD"),
    ("kit_oracle", backward_with("return helpers.autograd_loss_and_grads(params, X, y)",
                                 "import helpers"), A, "helpers.autograd_loss_and_grads"),
    ("kit_oracle_module", backward_with("return oracle.loss_and_grads(params, X, y)",
                                        "from helpers_lib import oracle"), A,
     "helpers_lib.oracle.loss_and_grads"),
    ("kit_oracle_gradcheck",
     backward_with("return autograd_loss_and_grads(params, X, y)",
                   "from helpers_lib.gradcheck import autograd_loss_and_grads"), A,
     "helpers_lib.gradcheck.autograd_loss_and_grads"),
    ("engine_restored", backward_with("""
        from torch.autograd import variable
        variable.Variable._execution_engine = variable.Variable._execution_engine._engine"""),
     T, "_execution_engine"),
    ("new_engine", backward_with("torch._C._ImperativeEngine().run_backward((loss,))"), T,
     "run_backward"),
    ("torch_C", backward_with("torch._C._set_grad_enabled(True)"), T, "torch._C"),
    ("getframe", backward_with("import sys\nframe = sys._getframe(1)"), T, "sys._getframe"),
    ("frame_locals", backward_with("watch = frame.f_locals"), T, "frame.f_locals"),
    ("frame_back", backward_with("frame = frame.f_back"), T, "frame.f_back"),
    ("traceback_frame", backward_with("""
        try:
            1 / 0
        except ZeroDivisionError as error:
            frame = error.__traceback__.tb_frame"""), T, "tb_frame"),
    ("exception_traceback", backward_with("tb = error.__traceback__"), T, "__traceback__"),
    ("generator_frame", backward_with("frame = (x for x in X).gi_frame"), T, "gi_frame"),
    ("inspect", backward_with("inspect.currentframe()", "import inspect"), T, "inspect"),
    ("gc_objects", backward_with("gc.get_objects()", "import gc"), T, "gc.get_objects"),
    ("gc_referrers", backward_with("gc.get_referrers(X)", "import gc"), T, "gc.get_referrers"),
    ("sys_modules", backward_with("sys.modules['torch'] = None", "import sys"), T, "sys.modules"),
    ("ctypes", backward_with("ctypes.pythonapi", "import ctypes"), T, "ctypes"),
    ("through_another_module", backward_with("linear_classifier.torch.autograd.grad(loss, [X])",
                                             "import linear_classifier"), A, "torch.autograd.grad"),
    ("grader_code", backward_with("child.AutogradWatch.check_outputs", "from grader import child"),
     T, "grader.child"),
    ("main_module", backward_with("main.watch", "import __main__ as main"), T, "__main__.watch"),
    ("patch_torch", "import torch\ntorch.equal = lambda *a: True\n", T, "torch.equal = ..."),
    ("patch_builtins", "import builtins\nbuiltins.max = min\n", T, "builtins.max = ..."),
    ("patch_by_setattr", "import torch\nsetattr(torch, 'allclose', print)\n", T,
     "torch.allclose = ..."),
    ("os_write", backward_with("os.write(5, b'{}')", "import os"), T, "os.write"),
    ("os_dup2", backward_with("os.dup2(1, 5)", "import os"), T, "os.dup2"),
    ("os_fdopen", backward_with("os.fdopen(5, 'wb')", "import os"), T, "os.fdopen"),
    ("proc_fd", backward_with("open('/proc/self/fd/5', 'wb')"), T, "/proc/self/fd/5"),
    ("proc_bytes", backward_with("open(b'/proc/1/mem', 'rb')"), T, "/proc/1/mem"),
    ("open_descriptor", backward_with("open(5, 'wb')"), T, "open(5)"),
    ("kill", backward_with("os.kill(os.getppid(), 9)", "import os"), T, "os.kill"),
    ("signal", backward_with("signal.signal(signal.SIGALRM, print)", "import signal"), T,
     "signal.signal"),
    ("subprocess", backward_with("subprocess.run(['python', '-c', ''])", "import subprocess"), T,
     "subprocess.run"),
    ("os_system", backward_with("os.system('python -c 1')", "import os"), T, "os.system"),
    ("multiprocessing", backward_with("multiprocessing.Process(target=print).start()",
                                      "import multiprocessing"), T, "multiprocessing.Process"),
    ("fork", backward_with("os.fork()", "import os"), T, "os.fork"),
    ("private_module", backward_with("_posixsubprocess.fork_exec()", "import _posixsubprocess"), T,
     "_posixsubprocess.fork_exec"),
    ("socket", backward_with("socket.socket().connect(('127.0.0.1', 22))", "import socket"), T,
     "socket.socket"),
    ("getattr_computed", backward_with("getattr(torch, 'auto' + 'grad')"), U,
     "getattr with a computed name"),
    ("getattr_as_value", backward_with("functools.reduce(getattr, ['autograd', 'grad'], torch)",
                                       "import functools, torch"), U, "getattr (passed as a value"),
    ("setattr_computed", backward_with("setattr(X, name, 1)"), U, "setattr with a computed name"),
    ("hasattr_computed", backward_with("hasattr(X, name)"), U, "hasattr with a computed name"),
    ("eval", backward_with("eval('loss.backward()')"), U, "eval"),
    ("exec_decoded", backward_with("exec(base64.b64decode(b'bG9zcw=='))", "import base64"), U,
     "exec"),
    ("compile", backward_with("code = compile('1', 'x', 'eval')"), U, "compile"),
    ("dunder_import", backward_with("__import__('torch')"), U, "__import__"),
    ("importlib", backward_with("importlib.import_module('torch.func')", "import importlib"), U,
     "importlib.import_module"),
    ("globals", backward_with("globals()['torch']"), U, "globals"),
    ("vars", backward_with("vars(torch)['autograd']"), U, "vars"),
    ("attrgetter", backward_with("operator.attrgetter('backward')(loss)()", "import operator"), U,
     "operator.attrgetter"),
    ("methodcaller", backward_with("operator.methodcaller('backward')(loss)", "import operator"),
     U, "operator.methodcaller"),
    ("dunder_dict", backward_with("type(loss).__dict__['backward'](loss)"), U, "__dict__"),
    ("dunder_getattribute", backward_with("loss.__getattribute__('backward')()"), U,
     "__getattribute__"),
    ("dunder_globals", backward_with("nn_forward_backward.__globals__"), U, "__globals__"),
    ("dunder_builtins", backward_with("__builtins__"), U, "__builtins__"),
    ("dunder_subclasses", backward_with("object.__subclasses__()"), U, "__subclasses__"),
    ("main_block_run_at_import", "__name__ = '__main__'\nif __name__ == '__main__':\n    pass\n",
     U, "__name__"),
    ("import_as_dunder", "from helpers import g as __builtins__\n", U, "as a dunder name"),
    ("star_import", backward_with("pass", "from torch import *"), U, "from torch import *"),
    ("pickle", backward_with("pickle.loads(b'')", "import pickle"), U, "pickle.loads"),
    ("marshal", backward_with("marshal.loads(b'')", "import marshal"), U, "marshal.loads"),
    ("torch_load", backward_with("torch.load('w.pt', weights_only=False)"), U,
     "torch.load without weights_only"),
    ("torch_load_default_off", backward_with("os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'",
                                             "import os"), U, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"),
    ("type_three_arguments", backward_with("T = type('T', (), {})"), U, "type() with three"),
    ("types_function", backward_with("types.FunctionType(f.__code__, {})", "import types"), U,
     "types.FunctionType"),
    ("module_as_value", backward_with("m = [torch][0]"), U, "module torch used as a value"),
    ("unknown_import", backward_with("import zzz_written_at_run_time"), U,
     "import zzz_written_at_run_time"),
    ("string_formatter", backward_with("string.Formatter().get_field('0.backward', [loss], {})",
                                       "import string"), U, "string.Formatter"),
    ("type_hints_evaluated", backward_with("typing.get_type_hints(f)", "import typing"), U,
     "typing.get_type_hints"),
    ("torchscript_from_string", backward_with("torch.jit.CompilationUnit('def f(x): return x')"),
     U, "torch.jit"),
]


# Routes that turn autograd on or prepare it without computing a gradient: the audit is not
# sure of them, so they are flags (the run-time watch and the walls see a gradient computed).
NOT_SURE = {"requires_grad_keyword", "requires_grad_attribute", "requires_grad_unpacked",
            "requires_grad_method", "grad_fn", "enable_grad", "set_grad_enabled",
            "inference_mode_off", "register_hook"}


@pytest.mark.parametrize("name, source, kind, what", ROUTES, ids=[r[0] for r in ROUTES])
def test_route_is_found_and_costs_points_only_when_sure(name, source, kind, what):
    found = read(source)
    assert any(f.kind == kind and what in f.what for f in found), audit.flags(found)
    sure = kind != U and name not in NOT_SURE
    assert (audit.gradient_verdict(found) is not None) == sure, (name, found)
    assert audit.flags(found), "every finding in graded code is flagged"


@pytest.mark.parametrize("path", CLEAN_FILES, ids=os.path.basename)
def test_clean_solutions_have_no_findings(path):
    with open(path, "rb") as f:
        assert audit.audit({"two_layer_net.py": f.read()}) == []


@pytest.mark.parametrize("entry", plain_bugs(), ids=lambda e: e.name)
def test_plain_bugs_of_the_corpus_have_no_findings(entry):
    assert audit.flags(audit.audit(entry_files(entry))) == []


def test_corpus_autograd_entries_get_the_verdicts_the_corpus_expects():
    checked = 0
    for entry in grading_corpus.entries([], "/tmp/x"):
        if "autograd" in entry.name or entry.name in AUTOGRAD_ENTRIES:
            verdict = audit.gradient_verdict(audit.audit(entry_files(entry)))
            assert verdict and re.search(entry.expect["grad_W1"], verdict), (entry.name, verdict)
            checked += 1
    assert checked >= len(AUTOGRAD_ENTRIES), "the corpus lost its autograd entries"


def test_everyday_student_code_has_no_findings():
    found = read("""
        from __future__ import annotations

        import copy, functools, json, os, sys, time
        from typing import Dict, Optional

        import numpy as np
        import torch
        import torch.nn.functional as F
        from torch import nn

        from linear_classifier import sample_batch

        __all__ = ["nn_forward_backward"]
        torch.backends.cudnn.deterministic = True


        class Layer(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.fc = nn.Linear(d, 2)

            def backward(self, dout):
                return dout

            def step(self, dout):
                return self.backward(dout)


        @torch.no_grad()
        def nn_forward_backward(params: Dict[str, torch.Tensor], X,
                                y: Optional[torch.Tensor] = None, reg=0.0):
            grads, grad = {}, None
            hidden = F.relu(X @ params["W1"] + params["b1"])
            for k, grad in grads.items():
                grads[k] = grad + 2 * reg * params[k]
            X = torch.zeros(3, requires_grad=False).to(torch.float64)
            print(f"{type(X).__name__} {time.time():.1f}", file=sys.stderr)
            return hidden, grads


        def nn_train(params, loss_func, *args, **kwargs):
            best = copy.deepcopy(params)
            step = functools.partial(loss_func, reg=kwargs.get("reg", 0.0))
            with open(os.path.join("runs", "log.json"), "w") as f:
                json.dump([], f)
            torch.save(best, "best.pt")
            np.random.seed(0)
            return torch.load("best.pt", weights_only=True), getattr(best, "keys"), step


        if __name__ == "__main__":
            nn_train({}, nn_forward_backward)
        """)
    assert audit.flags(found) == []


def test_a_plain_variable_named_grad_is_not_autograd():
    assert read(backward_with("grad = loss * 2\ngrads = {'W1': grad}\ngrads['W1'] += 1")) == []


def test_fullwidth_letters_are_normalised_by_the_parser():
    found = read(backward_with("loss.\uff42ackward()"))  # fullwidth b: NFKC makes it `backward`
    assert [f.what for f in found] == ["loss.backward()"]


def test_autograd_in_an_uncalled_debug_function_is_flagged_but_not_scored():
    found = read(backward_with("pass") + textwrap.dedent("""
        def check_gradients(params, X):
            W = params["W1"].clone().requires_grad_()
            (X @ W).sum().backward()
            return W.grad


        if __name__ == "__main__":
            torch.zeros(2, requires_grad=True).sum().backward()
        """))
    assert found and not any(f.in_backward for f in found)
    assert audit.gradient_verdict(found) is None
    assert all("autograd outside the backward pass" in label for label in audit.flags(found))


def test_autograd_in_a_helper_that_nn_forward_backward_calls_scores_zero():
    source = backward_with("return outer(params, X)") + textwrap.dedent("""
        def outer(params, X):
            return inner(params)


        def inner(params):
            params["W1"].sum().backward()
        """)
    verdict = audit.gradient_verdict(read(source))
    line = line_of(source, '.backward()')
    assert verdict and f"backward() at two_layer_net.py line {line})" in verdict, verdict


def test_a_helper_passed_as_a_value_is_reachable():
    found = read(backward_with("return list(map(helper, [loss]))")
                 + "\n\ndef helper(t):\n    t.backward()\n")
    assert [f.in_backward for f in found] == [True]


def test_a_method_called_on_any_object_is_reachable():
    found = read(backward_with("return net.gradients(loss)")
                 + "\n\nclass Net:\n    def gradients(self, loss):\n        loss.backward()\n")
    assert [f.in_backward for f in found] == [True]


def test_a_decorated_function_is_reachable_from_import_time_code():
    found = read(backward_with("pass") + "\n\n@run_now\ndef f():\n    torch.ones(1).backward()\n")
    assert [f.in_backward for f in found] == [True]


def test_a_module_getattr_is_reachable():
    found = read("import torch\n\ndef __getattr__(name):\n    return torch.ones(1).backward\n")
    assert [f.in_backward for f in found] == [True]


def test_nn_forward_backward_imported_under_its_name_is_followed():
    found = read("from helpers import by_autograd as nn_forward_backward\n",
                 helpers="def by_autograd(params, X, y=None, reg=0.0):\n    X.sum().backward()\n")
    assert [(f.file, f.in_backward) for f in found] == [("helpers.py", True)]


def test_the_submissions_own_helpers_module_is_not_the_kits():
    assert read(backward_with("helpers.softmax(X)", "import helpers"),
                helpers="def softmax(x):\n    return x.softmax(1)\n") == []


def test_module_level_autograd_runs_before_every_test():
    found = read("import torch\nW = torch.ones(2)\nW.sum().backward()\n" + backward_with("pass"))
    assert found[0].in_backward and audit.gradient_verdict(found) is not None


def test_the_submissions_own_modules_are_followed():
    main = backward_with("return helpers.h(loss), g(loss, [X])", "import helpers\n"
                                                                  "from helpers import g")
    helpers = """
        import torch
        g = torch.autograd.grad


        def h(loss):
            loss.backward()


        def unused(loss):
            loss.backward()
        """
    where = {(f.file, f.line, f.what): f.in_backward for f in read(main, helpers=helpers)}
    used = line_of(helpers, "backward()")
    assert where == {("two_layer_net.py", line_of(main, "g(loss"), "torch.autograd.grad"): True,
                     ("helpers.py", line_of(helpers, "g ="), "torch.autograd.grad"): True,
                     ("helpers.py", used, "loss.backward()"): True,
                     ("helpers.py", line_of(helpers, "backward()", used), "loss.backward()"): False}


def test_a_star_import_of_an_own_module_resolves_its_names():
    found = read(backward_with("g(loss, [X])", "from helpers import *"),
                 helpers="from torch.autograd import grad as g\n")
    assert [f.what for f in found] == ["torch.autograd.grad"]


@pytest.mark.parametrize("module, use, what", [
    ("torch", "torch.autograd.grad(loss, [X])", "torch.autograd.grad"),
    ("grader", "grader.child.AutogradWatch", "grader.child.AutogradWatch"),
])
def test_a_file_that_shadows_a_loaded_module_does_not_hide_it(module, use, what):
    found = read(backward_with(use, f"import {module}"), **{module: "x = 1\n"})
    assert [f.what.partition(" (")[0] for f in found] == [what]


def test_only_files_that_two_layer_net_imports_are_read():
    found = read("import helpers\nimport pkg.tools\n", helpers="import os\nos.fork()\n",
                 **{"pkg/__init__": "import os\nos.setsid()\n",
                    "pkg/tools": "import os\nos.kill(1, 9)\n",
                    "debug": "import os\nos.system('x')\n"})  # imported by nothing
    assert sorted(f.file for f in found) == ["helpers.py", "pkg/__init__.py", "pkg/tools.py"]


def test_the_kits_own_modules_submitted_with_the_release_are_not_the_submissions():
    names = ["grade.py", "helpers.py", "main.py", "two_layer_net.py"]
    release = {name: open(os.path.join(ROOT, name), "rb").read() for name in names}
    assert audit.audit(release) == []
    release["two_layer_net.py"] += b"\nfrom helpers import rel_error, autograd_loss_and_grads\n"
    release["two_layer_net.py"] += b"rel_error(1, 1), autograd_loss_and_grads\n"
    assert [f.what for f in audit.audit(release)] == [
        "helpers.autograd_loss_and_grads (the kit's helpers: only its plain ones may be called)"]


def test_tampering_costs_points_only_where_graded_code_reaches_it():
    never_called = "\n\ndef never_called():\n    import sys\n    sys._getframe()\n"
    in_predict = "\n\ndef nn_predict(params, loss_func, X):\n    import sys\n    sys._getframe()\n"
    outside, graded = read(backward_with("pass") + never_called), read(backward_with("pass") + in_predict)
    assert not outside[0].in_graded and audit.gradient_verdict(outside) is None
    assert audit.flags(outside) == [
        "tampering outside graded code (two_layer_net.py:12 sys._getframe (walks the grader's "
        "call stack))"]
    assert graded[0].in_graded and not graded[0].in_backward
    assert "cannot trust its autograd check" in audit.gradient_verdict(graded)


def test_hidden_names_are_never_a_reason_to_take_points():
    in_backward = read(backward_with("eval('1')"))
    under_main = read(backward_with("pass") + "\n\nif __name__ == '__main__':\n    eval('1')\n")
    assert in_backward and under_main
    assert audit.gradient_verdict(in_backward) is None and audit.gradient_verdict(under_main) is None
    assert [label.split(" (")[0] for label in audit.flags(in_backward)] == ["unverifiable"]
    assert audit.flags(under_main) == []


def test_the_autograd_verdict_names_the_call_and_the_rule():
    verdict = audit.gradient_verdict(read(backward_with("loss.backward()")))
    assert verdict == ("nn_forward_backward used torch.autograd (loss.backward() at "
                       "two_layer_net.py line 6); the gradients must be computed by hand, so the "
                       "gradient tests score 0")


def test_the_verdict_lists_at_most_three_findings():
    verdict = audit.gradient_verdict(read(backward_with("\n".join(["loss.backward()"] * 5))))
    assert verdict.count("loss.backward()") == audit.SHOWN and "and 2 more" in verdict


def test_flags_are_labelled_deduplicated_and_in_order():
    found = read(backward_with("loss.backward()\nimport sys\nsys._getframe()"))
    assert audit.flags(found + found) == [
        "autograd in backward pass (two_layer_net.py:6 loss.backward())",
        "tampering (two_layer_net.py:8 sys._getframe (walks the grader's call stack))"]


@pytest.mark.parametrize("body", [
    "torch.zeros(2, requires_grad=False)", "X.requires_grad = False",
    "torch.load('w.pt', weights_only=True)", "torch.load('w.pt', map_location='cpu')",
    "import pickle\npickle.dumps(X)", "torch.backends.cuda.matmul.allow_tf32 = False",
    "import gc\ngc.collect()", "with torch.no_grad():\n    pass",
    "with torch.inference_mode():\n    pass", "import types\ntypes.SimpleNamespace(a=1)",
    "import helpers\nhelpers.rel_error(X, X)", "import scipy.signal\nscipy.signal.convolve(X, X)",
    "with torch.profiler.profile():\n    pass",
], ids=["requires_grad_false", "requires_grad_attr_false", "weights_only", "load_by_default",
        "pickle_dumps", "backends",
        "gc_collect", "no_grad", "inference_mode", "simple_namespace", "kit_rel_error",
        "scipy_signal", "torch_profiler"])
def test_harmless_neighbours_of_flagged_names_are_not_findings(body):
    assert read(backward_with(body)) == []


def test_unreadable_files_are_skipped_or_unverifiable():
    assert audit.audit({"two_layer_net.py": b"def f(:\n"}) == []  # the import reports it
    deep = [f for source in (f"x = {'a.' * 2000}b\n", f"print({'a.' * 400}b)\n")  # the parser
            for f in audit.audit({"two_layer_net.py": source.encode()})]  # takes these
    compiled = audit.audit({"two_layer_net.py": b"import helpers\n", "helpers.so": b"\x7fELF"})
    assert [f.what for f in deep] == [audit.DEEP, audit.DEEP]
    assert [(f.file, f.kind) for f in compiled if "compiled module" in f.what] == [
        ("helpers.so", audit.UNVERIFIABLE)]
    half = b"#" * (audit.MAX_SOURCE // 2 + 1)  # two files, over the limit together
    huge = audit.audit({"two_layer_net.py": half, "helpers.py": half})
    assert [(f.file, f.what) for f in huge] == [
        ("helpers.py", f"more than {audit.MAX_SOURCE} bytes of source (too much to read)")]


MODULAR = """
    import torch


    class Linear:
        def __init__(self, W, b):
            self.W, self.b = W, b

        def forward(self, x):
            self.x = x
            return x @ self.W + self.b

        def backward(self, dout):
            self.grad = {"W": self.x.t() @ dout, "b": dout.sum(0)}
            return dout @ self.W.t()


    def nn_forward_backward(params, X, y=None, reg=0.0):
        fc1 = Linear(params["W1"], params["b1"])
        fc2 = Linear(params["W2"], params["b2"])
        scores = fc2.forward(fc1.forward(X).clamp(min=0))
        dx = fc2.backward(scores)
        return scores.sum(), {"W2": fc2.grad["W"], "b2": fc2.grad["b"], "dx": dx}
"""


# Honest code that today's main zeroed as autograd or unverifiable (issue 15, item 3): none of it
# costs a point, and none of it is even a flag.
@pytest.mark.parametrize("source", [
    MODULAR,
    backward_with("torch.set_grad_enabled(False)"),
    backward_with("X = X.detach().requires_grad_(False)"),
    backward_with("with torch.set_grad_enabled(False):\n    pass"),
    backward_with("name = X.__class__.__name__"),
    backward_with("if __debug__:\n    assert X.dim() == 2"),
    backward_with("first = dict.__getitem__(params, 'W1')"),
    backward_with("pass", "import timeit\nimport torch\nstart = timeit.default_timer()"),
    backward_with("pass") + "\n\nif __name__ == '__main__':\n    import cProfile, inspect\n"
                            "    cProfile.run('1')\n    inspect.signature(nn_forward_backward)\n",
    backward_with("pass", "import eecs598\nimport torch") + "\n\ndef find_best_net():\n"
                                                             "    eecs598.reset_seed(0)\n",
], ids=["modular_layers", "set_grad_enabled_false", "requires_grad_false", "grad_disabled_block",
        "class_name", "debug", "dict_getitem", "timeit_clock", "profile_under_main", "eecs598"])
def test_honest_code_is_neither_zeroed_nor_flagged(source):
    found = read(source)
    assert audit.gradient_verdict(found) is None and audit.flags(found) == [], audit.flags(found)


@pytest.mark.parametrize("source, label", [
    (backward_with("pass") + "\n\ndef find_best_net():\n    dtype = getattr(torch, 'float' + "
                             "'64')\n", None),
    (backward_with("pass") + "\n\nif __name__ == '__main__':\n    import signal\n"
                             "    signal.alarm(10)\n", "tampering outside graded code"),
    (MODULAR.replace("dx = fc2.backward(scores)", "dx = [fc2][0].backward(scores)"),
     "possible autograd in backward pass"),
], ids=["getattr_in_tuning_code", "signal_under_main", "unknown_receiver_of_own_method"])
def test_what_the_audit_is_unsure_of_is_at_most_a_flag(source, label):
    found = read(source)
    assert audit.gradient_verdict(found) is None
    assert [f.split(" (")[0] for f in audit.flags(found)] == ([label] if label else [])


def test_finite_differences_in_the_backward_pass_score_zero():
    found = read(backward_with("g = helpers.numeric_gradient(lambda w: w.sum(), X)",
                               "import helpers\nimport torch"))
    assert "finite differences" in audit.gradient_verdict(found)
    assert read(backward_with("pass", "import helpers\nimport torch")
                + "\n\nif __name__ == '__main__':\n    helpers.grad_check(None, {}, 1, 1)\n") == [
        audit.Finding(audit.NUMERIC, "two_layer_net.py", 12,
                      "helpers.grad_check", False,
                      True, False)]


def test_the_rules_are_one_table_of_names_kinds_costs_and_reasons():
    from grader import audit_rules

    for names, kind, sure, why in audit_rules.RULES:
        assert kind in (audit.AUTOGRAD, audit.NUMERIC, audit.TAMPERING, audit.UNVERIFIABLE,
                        audit_rules.ALLOWED) and isinstance(names, str) and names.split()
        assert (sure is None) == (kind == audit_rules.ALLOWED)
    dotted, attrs = audit_rules.tables()
    assert dotted["torch.autograd"] == (audit.AUTOGRAD, "", True)
    assert dotted["torch.autograd.no_grad"] is None and attrs["backward"][0] == audit.AUTOGRAD


def test_the_course_packages_grad_module_is_not_autograd():
    found = read(backward_with("e = eecs598.grad.rel_error(X, X)\nf = rel_error(X, X)",
                               "import eecs598\nimport torch\nfrom eecs598.grad import rel_error"))
    assert found == []
