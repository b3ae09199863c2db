"""The grader's honest corpus: correct solutions in the styles students of the original course
really write, each of which must score 100 (issue 15). Every habit here once cost points:
the course's eecs598 package, re-bound updates, cs231n-style layers with their own backward
methods, autograd switched off, dunder reads, tuning and profiling code the grader never calls,
a gradient check by autograd outside the backward pass, numpy/tqdm/matplotlib imports.

`flags` is the regular expression grades.csv's flags column must match ("" = empty): what the
audit cannot rule out goes to a person, never into the score.
"""
import os

from grading_corpus import BASE, Entry, edit

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "submissions")


def _read(*parts):
    with open(os.path.join(HERE, *parts)) as f:
        return f.read()


FIND_BEST_NET = '''

def find_best_net(data_dict, get_param_set_fn):
    import eecs598
    from eecs598.grad import rel_error

    eecs598.reset_seed(0)
    best = (None, None, -1.0)
    for lr, hidden_size, reg, decay in zip(*get_param_set_fn()):
        print(lr, hidden_size, reg, decay, rel_error(data_dict['X_val'], data_dict['X_val']))
    return best
'''

# Written on Colab's Python 3.12: a replacement field that spans lines parses only there.
PY312_TUNING = '''

def find_best_net(data_dict, get_param_set_fn):
    best = (None, None, -1.0)
    for lr, hidden_size, reg, decay in zip(*get_param_set_fn()):
        print(f"lr {lr:.1e}, hidden {hidden_size}, reg {
              reg:.1e}, decay {decay}")
    return best


import functools


@functools.lru_cache
def describe(lr):
    return f"lr={
        lr}"
'''


def entries():
    layers = {name: _read("honest_layers", name) for name in ("two_layer_net.py", "layers.py")}
    return [
        Entry("honest_modular", "cs231n-style layers with backward methods and self.grad, "
              "autograd switched off, dunder reads, eecs598 at module level, profiling under "
              "__main__", source=_read("honest_modular.py"),
              flags=r"^tampering outside graded code \(two_layer_net\.py:\d+ signal\.alarm"),
        Entry("honest_numpy", "numpy, tqdm, matplotlib, torch.no_grad, einsum and loops, an "
              "autograd gradient check under __main__, eecs598 inside find_best_net",
              source=_read("honest_numpy.py"), flags=r"autograd outside the backward pass"),
        Entry("honest_layers", "the layers in the student's own module, called as "
              "layers.Affine(...)", kind="folder", files=layers),
        Entry("eecs598_at_module_level", "import eecs598 and reset_seed at module level",
              source=edit("import torch\n", "import torch\n\nimport eecs598\n\n"
                          "eecs598.reset_seed(0)\n")),
        Entry("eecs598_in_find_best_net", "the course package imported in find_best_net",
              source=BASE + FIND_BEST_NET),
        Entry("py312_syntax_in_tuning_code", "multi-line f-strings (Python 3.12) in find_best_net "
              "and in a decorated helper nothing graded calls: left out, the rest graded",
              source=BASE + PY312_TUNING,
              flags=r"^find_best_net left out: two_layer_net\.py:\d+ does not parse on Python "
                    r"3\.\d+ \(.*\); the rubric never calls it, the rest is graded;"
                    r" describe left out: two_layer_net\.py:\d+"),
        Entry("eecs598_a2_helpers", "the notebook's plot helper imported at module level from the "
              "course package (2022 layout) and from a2_helpers beside it (2020 layout)",
              source=edit("import torch\n", "import torch\n\nimport a2_helpers\n"
                          "from eecs598 import submit, vis\n"
                          "from eecs598.a2_helpers import get_toy_data, plot_acc_curves\n\n"
                          "TOY = get_toy_data(dtype=torch.float64)\n")),
    ]
