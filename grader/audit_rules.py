"""The source audit's rules: what a submission's code may not reach, why, and what a finding costs.

One row a rule: the names it covers, its kind, its cost and why. A name is a resolved dotted
name (`torch.autograd` covers everything under it; the longest match decides) or `.attr`, an
attribute of any object. grader/audit.py walks the tree and applies this table; adding a rule
is adding a row.

Kinds: AUTOGRAD (torch computes the gradients), NUMERIC (finite differences instead of
backpropagation), TAMPERING (reaches the grader's or torch's internals, or leaves the watched
process), UNVERIFIABLE (hides from a reader what it calls), ALLOWED (a harmless neighbour of a
rule: `torch.autograd.no_grad` under `torch.autograd`).

Costs: SURE findings score the gradient tests 0 where the graded code reaches them (AUTOGRAD and
NUMERIC: from nn_forward_backward; TAMPERING: from any graded function or at import); FLAG
findings only go to a person, with the line, and never cost a point. The walls and the process
model carry the hard guarantees; what the audit is not sure of is never an accusation.
"""
AUTOGRAD, NUMERIC, TAMPERING, UNVERIFIABLE, ALLOWED = (
    "autograd", "finite differences", "tampering", "unverifiable", "allowed")
SURE, FLAG = True, False

STACK = "walks the grader's call stack"
_SPAWN = " ".join(f"os.{verb}{tail}" for verb in ("exec", "spawn")
                  for tail in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe"))
_HELPERS_PLAIN = " ".join(f"helpers.{name}" for name in (
    "get_toy_data load_toy_reference rel_error MissingGradients require_gradients "
    "load_digits_data find_cifar10_folder load_cifar10 plot_stats plot_loss_curves "
    "show_net_weights use_threads accuracy final_loss").split())

RULES = [
    # names                                                    kind          cost  why
    ("torch.autograd torch.func functorch torch.optim",        AUTOGRAD,     SURE, ""),
    (".backward .grad ._grad .make_dual .unpack_dual .dual_level .forward_ad",
                                                               AUTOGRAD,     SURE, ""),
    ("torch.enable_grad torch.set_grad_enabled torch.autograd.enable_grad "
     "torch.autograd.set_grad_enabled torch.autograd.grad_mode torch.nn.utils.stateless",
                                                               AUTOGRAD,     FLAG,
     "turns autograd on; no gradient yet"),
    (".grad_fn ._grad_fn .requires_grad_ .retain_grad .register_hook "
     ".register_post_accumulate_grad_hook .register_backward_hook "
     ".register_full_backward_hook .register_full_backward_pre_hook",
                                                               AUTOGRAD,     FLAG,
     "prepares autograd; no gradient yet"),
    ("torch.autograd.no_grad torch.autograd.grad_mode.no_grad", ALLOWED,     None, "turns it off"),
    ("helpers",                                                AUTOGRAD,     SURE,
     "the kit's helpers: only its plain ones may be called"),
    (_HELPERS_PLAIN,                                           ALLOWED,      None, ""),
    ("helpers_lib.oracle helpers_lib.gradcheck.autograd_loss_and_grads",
                                                               AUTOGRAD,     SURE,
     "the kit's oracle: the expected values themselves"),
    ("helpers.numeric_gradient helpers.grad_check eecs598.compute_numeric_gradient "
     "eecs598.grad.compute_numeric_gradient eecs598.grad.grad_check_sparse",
                                                               NUMERIC,      SURE, ""),
    ("eecs598.grad eecs598.utils eecs598.data",               ALLOWED,      None,
     "the course package's modules (grader/standins.py)"),
    ("sys._getframe sys._current_frames sys._current_exceptions sys.settrace sys.setprofile "
     "sys.last_traceback sys.monitoring threading.settrace threading.setprofile "
     "threading.settrace_all_threads threading.setprofile_all_threads inspect "
     "traceback.walk_stack traceback.walk_tb builtins.breakpoint pdb bdb",
                                                               TAMPERING,    SURE, STACK),
    (".f_back .f_locals .f_globals .f_builtins .f_code .f_trace .tb_frame .tb_next .gi_frame "
     ".cr_frame .ag_frame .__traceback__",                     TAMPERING,    SURE, STACK),
    ("inspect.signature inspect.Parameter inspect.isclass inspect.isfunction inspect.getdoc",
                                                               ALLOWED,      None, "reads no frame"),
    ("sys.modules sys.meta_path sys.path_hooks sys.path_importer_cache sys.addaudithook gc "
     "unittest.mock mock",                                     TAMPERING,    SURE,
     "reaches objects the grader owns"),
    ("gc.collect",                                             ALLOWED,      None, ""),
    ("ctypes _ctypes cffi mmap",                               TAMPERING,    SURE,
     "reads or writes memory directly"),
    ("torch.ops torch.library",                                TAMPERING,    SURE,
     "torch's internals"),
    ("._execution_engine .run_backward",                       TAMPERING,    SURE,
     "torch's autograd engine"),
    ("grader grade __main__",                                  TAMPERING,    SURE,
     "the grader's own code"),
    ("subprocess multiprocessing torch.multiprocessing torch.distributed pty os.system os.popen "
     "os.fork os.forkpty os.posix_spawn os.posix_spawnp posix asyncio.create_subprocess_exec "
     "asyncio.create_subprocess_shell concurrent.futures.ProcessPoolExecutor "
     "concurrent.futures.process " + _SPAWN,                   TAMPERING,    SURE,
     "runs code in another process, out of the grader's watch"),
    ("os.write os.writev os.pwrite os.pwritev os.dup os.dup2 os.fdopen os.sendfile os.splice "
     "os.copy_file_range os.openpty fcntl",                    TAMPERING,    SURE,
     "writes to descriptors it did not open"),
    ("os.kill os.killpg os.setsid os.setpgid os.setpgrp os.pidfd_open signal",
                                                               TAMPERING,    SURE,
     "signals or leaves the grader's processes"),
    ("socket",                                                 TAMPERING,    SURE,
     "opens a network connection"),
    ("builtins.eval builtins.exec builtins.compile code codeop timeit doctest runpy cProfile "
     "profile trace site typing.get_type_hints typing.ForwardRef torch.jit torch.fx "
     "torch.utils.cpp_extension",                              UNVERIFIABLE, FLAG,
     "runs code from a string"),
    ("timeit.default_timer",                                   ALLOWED,      None, "a clock"),
    ("builtins.__import__ importlib imp pkgutil pydoc zipimport torch.hub",
                                                               UNVERIFIABLE, FLAG,
     "imports by a computed name"),
    ("pickle _pickle cPickle marshal dill cloudpickle shelve joblib copyreg pandas.read_pickle "
     "torch.package torch.export",                             UNVERIFIABLE, FLAG,
     "loads code from data"),
    ("pickle.dump pickle.dumps pickle.HIGHEST_PROTOCOL marshal.dump marshal.dumps",
                                                               ALLOWED,      None, "writes data"),
    ("builtins.globals builtins.vars builtins.locals operator.attrgetter operator.methodcaller "
     "string.Formatter torch.overrides",                       UNVERIFIABLE, FLAG,
     "looks objects up by computed names"),
    ("types",                                                  UNVERIFIABLE, FLAG,
     "builds functions or classes from data"),
    ("types.SimpleNamespace",                                  ALLOWED,      None, ""),
    ("builtins.getattr builtins.setattr builtins.delattr builtins.hasattr",
                                                               UNVERIFIABLE, FLAG,
     "passed as a value, so the name it reaches cannot be read"),
]

# Private names under these roots (`torch._C`, `sys._x`) reach internals.
PRIVATE = {"torch": "torch's internals", "sys": "the interpreter's internals"}
# Dunder names that read a value and reach nothing hidden (any other dunder is UNVERIFIABLE).
PLAIN_DUNDERS = {"__init__", "__name__", "__doc__", "__file__", "__version__", "__all__",
                 "__qualname__", "__class__", "__debug__", "__module__", "__len__",
                 "__getitem__", "__setitem__", "__contains__", "__iter__", "__next__",
                 "__call__", "__repr__", "__str__", "__eq__", "__hash__", "__enter__",
                 "__exit__", "__annotations__", "__future__"}
STORED_DUNDERS = {"__version__", "__all__", "__author__"}  # and assign (not `__name__ = ...`)
WRITABLE = ("torch.backends.",)  # settings a submission may change: they reach no gradient
# Calls that switch autograd off: with every argument the constant False they are no finding.
SWITCHES_OFF = {"torch.set_grad_enabled", "torch.autograd.set_grad_enabled",
                "torch.autograd.grad_mode.set_grad_enabled", "requires_grad_"}


def tables():
    """({dotted name: (kind, note, sure)}, {attribute: (kind, note, sure)}) from RULES."""
    dotted, attrs = {}, {}
    for names, kind, sure, why in RULES:
        for name in names.split():
            table, key = (attrs, name[1:]) if name.startswith(".") else (dotted, name)
            assert key not in table, f"audit rule for {name} given twice"
            table[key] = None if kind == ALLOWED else (kind, why, sure)
    return dotted, attrs
