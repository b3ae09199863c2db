"""grader.locate: a failed test's feedback names the line(s) of the student's function that
compute what the test checks, in the styles students write, and no line where it cannot tell."""
import re
import textwrap

import pytest

import grading_corpus
from grader import audit, locate, report, rubric, selfcheck
from grader.rubric import Verdict

VALUE = "case 1 (N=2, D=3, H=4, C=2, reg=0), grads: max relative error 3.3e-01 > 1e-06"
LOSS = "case 0 (N=1, D=3, H=4, C=2, reg=0), loss: loss relative error 2.0e-01 > 1e-06"


def where(source, test, message=VALUE, **more):
    """The sentence locate gives for `test` failing with `message`, or None."""
    files = {"two_layer_net.py": textwrap.dedent(source).encode(),
             **{f"{k}.py": textwrap.dedent(v).encode() for k, v in more.items()}}
    return locate.annotate(files, {test: message}).get(test)


def line(source, fragment):
    """The number of the line of `source` (dedented) that holds `fragment`; exactly one does."""
    lines = textwrap.dedent(source).splitlines()
    found = [i for i, text in enumerate(lines, 1) if fragment in text]
    assert len(found) == 1, f"{fragment!r} is on lines {found}"
    return found[0]


def lines_named(sentence):
    return [int(n) for n in re.findall(r"line (\d+):", sentence or "")]


PLAIN = """
import torch


def nn_forward_backward(params, X, y=None, reg=0.0):
    W1, W2 = params['W1'], params['W2']
    hidden = (X @ W1 + params['b1']).clamp(min=0)
    scores = hidden @ W2 + params['b2']
    if y is None:
        return scores
    N = X.shape[0]
    shifted = scores - scores.max(dim=1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    data_loss = -log_probs[torch.arange(N), y].mean()
    reg_loss = reg * ((W1 * W1).sum() + (W2 * W2).sum())
    loss = data_loss + reg_loss
    dscores = log_probs.exp()
    dscores[torch.arange(N), y] -= 1
    dscores /= N
    grads = {}
    grads['W2'] = hidden.t() @ dscores + 2 * reg * W2
    db2 = dscores.sum(dim=1)
    grads['b2'] = db2
    dhidden = dscores @ W2.t()
    g = X.t() @ dhidden
    dW1 = g
    grads['W1'] = dW1
    grads['b1'] = dhidden.sum(dim=0)
    return loss, grads
"""


def test_a_subscript_store_is_named_with_its_line_and_code():
    at = line(PLAIN, "grads['W2']")
    assert where(PLAIN, "grad_W2") == (f"grads['W2'] is set at two_layer_net.py line {at}: "
                                       "`grads['W2'] = hidden.t() @ dscores + 2 * reg * W2`.")


def test_a_simple_alias_is_followed_back_to_the_line_that_computes_it():
    sentence = where(PLAIN, "grad_b2")
    assert lines_named(sentence) == [line(PLAIN, "db2 = dscores.sum"), line(PLAIN, "= db2")]
    assert "`db2 = dscores.sum(dim=1)`" in sentence


def test_two_aliases_are_followed_and_no_further():
    assert lines_named(where(PLAIN, "grad_W1")) == [
        line(PLAIN, "g = X.t()"), line(PLAIN, "dW1 = g"), line(PLAIN, "grads['W1'] = dW1")]
    three = PLAIN.replace("    g = X.t() @ dhidden\n", "    f = X.t() @ dhidden\n    g = f\n")
    assert line(three, "f = X.t()") not in lines_named(where(three, "grad_W1"))


def test_the_loss_is_named_through_a_sum_of_names():
    assert lines_named(where(PLAIN, "loss", LOSS)) == [
        line(PLAIN, "data_loss = "), line(PLAIN, "reg_loss = "), line(PLAIN, "loss = data_loss")]


def test_loss_stability_names_the_gradient_its_message_is_about():
    message = "case 0 (...): grads['b1'] contains NaN or inf (the loss is right): compute ..."
    assert lines_named(where(PLAIN, "loss_stability", message)) == [line(PLAIN, "grads['b1']")]
    assert lines_named(where(PLAIN, "loss_stability", LOSS)) == lines_named(
        where(PLAIN, "loss", LOSS))


@pytest.mark.parametrize("style, fragment", [
    ("    grads = {'W1': dW1, 'b1': db1, 'W2': dW2, 'b2': db2}\n", "grads = {"),
    ("    grads = dict(W1=dW1, b1=db1, W2=dW2, b2=db2)\n", "grads = dict("),
    ("    grads = {}\n    grads.update(W1=dW1, b1=db1, W2=dW2, b2=db2)\n", "grads.update("),
    ("    grads = {}\n    grads.update({'W1': dW1, 'b1': db1, 'W2': dW2, 'b2': db2})\n",
     "grads.update("),
    ("    grads = {}\n    grads['W1'], grads['b1'], grads['W2'], grads['b2'] = dW1, db1, dW2, db2\n",
     "grads['W1'], "),
])
def test_every_way_of_filling_grads_is_followed_to_the_line_computing_the_entry(style, fragment):
    source = textwrap.dedent("""
        import torch


        def nn_forward_backward(params, X, y=None, reg=0.0):
            h = X @ params['W1']
            s = h @ params['W2']
            ds = s.softmax(dim=1)
            dW2 = h.t() @ ds
            db2 = ds.sum(dim=0)
            dh = ds @ params['W2'].t()
            dW1 = X.t() @ dh
            db1 = dh.sum(dim=0)
        """) + style + "    return s.sum(), grads\n"
    assert lines_named(where(source, "grad_b2")) == [line(source, "db2 = "), line(source, fragment)]


def test_a_dict_literal_over_several_lines_names_the_entry_on_its_own_line():
    source = """
    def nn_forward_backward(params, X, y=None, reg=0.0):
        db2 = X.sum(dim=0)
        return X.sum(), {'W1': X, 'b1': X,
                         'W2': X, 'b2': -db2}
    """
    entry, db2 = line(source, "'b2'"), line(source, "db2 = ")
    assert where(source, "grad_b2") == (f"grads['b2'] is set at two_layer_net.py line {db2}: "
                                        f"`db2 = X.sum(dim=0)`; line {entry}: `'b2': -db2`.")


def test_numpy_conversions_are_seen_through():
    source = """
    import numpy as np
    import torch


    def nn_forward_backward(params, X, y=None, reg=0.0):
        x = X.numpy()
        dscores = np.ones((x.shape[0], 3))
        db2 = np.sum(dscores, axis=1)
        grads = {}
        grads['b2'] = torch.from_numpy(db2).to(X.dtype)
        return torch.tensor(0.0), grads
    """
    assert lines_named(where(source, "grad_b2")) == [line(source, "db2 = np.sum"),
                                                     line(source, "grads['b2']")]


MODULAR = """
import torch


class Linear:
    def __init__(self, W, b):
        self.W, self.b = W, b
        self.dW = None

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW = self.x.t() @ dout
        db = dout.sum(dim=0)
        return dout @ self.W.t(), self.dW, db


class ReLU:
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


def nn_forward_pass(params, X):
    fc1, relu, fc2 = Linear(params['W1'], params['b1']), ReLU(), Linear(params['W2'], params['b2'])
    hidden = relu.forward(fc1.forward(X))
    scores = fc2.forward(hidden)
    return scores, hidden


def nn_forward_backward(params, X, y=None, reg=0.0):
    fc1, relu, fc2 = Linear(params['W1'], params['b1']), ReLU(), Linear(params['W2'], params['b2'])
    scores = fc2.forward(relu.forward(fc1.forward(X)))
    dscores = scores.softmax(dim=1)
    grads = {}
    dhidden, grads['W2'], grads['b2'] = fc2.backward(dscores)
    _, dW1, grads['b1'] = fc1.backward(relu.backward(dhidden))
    grads['W1'] = fc1.dW
    return scores.sum(), grads
"""


def test_modular_layers_resolve_into_the_students_own_method():
    call, db = line(MODULAR, "grads['b2'] = fc2"), line(MODULAR, "db = dout")
    assert where(MODULAR, "grad_b2") == (
        f"grads['b2'] is set at two_layer_net.py line {call}: `dhidden, grads['W2'], grads['b2'] "
        f"= fc2.backward(dscores)`; in Linear.backward, line {db}: `db = dout.sum(dim=0)`.")


def test_an_own_objects_attribute_names_where_its_method_sets_it_not_its_initial_value():
    sentence = where(MODULAR, "grad_W1")
    assert lines_named(sentence) == [line(MODULAR, "grads['W1'] = fc1.dW"),
                                     line(MODULAR, "self.dW = self.x")]
    assert "in Linear.backward" in sentence and "probably" not in sentence


def test_a_method_found_by_its_name_alone_is_marked_as_probable():
    source = MODULAR.replace("    dhidden, grads['W2'], grads['b2'] = fc2.backward(dscores)\n",
                             "    dhidden, grads['W2'], grads['b2'] = layers[1].backward(dscores)\n"
                             ).replace("    grads = {}\n", "    grads = {}\n    layers = [fc1, fc2]\n")
    sentence = where(source, "grad_b2")
    # ReLU has a backward method too, so no class is the only one: nothing is said of a helper.
    assert "backward" in sentence and "Linear.backward" not in sentence
    unique = source.replace("    def backward(self, dout):\n        return dout * self.mask\n", "")
    assert "probably in Linear.backward (the only class with a method backward), line " in \
        where(unique, "grad_b2")


def test_layers_in_an_own_module_are_named_with_their_file():
    layers = """
    class Affine:
        def backward(self, dout):
            self.db = dout.sum(0)
            return dout
    """
    source = """
    import layers


    def nn_forward_backward(params, X, y=None, reg=0.0):
        fc2 = layers.Affine()
        fc2.backward(X)
        return X.sum(), {'W1': X, 'b1': X, 'W2': X, 'b2': fc2.db}
    """
    assert where(source, "grad_b2", layers=layers).endswith(
        f"in Affine.backward (layers.py), line {line(layers, 'self.db')}: `self.db = dout.sum(0)`.")


def test_a_backward_helper_returning_grads_is_named_as_such():
    source = """
    def backward(cache, dscores):
        X, hidden = cache
        grads = {}
        grads['b2'] = dscores.sum(dim=0)
        return grads


    def nn_forward_backward(params, X, y=None, reg=0.0):
        hidden = X @ params['W1']
        scores = hidden @ params['W2']
        loss, grads = scores.sum(), backward((X, hidden), scores)
        return loss, grads
    """
    at = line(source, "grads['b2']")
    assert where(source, "grad_b2") == (
        f"grads['b2'] is set in backward, line {at}: `grads['b2'] = dscores.sum(dim=0)`.")


def test_what_cannot_be_located_names_no_line():
    loop = """
    def nn_forward_backward(params, X, y=None, reg=0.0):
        grads = {}
        for name, value in zip(('W1', 'b1', 'W2', 'b2'), (X, X, X, X)):
            grads[name] = value
        return X.sum(), grads
    """
    assert where(loop, "grad_b2") is None
    assert where("def nn_forward_backward(params, X, y=None, reg=0.0):\n    return X, {}\n",
                 "grad_b2") is None
    assert where("def nn_predict(params, loss_func, X):\n    return X\n", "grad_b2") is None
    assert where("def nn_forward_backward(params, X:\n", "grad_b2") is None  # a SyntaxError
    assert where("import torch\n" + "x = 1\n" * (audit.MAX_SOURCE // 6), "grad_b2") is None


STUDENT = grading_corpus.BASE


def test_forward_names_the_return_and_what_it_returns_hidden_alone_when_only_it_is_wrong():
    scores = "case 0 (N=1, D=3, H=4, C=2), scores: max relative error 1.0e-01 > 1e-06"
    hidden = "case 0 (N=1, D=3, H=4, C=2), hidden: hidden has shape (4, 1), expected (1, 4)"
    assert where(STUDENT, "forward", scores).startswith("scores and hidden are computed at ")
    assert lines_named(where(STUDENT, "forward", scores)) == [
        line(STUDENT, "hidden = (X.mm"), line(STUDENT, "scores = hidden.mm"),
        line(STUDENT, "return scores, hidden")]
    assert where(STUDENT, "forward", hidden).startswith(
        f"hidden is computed at two_layer_net.py line {line(STUDENT, 'hidden = (X.mm')}")


def test_train_update_names_the_update_and_the_loop_that_picks_the_keys():
    sentence = where(STUDENT, "train_update", "params['b1'] ...: params['b1'] did not change")
    assert lines_named(sentence) == [line(STUDENT, "for k in params:"),
                                     line(STUDENT, "params[k] -= ")]


@pytest.mark.parametrize("update", [
    "        for k, p in params.items():\n            p -= learning_rate * grads[k]\n",
    "        for p, g in zip(params.values(), grads.values()):\n            p.sub_(learning_rate * g)\n",
    "        params.update({k: v - learning_rate * grads[k] for k, v in params.items()})\n",
    "        sgd(params, grads, learning_rate)\n",
])
def test_train_update_finds_the_update_in_its_usual_forms(update):
    source = STUDENT.replace("        for k in params:\n            params[k] -= learning_rate * "
                             "grads[k]\n", update) + textwrap.dedent("""

        def sgd(weights, gradients, lr):
            for name in weights:
                weights[name] = weights[name] - lr * gradients[name]
        """)
    sentence = where(source, "train_update", "params['W1'] ...: it moved up the gradient")
    assert sentence and all(n > line(STUDENT, "def nn_train") for n in lines_named(sentence))
    if "sgd(" in update:
        assert "in sgd, line" in sentence


def test_train_messages_about_loss_func_name_its_call():
    sentence = where(STUDENT, "train_update", "loss_func received reg=0.0, expected ... (0.123)")
    assert lines_named(sentence) == [line(STUDENT, "loss_func(params, X_batch")]


def test_train_schedule_names_the_decay_its_if_and_what_the_if_tests():
    source = STUDENT.replace("iterations_per_epoch = max(num_train // batch_size, 1)",
                             "iterations_per_epoch = 1")
    sentence = where(source, "train_schedule", "iteration 2 stepped with learning rate 0.2, ...")
    assert lines_named(sentence) == [line(source, "iterations_per_epoch = 1"),
                                     line(source, "if it % iterations_per_epoch"),
                                     line(source, "learning_rate *= ")]


def test_train_schedule_names_where_a_history_is_filled():
    sentence = where(STUDENT, "train_schedule", "stats['train_acc_history'] does not hold ...")
    assert lines_named(sentence) == [line(STUDENT, "if it % iterations_per_epoch"),
                                     line(STUDENT, "train_acc = "),
                                     line(STUDENT, "train_acc_history.append")]


def test_predict_names_the_return_and_the_labels():
    sentence = where(STUDENT, "predict", "case 0 (...): 3 of 5 labels are not the argmax")
    assert lines_named(sentence) == [line(STUDENT, "y_pred = torch.argmax"),
                                     line(STUDENT, "return y_pred")]


def test_source_is_quoted_short_and_printable():
    source = ("def nn_predict(params, loss_func, X):\n"
              "    return loss_func(params, X).argmax(dim=1) + 0 * len('`\x1b[31m\t`' + '"
              + "x" * 100 + "')\n")
    sentence = where(source, "predict", "3 of 5 labels are not the argmax")
    code = sentence.split(": `", 1)[1]
    assert len(code) <= locate.MAX_CODE + 3 and code.endswith("…`.")
    assert code.count("`") == 1  # the closing quote only: a backquote of the source is replaced
    assert code.isprintable() and "?[31m" in code  # the terminal escape is no escape any more


def test_only_failed_value_tests_get_a_line():
    messages = {
        "grad_W2": Verdict(True, "max relative error 1e-16 <= 1e-06 over 14 calls"),
        "grad_b2": Verdict(False, VALUE),
        "grad_W1": Verdict(False, "case 0: nn_forward_backward raised ValueError: bad\n"
                                  "  File \"two_layer_net.py\", line 3, in nn_forward_backward"),
        "grad_b1": Verdict(False, "nn_forward_backward used torch.autograd (loss.backward() at "
                                  "two_layer_net.py line 9); the gradients must be computed by "
                                  "hand, so the gradient tests score 0"),
        "loss": Verdict(False, "timed out after 8 s (an endless loop, or far too slow)"),
        "forward": Verdict(False, "case 1 ...: nn_forward_backward returned no grads['W1']"),
    }
    verdicts = dict(messages)
    rubric.locate_failures(verdicts, {"two_layer_net.py": textwrap.dedent(PLAIN).encode()})
    assert {k: v for k, v in verdicts.items() if v != messages[k]} == {"grad_b2": Verdict(
        False, VALUE + "\n" + where(PLAIN, "grad_b2"))}


def test_the_submission_is_parsed_under_the_audits_lock(monkeypatch):
    entered = []

    class Recording:
        def __enter__(self):
            entered.append(True)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(audit, "_PARSING", Recording())
    assert where(PLAIN, "grad_b2") and entered


def grade(tmp_path, source):
    path = tmp_path / "two_layer_net.py"
    path.write_text(source)
    return selfcheck.grade_in_process(str(path), seed="locate-test", public=False)


@pytest.mark.parametrize("entry, test, fragment", [
    ("db2_mean", "grad_b2", "grads['b2'] = dscores.mean(dim=0)"),
    ("relu_mask_missing", "grad_W1", "grads['W1'] = X.t().mm(dh1)"),
    ("train_bias_not_updated", "train_update", "for k in ('W1', 'W2'):"),
    ("predict_argmin", "predict", "y_pred = torch.argmin(scores, dim=1)"),
])
def test_the_self_check_names_the_line_of_a_corpus_bug(tmp_path, entry, test, fragment):
    (source,) = [e.source for e in grading_corpus.entries([], "/nonexistent") if e.name == entry]
    result = grade(tmp_path, source)
    tests = {t.name: t for t in result.tests}
    assert tests[test].status == "failed"
    assert f"line {line(source, fragment)}: `{fragment}" in tests[test].output
    assert all("two_layer_net.py line" not in t.output for t in result.tests if t.name != test
               and t.status == "passed")
    table = " ".join(report.table(result).split())
    assert f"line {line(source, fragment)}: `{fragment}" in table


def test_modules_importing_each_other_in_a_circle_name_no_line_and_do_not_hang():
    circle = "from a import nn_forward_backward\n"
    assert where(circle, "grad_b2", a="from two_layer_net import nn_forward_backward\n") is None


def test_a_function_imported_from_an_own_module_is_read_there():
    helpers = """
    def nn_forward_backward(params, X, y=None, reg=0.0):
        grads = {'b2': X.sum(dim=0)}
        return X.sum(), grads
    """
    sentence = where("from mine import nn_forward_backward\n", "grad_b2", mine=helpers)
    assert sentence == (f"grads['b2'] is set at mine.py line {line(helpers, 'grads = ')}: "
                        "`grads = {'b2': X.sum(dim=0)}`.")


@pytest.mark.parametrize("after", [
    "nn_forward_backward = other\n",
    "if True:\n    def nn_forward_backward(params, X, y=None, reg=0.0):\n        return X, {}\n",
    "from somewhere import nn_forward_backward\n",
])
def test_a_function_rebound_after_its_def_names_no_line(after):
    source = "def nn_forward_backward(params, X, y=None, reg=0.0):\n    return X, {'b2': X}\n\n\n"
    assert where(source, "grad_b2") is not None
    assert where(source + after, "grad_b2") is None


def test_a_method_or_local_of_the_same_name_elsewhere_rebinds_nothing():
    source = ("def nn_forward_backward(params, X, y=None, reg=0.0):\n    return X, {'b2': X}\n\n\n"
              "class TwoLayerNet:\n    def nn_forward_backward(self):\n        return None\n\n\n"
              "def tune():\n    nn_forward_backward = None\n    return nn_forward_backward\n")
    assert lines_named(where(source, "grad_b2")) == [2]


def test_lines_are_counted_as_python_counts_them():
    """A form feed is a line break to str.splitlines, not to Python: the line named is right."""
    source = STUDENT.replace("    num_train = X.shape[0]\n", "    num_train = X.shape[0]  # \x0c\n")
    sentence = where(source, "train_update", "params['b1'] ...: params['b1'] did not change")
    assert "`for k in params:`" in sentence and lines_named(sentence)[0] == line(
        STUDENT, "for k in params:")


def test_a_helper_whose_result_cannot_be_paired_is_named_by_its_def_line():
    source = """
    def backward_all(dscores):
        return dscores.sum(dim=0)


    def nn_forward_backward(params, X, y=None, reg=0.0):
        grads = {}
        dhidden, grads['b2'] = backward_all(X)
        return X.sum(), grads
    """
    assert where(source, "grad_b2").endswith(
        f"in backward_all, line {line(source, 'def backward_all')}: `def backward_all(dscores):`.")


def test_an_update_through_names_taken_from_params_is_found():
    update = ("        W1, W2 = params['W1'], params['W2']\n"
              "        W1 -= learning_rate * grads['W1']\n"
              "        W2 = W2 - learning_rate * grads['W2']\n")
    source = STUDENT.replace("        for k in params:\n            params[k] -= learning_rate * "
                             "grads[k]\n", update)
    sentence = where(source, "train_update", "params['W2'] ...: params['W2'] did not change")
    assert lines_named(sentence) == [line(source, "W1 -= "), line(source, "W2 = W2 - ")]


CS231N = """
import torch


def affine_forward(x, w, b):
    return x @ w + b, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout @ w.t()
    dw = x.t() @ dout
    db = dout.sum(dim=1)
    return dx, dw, db


def nn_forward_backward(params, X, y=None, reg=0.0):
    hidden, cache1 = affine_forward(X, params['W1'], params['b1'])
    hidden = hidden.clamp(min=0)
    scores, cache2 = affine_forward(hidden, params['W2'], params['b2'])
    if y is None:
        return scores
    dscores = scores.softmax(dim=1)
    grads = {}
    dhidden, grads['W2'], grads['b2'] = affine_backward(dscores, cache2)
    _, grads['W1'], grads['b1'] = affine_backward(dhidden * (hidden > 0), cache1)
    return scores.sum(), grads
"""


def test_cs231n_helper_functions_are_followed_into_the_element_they_return():
    assert where(CS231N, "grad_b2").endswith(
        f"in affine_backward, line {line(CS231N, 'db = ')}: `db = dout.sum(dim=1)`.")
    assert lines_named(where(CS231N, "grad_W1")) == [line(CS231N, "_, grads['W1']"),
                                                     line(CS231N, "dw = ")]


def test_a_loss_combined_in_the_return_names_the_return_too():
    source = PLAIN.replace("    loss = data_loss + reg_loss\n", "").replace(
        "    return loss, grads\n", "    return data_loss + reg_loss, grads\n")
    assert lines_named(where(source, "loss", LOSS)) == [
        line(source, "data_loss = "), line(source, "reg_loss = "), line(source, "return data_loss")]


def test_self_in_a_method_is_an_object_of_that_methods_class():
    sentence = where(MODULAR, "grad_W2")
    assert sentence.endswith(f"in Linear.backward, line {line(MODULAR, 'self.dW = self.x')}: "
                             "`self.dW = self.x.t() @ dout`.")


def test_a_product_is_not_followed_into_its_factors():
    source = PLAIN.replace("grads['W2'] = hidden.t() @ dscores", "grads['W2'] = hidden.T @ dscores")
    assert lines_named(where(source, "grad_W2")) == [line(source, "grads['W2'] = ")]


def test_an_empty_initial_entry_is_not_where_a_gradient_is_computed():
    source = PLAIN.replace("    grads = {}\n", "    grads = {'W1': None, 'b1': None, 'W2': None, 'b2': None}\n")
    assert lines_named(where(source, "grad_b2")) == lines_named(where(PLAIN, "grad_b2"))
