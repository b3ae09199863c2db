"""The grader's corpus: broken and hostile submissions, each with the verdict it must get.

Every entry starts from tests/submissions/student_solution.py (a correct solution written the
way students of the original course write it) and makes one visible change: a bug, an attack,
or a malformed package. `expect` maps each test that must fail to a regular expression its
feedback must match; every test not named must pass. "*" stands for all ten tests.

Hostile code mostly goes into nn_predict, which no other test calls, so that the entry also
shows that the other nine tests are unaffected.
"""
import contextlib
import ctypes
import io
import os
import re
import socket
import textwrap
import zipfile
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = open(os.path.join(HERE, "submissions", "student_solution.py")).read()
ALL = "*"
FORWARD_DEPENDENT = ["forward", "loss", "loss_stability", "grad_W1", "grad_b1", "grad_W2",
                     "grad_b2", "predict"]


@dataclass
class Entry:
    name: str
    why: str
    kind: str = "py"  # py, folder, zip, raw
    files: dict = field(default_factory=dict)  # for folder/zip: relative path -> text
    source: str = ""
    raw: bytes = b""  # for zip/raw: the archive's bytes
    expect: dict = field(default_factory=dict)
    flags: str = ""  # a regular expression grades.csv's flags column must match ("" = empty)


def edit(old, new, text=BASE):
    """`text` with the single occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, f"corpus edit target {old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def in_predict(code):
    """The base with `code` run at the start of nn_predict."""
    body = textwrap.indent(textwrap.dedent(code).strip("\n"), "    ")
    return edit("def nn_predict(params, loss_func, X):\n",
                "def nn_predict(params, loss_func, X):\n" + body + "\n")


def names_line(source, fragment):
    """A pattern for feedback that names, on a line of its own, the line of `source` holding
    `fragment` (grader.locate: where the failed test's quantity is computed)."""
    (number,) = [i for i, text in enumerate(source.splitlines(), 1) if fragment in text]
    return rf".*\n.*two_layer_net\.py .*line {number}: `{re.escape(fragment.strip())}"


def fails(tests, pattern):
    return {t: pattern for t in tests}


def build_zip(members):
    """Bytes of a zip archive from [(name, text, external_attr or None)]."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text, attr in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if attr is not None:
                info.external_attr = attr
            archive.writestr(info, text)
    return buffer.getvalue()


STUB = '''
import torch


def nn_forward_pass(params, X):
    raise NotImplementedError("compute hidden = max(0, X @ W1 + b1) and scores = hidden @ W2 + b2")


def nn_forward_backward(params, X, y=None, reg=0.0):
    raise NotImplementedError("compute the softmax loss with the L2 term")


def nn_train(params, loss_func, pred_func, X, y, X_val, y_val, learning_rate=1e-3,
             learning_rate_decay=0.95, reg=5e-6, num_iters=100, batch_size=200, verbose=False):
    raise NotImplementedError("the SGD loop of the contract")


def nn_predict(params, loss_func, X):
    raise NotImplementedError("the label with the highest score")
'''

AUTOGRAD_BACKWARD = '''

def nn_forward_backward(params, X, y=None, reg=0.0):
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    scores, _ = nn_forward_pass(leaves, X)
    if y is None:
        return scores.detach()
    loss = torch.nn.functional.cross_entropy(scores, y)
    loss = loss + reg * ((leaves['W1'] ** 2).sum() + (leaves['W2'] ** 2).sum())
    loss.backward()
    return loss.detach(), {k: v.grad for k, v in leaves.items()}
'''

TORCH_FUNC_BACKWARD = '''

def nn_forward_backward(params, X, y=None, reg=0.0):
    scores, _ = nn_forward_pass(params, X)
    if y is None:
        return scores

    def loss_of(p):
        s, _ = nn_forward_pass(p, X)
        return torch.nn.functional.cross_entropy(s, y) + reg * ((p['W1'] ** 2).sum() + (p['W2'] ** 2).sum())

    loss, grads = torch.func.grad_and_value(loss_of)(params)[::-1]
    return loss, grads
'''


GRADIENTS = ["grad_W1", "grad_b1", "grad_W2", "grad_b2"]

FINITE_DIFFERENCES_BACKWARD = '''

def _loss(W1, b1, W2, b2, X, y, reg):
    """The loss of a batch of parameter sets (a leading batch dimension on each)."""
    hidden = (X @ W1 + b1[:, None, :]).clamp(min=0)
    scores = hidden @ W2 + b2[:, None, :]
    log_probs = scores - torch.logsumexp(scores, dim=2, keepdim=True)
    return (-log_probs[:, torch.arange(len(y)), y].mean(dim=1)
            + reg * ((W1 ** 2).sum((1, 2)) + (W2 ** 2).sum((1, 2))))


def nn_forward_backward(params, X, y=None, reg=0.0, h=1e-5):
    if y is None:
        return nn_forward_pass(params, X)[0]
    names = ['W1', 'b1', 'W2', 'b2']
    grads = {}
    for k in names:
        value = params[k]
        steps = h * torch.eye(value.numel(), dtype=value.dtype).view(-1, *value.shape)
        moved = [params[j].expand(len(steps), *params[j].shape) for j in names]
        i = names.index(k)
        plus = _loss(*moved[:i], value + steps, *moved[i + 1:], X, y, reg)
        minus = _loss(*moved[:i], value - steps, *moved[i + 1:], X, y, reg)
        grads[k] = ((plus - minus) / (2 * h)).view(value.shape)
    one = [params[j][None] for j in names]
    return _loss(*one, X, y, reg)[0], grads
'''

# Host objects the suite puts up before the batch (host_objects, below): a root-only System V
# segment and Unix socket, and a world-writable socket, that no child may reach. Named by this
# process, so that two suites on one machine never take each other's down.
HOST_SHM_KEY = 0x7E57_0000 + os.getpid() % 0x10000
HOST_SOCKETS = (f"/tmp/two-layer-net-test-{os.getpid()}-open.sock",
                f"/tmp/two-layer-net-test-{os.getpid()}-private/root.sock")


@contextlib.contextmanager
def host_objects():
    """What a child must not reach on the host: a root-only System V segment holding a marker,
    a world-writable Unix socket and one in a root-only folder, for the block's duration."""
    libc = ctypes.CDLL(None, use_errno=True)
    shmid = libc.shmget(HOST_SHM_KEY, 4096, 0o1600)  # IPC_CREAT, mode 0600
    assert shmid >= 0, f"shmget: errno {ctypes.get_errno()}"
    servers = []
    open_path, private_path = HOST_SOCKETS
    os.makedirs(os.path.dirname(private_path), mode=0o700, exist_ok=True)
    for path, mode in ((open_path, 0o777), (private_path, 0o700)):
        if os.path.exists(path):
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen(100)
        os.chmod(path, mode)
        servers.append(server)
    yield
    libc.shmctl(shmid, 0, None)  # IPC_RMID
    for server, path in zip(servers, HOST_SOCKETS):
        server.close()
        os.unlink(path)
    os.rmdir(os.path.dirname(private_path))


SHM = """
                  import ctypes
                  libc = ctypes.CDLL(None, use_errno=True)
                  libc.shmat.restype = ctypes.c_void_p"""  # indented as the entries' code below


def evading(code_before_backward, call="loss.backward()"):
    """The autograd backward pass, with `code_before_backward` run first and `call` in place of
    loss.backward(): the routes a student took around an autograd watch."""
    body = textwrap.indent(textwrap.dedent(code_before_backward).strip("\n"), "    ")
    return BASE + AUTOGRAD_BACKWARD.replace("    loss.backward()\n", body + "\n    " + call + "\n")


def entries(instructor_files, results_dir):
    """The corpus. `instructor_files` are paths no child may read (their text must not leak);
    `results_dir` is the batch's --out folder, which no child may write."""
    bugs = [
        Entry("correct", "the base solution", source=BASE),
        Entry("predict_via_loss_func", "nn_predict through loss_func, as the contract says",
              source=edit("    scores, _ = nn_forward_pass(params, X)\n    y_pred",
                          "    scores = loss_func(params, X)\n    y_pred")),
        Entry("predict_in_batches", "nn_predict asks loss_func for 64 rows at a time, as students "
              "do to save memory: the grader's loss_func answers for any rows of X",
              source=edit("    scores, _ = nn_forward_pass(params, X)\n    y_pred",
                          "    scores = torch.cat([loss_func(params, X[i:i + 64])\n"
                          "                        for i in range(0, X.shape[0], 64)])\n    y_pred")),
        Entry("forward_missing_relu", "hidden = X @ W1 + b1 without max(0, .)",
              source=edit("(X.mm(W1) + b1).clamp(min=0)", "(X.mm(W1) + b1)"),
              expect={**fails(FORWARD_DEPENDENT, "."),
                      "forward": r"max relative error .* > 1e-06"}),
        Entry("half_regulariser", "0.5 * reg * sum(W**2) and its gradient reg * W",
              source=edit("2 * reg * W1", "reg * W1", edit("2 * reg * W2", "reg * W2", edit(
                  "loss += reg * torch.sum(W1 * W1) + reg * torch.sum(W2 * W2)",
                  "loss += 0.5 * reg * torch.sum(W1 * W1) + 0.5 * reg * torch.sum(W2 * W2)"))),
              expect={"loss": r"matches 0\.5 \* reg \* sum\(W\*\*2\)",
                      "grad_W1": "relative error", "grad_W2": "relative error"}),
        Entry("sum_not_mean", "the data loss summed over examples instead of averaged",
              source=edit("    loss /= N\n", "", edit("    dscores /= N\n", "")),
              expect=fails(["loss", "loss_stability", "grad_W1", "grad_b1", "grad_W2", "grad_b2"],
                           "relative error")),
        Entry("unstable_softmax", "exp(scores) without subtracting the row maximum",
              source=edit("shifted = scores - scores.max(dim=1, keepdim=True).values",
                          "shifted = scores"),
              expect={"loss_stability": r"NaN or inf.*subtract each row's maximum"}),
        Entry("relu_mask_missing", "the backward pass forgets the ReLU's mask (a gradient bug: "
              "the gradient tests alone pay for it)",
              source=edit("    dh1[h1 <= 0] = 0\n", ""),
              expect={"grad_W1": "relative error" + names_line(
                          edit("    dh1[h1 <= 0] = 0\n", ""), "grads['W1'] = X.t().mm(dh1)"),
                      "grad_b1": "relative error"}),
        Entry("db2_mean", "db2 averaged a second time",
              source=edit("grads['b2'] = dscores.sum(dim=0)", "grads['b2'] = dscores.mean(dim=0)"),
              expect={"grad_b2": "relative error" + names_line(
                  BASE, "grads['b2'] = dscores.").replace("dscores\\.", "dscores\\.mean")}),
        Entry("loss_without_grads", "a correct loss and no gradients yet: the loss tests keep "
              "their points", source=edit("    return loss, grads\n", "    return loss, {}\n"),
              expect=fails(GRADIENTS, r"returned no grads\['(W1|b1|W2|b2)'\]")),
        Entry("log_p_plus_eps", "-log(p + 1e-12): wrong wherever a correct class's probability "
              "is below 1e-12, as at ordinary training scores",
              source=edit("    log_probs = shifted - torch.log(exp_scores.sum(dim=1, keepdim=True))\n",
                          "    log_probs = torch.log(probs + 1e-12)\n"),
              expect={"loss": r"loss relative error", "loss_stability": "relative error"}),
        Entry("softmax_over_columns", "softmax normalised over dim=0 after subtracting the row "
              "maximum: no hint about overflow, which it does not have",
              source=edit("    probs = exp_scores / exp_scores.sum(dim=1, keepdim=True)\n"
                          "    log_probs = shifted - torch.log(exp_scores.sum(dim=1, keepdim=True))\n",
                          "    probs = exp_scores / exp_scores.sum(dim=0, keepdim=True)\n"
                          "    log_probs = shifted - torch.log(exp_scores.sum(dim=0, keepdim=True))\n"),
              expect={**fails(["loss"] + GRADIENTS, "relative error|NaN or inf"),
                      "loss_stability": r"^(?!.*overflow).*wrong at ordinary scores as well"}),
        Entry("finite_differences_by_hand", "the backward pass by central differences (all "
              "entries of a parameter at once): not backpropagation",
              source=BASE + FINITE_DIFFERENCES_BACKWARD,
              expect=fails(GRADIENTS, r"^finite differences, not backpropagation"),
              flags="finite differences"),
        Entry("finite_differences_kit_helper", "the backward pass by the kit's "
              "helpers.numeric_gradient (for db2)", source="import helpers\n" + edit(
                  "grads['b2'] = dscores.sum(dim=0)",
                  "grads['b2'] = helpers.numeric_gradient(\n"
                  "        lambda b: -(h1.mm(W2) + b).log_softmax(1)[torch.arange(N), y].mean(), b2)"),
              expect=fails(GRADIENTS, r"computes finite differences \(helpers\.numeric_gradient"),
              flags="finite differences in backward pass"),
        Entry("dW2_without_reg", "the L2 term's gradient missing from dW2",
              source=edit("grads['W2'] = h1.t().mm(dscores) + 2 * reg * W2",
                          "grads['W2'] = h1.t().mm(dscores)"),
              expect={"grad_W2": r"reg=0\.\d+\), grads\['W2'\]: max relative error"}),
        Entry("train_not_in_place", "params[k] = params[k] - lr * grads[k]: the new tensor under "
              "the same key is right, as in the original course",
              source=edit("params[k] -= learning_rate * grads[k]",
                          "params[k] = params[k] - learning_rate * grads[k]")),
        Entry("train_bias_not_updated", "the update skips the biases: train_update alone pays",
              source=edit("        for k in params:\n", "        for k in ('W1', 'W2'):\n"),
              expect={"train_update": r"params\['b1'\] did not change" + names_line(
                  BASE, "        for k in ")}),
        Entry("train_no_learning_rate", "params[k] -= grads[k]: train_update alone pays",
              source=edit("params[k] -= learning_rate * grads[k]", "params[k] -= grads[k]"),
              expect={"train_update": r"without the learning rate"}),
        Entry("train_adds_gradient", "params[k] += lr * grads[k]: train_update alone pays",
              source=edit("params[k] -= learning_rate * grads[k]",
                          "params[k] += learning_rate * grads[k]"),
              expect={"train_update": r"moved up the gradient; subtract"}),
        Entry("train_decays_every_iteration", "one epoch per iteration whatever the sizes",
              source=edit("iterations_per_epoch = max(num_train // batch_size, 1)",
                          "iterations_per_epoch = 1"),
              expect={"train_schedule": r"iteration 2 stepped with learning rate 0\.2, expected "
                                        r"0\.4" + names_line(BASE, "iterations_per_epoch = ")}),
        Entry("train_drops_reg", "loss_func called without reg",
              source=edit("loss_func(params, X_batch, y=y_batch, reg=reg)",
                          "loss_func(params, X_batch, y=y_batch)"),
              expect={"train_update": r"loss_func received reg=0\.0, expected .* \(0\.123\)"}),
        Entry("train_acc_on_all_data", "training accuracy measured on all of X, not X_batch",
              source=edit("pred_func(params, loss_func, X_batch)", "pred_func(params, loss_func, X)",
                          edit("(y_train_pred == y_batch)", "(y_train_pred == y)")),
              expect={"train_schedule": r"stats\['train_acc_history'\] does not hold"}),
        Entry("predict_argmin", "argmin instead of argmax",
              source=edit("torch.argmax(scores, dim=1)", "torch.argmin(scores, dim=1)"),
              expect={"predict": r"labels are not the argmax" + names_line(
                  BASE, "y_pred = torch.argmax").replace("argmax", "argmin")}),
        Entry("predict_int32", "labels as int32",
              source=edit("y_pred = torch.argmax(scores, dim=1)",
                          "y_pred = torch.argmax(scores, dim=1).int()"),
              expect={"predict": r"dtype torch\.int32, expected torch\.int64"}),
        Entry("forward_transposed", "scores returned as (C, N)",
              source=edit("    return scores, hidden\n", "    return scores.t(), hidden\n"),
              expect=fails(FORWARD_DEPENDENT, ".")),
        Entry("forward_numpy", "numpy arrays instead of tensors",
              source=edit("    return scores, hidden\n", "    return scores.numpy(), hidden\n"),
              expect={**fails(FORWARD_DEPENDENT, "."),
                      "forward": r"scores is a ndarray, expected a torch\.Tensor"}),
        Entry("nan_scores", "NaN everywhere",
              source=edit("    return scores, hidden\n",
                          "    return scores * float('nan'), hidden\n"),
              expect={**fails(FORWARD_DEPENDENT, "."), "forward": "contains NaN or inf"}),
        Entry("autograd_backward", "the backward pass through loss.backward()",
              source=BASE + AUTOGRAD_BACKWARD,
              expect=fails(GRADIENTS, r"used torch\.autograd .*backward.*by hand"), flags="autograd"),
        Entry("torch_func_backward", "the backward pass through torch.func.grad_and_value",
              source=BASE + TORCH_FUNC_BACKWARD,
              expect=fails(GRADIENTS, r"used torch\.autograd .*torch\.func\.grad_and_value"),
              flags="autograd"),
        Entry("log_of_probs", "subtracts the row maximum, then takes log(probs), which underflows",
              source=edit("    log_probs = shifted - torch.log(exp_scores.sum(dim=1, keepdim=True))\n",
                          "    log_probs = torch.log(probs)\n"),
              expect={"loss_stability": r"underflowed to 0.*log-probabilities from the shifted scores"}),
        Entry("forward_complex", "scores returned as a complex tensor",
              source=edit("    return scores, hidden\n", "    return scores.to(torch.complex128), hidden\n"),
              expect={**fails(FORWARD_DEPENDENT, "."),
                      "forward": r"scores has dtype torch\.complex128, expected a real"}),
        Entry("predict_uint32", "labels as uint32",
              source=edit("    return y_pred\n", "    return y_pred.to(torch.uint32)\n"),
              expect={"predict": r"dtype torch\.uint32, expected a real floating-point tensor .* or int64"}),
        Entry("predict_sparse", "labels as a sparse tensor",
              source=edit("    return y_pred\n", "    return y_pred.to_sparse()\n"),
              expect={"predict": r"torch\.sparse_coo tensor, expected an ordinary dense tensor"}),
        Entry("imports_a_missing_module", "imports a package the grader does not have",
              source="import pandas_is_not_installed_here\n" + BASE,
              expect={ALL: r"No module named 'pandas_is_not_installed_here' \(the grader's Python "
                           r"has no module .*torch, numpy, .*eecs598"}, flags="unverifiable"),
        Entry("imports_the_standard_library", "imports html, json, csv and matplotlib at module "
              "level, as public solutions do (a private Python must not make this score 0)",
              source="import csv\nimport html\nimport json\nimport matplotlib.pyplot as plt\n" + BASE),
        Entry("stubs", "the student release, untouched", source=STUB,
              expect={ALL: r"NotImplementedError: "}),
        Entry("cuda_hard_wired", "the ReLU's zero made on the course's Colab GPU: fails on the "
              "grader's CPU, and the feedback says where the device should come from",
              source=edit("hidden = (X.mm(W1) + b1).clamp(min=0)",
                          "hidden = torch.maximum(X.mm(W1) + b1, torch.zeros(1, device='cuda'))"),
              expect=fails(FORWARD_DEPENDENT, r"runs on the CPU: take the device from the "
                                              r"inputs, e\.g\. device=X\.device")),
        Entry("syntax_error_py312", "a multi-line f-string, valid only on Python >= 3.12, in a "
              "graded function: the module cannot be imported, and the feedback names the line",
              source=in_predict('print(f"{\n    X.shape}")'),
              expect={ALL: r"SyntaxError in two_layer_net\.py, line \d+"}),
        Entry("syntax_error_py312_in_a_helper", "the same f-string in a helper that only "
              "nn_predict calls: the helper is left out, so predict alone fails, naming the line",
              source=edit("def nn_predict(params, loss_func, X):\n",
                          'def shape_note(X):\n    return f"{\n        X.shape}"\n\n\n'
                          "def nn_predict(params, loss_func, X):\n    shape_note(X)\n"),
              expect={"predict": r"shape_note \(two_layer_net\.py line \d+\) does not parse on "
                                 r"Python 3\.\d+"},
              flags=r"^shape_note left out: two_layer_net\.py:\d+ does not parse"),
        Entry("crash_at_import", "an exception at import",
              source="raise RuntimeError('boom at import')\n" + BASE,
              expect={ALL: r"importing two_layer_net\.py raised RuntimeError: boom at import"}),
        Entry("sys_exit_at_import", "sys.exit at import",
              source="import sys\nsys.exit(3)\n" + BASE,
              expect={ALL: r"importing two_layer_net\.py raised SystemExit: 3"}),
        Entry("linear_classifier_own", "a folder bringing its own linear_classifier.py",
              kind="folder",
              files={"two_layer_net.py": edit(
                  "from linear_classifier import sample_batch",
                  "from linear_classifier import sample_batch, softmax_loss_vectorized"),
                     "linear_classifier.py": "import torch\n\n\ndef sample_batch(X, y, num_train, batch_size):\n"
                     "    idx = torch.randint(num_train, (batch_size,))\n    return X[idx], y[idx]\n\n\n"
                     "def softmax_loss_vectorized(W, X, y, reg):\n    raise NotImplementedError\n"}),
        Entry("zipped_folder", "a zip of a folder, the way students upload it", kind="zip",
              raw=build_zip([("alice/", "", None), ("alice/two_layer_net.py", BASE, None),
                             ("__MACOSX/alice/._two_layer_net.py", "junk", None)])),
    ]
    hostile = [
        Entry("os_exit", "os._exit in nn_predict", source=in_predict("import os\nos._exit(3)"),
              expect={"predict": r"exited \(status 3\) before returning"}),
        Entry("infinite_loop", "an endless loop in nn_predict", source=in_predict("while True:\n    pass"),
              expect={"predict": r"timed out after"}),
        Entry("infinite_loop_at_import", "an endless loop at import",
              source="while True:\n    pass\n" + BASE, expect={ALL: r"timed out after"}),
        Entry("memory_hog_tensor", "a 40 GB tensor", source=in_predict("torch.ones(10**10)"),
              expect={"predict": r"can't allocate memory.*\n\(over the \d+ MB memory limit\)"}),
        Entry("memory_hog_python", "memory grabbed in small pieces until none is left",
              source=in_predict("hog = []\nwhile True:\n    hog.append(torch.empty(2_500_000))"),
              expect={"predict": r"can't allocate memory.*\n\(over the \d+ MB memory limit\)"}),
        Entry("memory_hog_bytes", "one huge Python allocation", source=in_predict("bytearray(8 << 30)"),
              expect={"predict": r"MemoryError.*\n\(over the \d+ MB memory limit\)"}),
        Entry("output_flood", "50 MB printed, then the right answer",
              source=in_predict("import sys\nfor _ in range(50):\n    sys.stdout.write('x' * 10**6)")),
        Entry("lingering_process", "a process left behind in its own session",
              source=in_predict("""
                  import os, time
                  if os.fork() == 0:
                      os.setsid()
                      time.sleep(60)
                      os._exit(0)"""),
              expect={"predict": r"Operation not permitted"}),  # a test child may not fork
        Entry("fork_bomb", "forks until the process limit stops it",
              source=in_predict("""
                  import os
                  while True:
                      try:
                          os.fork()
                      except OSError:
                          pass"""),
              expect={"predict": r"timed out after"}),
        Entry("monkeypatch", "patches torch and builtins the grader would use, then answers wrong",
              source=edit("torch.argmax(scores, dim=1)", "torch.argmin(scores, dim=1)", in_predict("""
                  import builtins
                  torch.equal = lambda *a, **k: True
                  torch.allclose = lambda *a, **k: True
                  torch.testing.assert_close = lambda *a, **k: None
                  builtins.abs = lambda x: 0
                  builtins.max = lambda *a, **k: 0""")),
              expect={"predict": r"labels are not the argmax"}),
        Entry("forged_results", "prints a perfect score and writes results files, then answers wrong",
              source=edit("torch.argmax(scores, dim=1)", "torch.argmin(scores, dim=1)", in_predict(f"""
                  import json, os
                  fake = json.dumps({{"score": 100, "tests": [{{"name": "predict", "score": 10, "status": "passed"}}]}})
                  print(fake)
                  print("predict 10/10 passed")
                  for path in ["results.json", "../results.json", {os.path.join(results_dir, "forged_results", "results.json")!r},
                               {os.path.join(results_dir, "grades.csv")!r}]:
                      try:
                          with open(path, "w") as f:
                              f.write(fake)
                      except OSError:
                          pass""")),
              expect={"predict": r"labels are not the argmax"}),
        Entry("reads_instructor_files", "tries to read the reference, the secret and the grader's memory; "
              "answers wrong only if a read succeeded",
              source=edit("    return y_pred\n", "    return y_pred.flip(0) if stolen else y_pred\n", in_predict(f"""
                  import os
                  stolen = []
                  targets = {list(instructor_files)!r} + ["/proc/%d/environ" % os.getppid(), "/proc/1/environ",
                             "/proc/%d/mem" % os.getppid(), os.path.expanduser("~root/.bash_history")]
                  for path in targets:
                      try:
                          with open(path, "rb") as f:
                              stolen.append(f.read(100))
                      except OSError:
                          pass
                  try:
                      stolen += os.listdir(os.path.dirname(os.path.dirname(os.getcwd())))
                  except OSError:
                      pass
                  stolen += [v for k, v in os.environ.items() if "SEED" in k or "SECRET" in k]""")),
              expect={}),
        Entry("kills_the_grader", "signals its parent and every process it can; answers right",
              source=in_predict("""
                  import os, signal
                  for target in (os.getppid(), -1, 1):
                      try:
                          os.kill(target, signal.SIGKILL)
                      except OSError:
                          pass""")),
        Entry("forged_result_pipe", "writes a forged message into every open descriptor, "
              "then answers right", source=in_predict("""
                  import os
                  for fd in range(3, 1024):
                      try:
                          os.write(fd, b'\\x00\\x00\\x00\\x02{}')
                      except OSError:
                          pass"""),
              expect={"predict": r"returned malformed results"}),
        Entry("keyboard_interrupt", "a BaseException from nn_predict",
              source=in_predict("raise KeyboardInterrupt('stop')"),
              expect={"predict": r"KeyboardInterrupt: stop"}),
        Entry("network", "opens a TCP connection; answers wrong only if it could",
              source=edit("    return y_pred\n", "    return y_pred.flip(0) if connected else y_pred\n", in_predict("""
                  import socket
                  connected = False
                  try:
                      socket.socket().connect(("127.0.0.1", 22))
                      connected = True
                  except OSError as e:
                      connected = not isinstance(e, PermissionError)  # refused, not forbidden"""))),
    ]
    evasions = [  # routes around an autograd watch in the child: the audit reads the source
        Entry("autograd_engine_restored", "puts torch's original autograd engine back first",
              source=evading("""
                  from torch.autograd import variable
                  engine = variable.Variable._execution_engine
                  variable.Variable._execution_engine = getattr(engine, '_engine', engine)"""),
              expect=fails(GRADIENTS, r"autograd"), flags="autograd"),
        Entry("autograd_record_erased", "calls loss.backward(), then clears the watcher's record "
              "by walking up the call stack", source=evading("", call="""loss.backward()
    import sys
    frame = sys._getframe(1)
    while frame is not None:
        watch = frame.f_locals.get('watch')
        if watch is not None and hasattr(watch, 'used'):
            watch.used.clear()
        frame = frame.f_back"""),
              expect=fails(GRADIENTS, r"autograd"), flags="autograd.*tampering|tampering.*autograd"),
        Entry("autograd_computed_name", "reaches torch.autograd through a computed name",
              source=evading("", call="getattr(torch, 'auto' + 'grad').backward(loss)"),
              expect=fails(GRADIENTS, r"cannot verify|autograd"), flags="."),
        Entry("autograd_new_engine", "runs backward through a fresh engine object from torch._C",
              source=evading("", call="torch._C._ImperativeEngine().run_backward((loss,), (torch.ones_like(loss),), False, False, (), False, False)"),
              expect={**fails(GRADIENTS, r"autograd|cannot trust|cannot verify"),
                      **fails(["loss", "loss_stability"], r"raised")}, flags="."),
    ]
    walls = [  # what a child could reach on the host, or leave behind (issue: sandbox walls)
        Entry("sysv_shm_host", "attaches the host's root-only System V segment; answers wrong "
              "only if it could read it", source=edit("    return y_pred\n",
              "    return y_pred.flip(0) if seen else y_pred\n", in_predict(SHM + f"""
                  shmid = libc.shmget({HOST_SHM_KEY}, 0, 0)
                  seen = shmid >= 0 and libc.shmat(shmid, None, 0) not in (None, ctypes.c_void_p(-1).value)"""))),
        Entry("sysv_shm_left_behind", "creates three 64 MB System V segments, touches them and "
              "leaves them attached to nothing", source=in_predict(SHM + """
                  for _ in range(3):
                      shmid = libc.shmget(0, 64 << 20, 0o1666)
                      address = libc.shmat(shmid, None, 0)
                      if address not in (None, ctypes.c_void_p(-1).value):
                          ctypes.memset(address, 1, 64 << 20)
                          libc.shmdt(ctypes.c_void_p(address))""")),
        Entry("sysv_shm_over_the_limit", "pins more shared memory than --memory allows",
              source=in_predict(SHM + """
                  for _ in range(20):
                      shmid = libc.shmget(0, 64 << 20, 0o1600)
                      address = libc.shmat(shmid, None, 0)
                      ctypes.memset(address, 1, 64 << 20)"""),
              expect={"predict": r"memory limit|can't allocate memory|killed by"}),
        Entry("unix_sockets", "connects to the host's Unix sockets (world-writable and root-only); "
              "answers wrong only if it could", source=edit("    return y_pred\n",
              "    return y_pred.flip(0) if reached else y_pred\n", in_predict(f"""
                  import socket
                  reached = False
                  for path in {list(HOST_SOCKETS)!r}:
                      try:
                          socket.socket(socket.AF_UNIX).connect(path)
                          reached = True
                      except OSError:
                          pass"""))),
        Entry("udp_out", "sends UDP datagrams out; answers wrong only if one left",
              source=edit("    return y_pred\n", "    return y_pred.flip(0) if sent else y_pred\n",
                          in_predict("""
                  import socket
                  sent = False
                  for address in (("127.0.0.1", 9), ("10.0.0.1", 53)):
                      try:
                          socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", address)
                          sent = True
                      except OSError:
                          pass"""))),
        Entry("deep_fork_chain", "a 61-deep chain of forks, each link in its own session, left "
              "running", source=in_predict("""
                  import os, time
                  for _ in range(61):
                      if os.fork() != 0:
                          break
                      os.setsid()
                  else:
                      time.sleep(120)
                  if os.getpid() != 1 and os.getppid() not in (0, 1):
                      time.sleep(120)"""),
              expect={"predict": r"Operation not permitted"}),  # a test child may not fork
    ]
    forgeries = [  # replies a child writes itself, then exits: none may crash the judging
        Entry(f"forged_reply_{label}", f"writes its own reply ({why}) on the result pipe",
              source=in_predict(f"""
                  import os, struct
                  header = ('{{"meta": ' + {meta} + ', "arrays": ' + {arrays} + '}}').encode()
                  message = struct.pack(">I", len(header)) + header
                  for fd in range(3, 64):
                      try:
                          os.fstat(fd)
                          os.write(fd, message)
                      except OSError:
                          pass
                  os._exit(0)"""),
              expect={"predict": r"returned malformed results|exited"})
        for label, why, meta, arrays in (
            ("errors_list", "meta errors as a list", """'{"errors": ["x"]}'""", "'[]'"),
            ("deep_header", "a header nested 100,000 deep", "'[' * 100000 + ']' * 100000", "'[]'"),
            ("huge_shape", "an array of shape [0, 2**64]", """'{"errors": {}}'""",
             """'[{"name": "case0/labels", "dtype": "int64", "shape": [0, %d], "offset": 0, "nbytes": 0}]' % 2**64"""),
        )
    ] + [
        Entry("fake_grader_fault", "prints a grader-child line and exits 70, to blame the grader",
              source=in_predict("""
                  import os, sys
                  sys.stderr.write("\\ngrader child: SandboxError: the sandbox failed\\n")
                  sys.stderr.flush()
                  os._exit(70)"""),
              expect={"predict": r"^(?!.*(grader fault|not yours)).*exited \(status 70\)"}),
    ]
    packaging = [
        Entry("not_a_submission.rar", "an archive format the grader does not read", kind="raw",
              raw=b"Rar!\x1a\x07\x00", expect={ALL: r"is not a \.py, \.zip or folder"}),
        Entry("empty_folder", "a folder without two_layer_net.py", kind="folder",
              files={"notes.txt": "nothing here"}, expect={ALL: r"holds no two_layer_net\.py"}),
        Entry("zip_slip", "a member that would land outside the folder", kind="zip",
              raw=build_zip([("two_layer_net.py", BASE, None), ("../../evil.py", "x", None)]),
              expect={ALL: r"would land outside its folder"}),
        Entry("zip_absolute", "a member with an absolute path", kind="zip",
              raw=build_zip([("two_layer_net.py", BASE, None), ("/tmp/evil.py", "x", None)]),
              expect={ALL: r"absolute path"}),
        Entry("zip_symlink", "a member that is a link", kind="zip",
              raw=build_zip([("two_layer_net.py", BASE, None),
                             ("helpers.py", "/etc/passwd", (0o120777 << 16))]),
              expect={ALL: r"has a link 'helpers\.py'"}),
        Entry("zip_bomb", "a member that unpacks to more than the limit", kind="zip",
              raw=build_zip([("two_layer_net.py", BASE, None), ("big.py", "#" * (21 << 20), None)]),
              expect={ALL: r"unpacks to \d+ bytes, more than 20 MB"}),
        Entry("zip_corrupt", "not a zip at all", kind="raw_zip", raw=b"PK\x03\x04 this is not a zip",
              expect={ALL: r"is not a readable zip archive"}),
    ]
    everything = bugs + hostile + evasions + walls + forgeries + packaging
    for entry in everything:  # reaching the grader's processes, memory or descriptors
        if entry.name in TAMPERING:
            entry.expect = {**fails(GRADIENTS, r"cannot trust its autograd check"), **entry.expect}
            entry.flags = entry.flags or "tampering"
    return everything


# Entries whose source reaches for the grader (processes, descriptors, memory, sockets, patches):
# the audit cannot trust a backward pass next to that, so their gradient tests score 0.
TAMPERING = {"lingering_process", "fork_bomb", "monkeypatch", "reads_instructor_files",
             "kills_the_grader", "forged_result_pipe", "network", "sysv_shm_host",
             "sysv_shm_left_behind", "sysv_shm_over_the_limit", "unix_sockets", "udp_out",
             "deep_fork_chain", "forged_reply_errors_list", "forged_reply_deep_header",
             "forged_reply_huge_shape"}


def write(entry, folder):
    """Write the entry as a submission under `folder`; returns the path to pass to grade.py."""
    if entry.kind == "py":
        path = os.path.join(folder, entry.name + ".py")
        with open(path, "w") as f:
            f.write(entry.source)
    elif entry.kind == "folder":
        path = os.path.join(folder, entry.name)
        os.makedirs(path)
        for rel, text in entry.files.items():
            with open(os.path.join(path, rel), "w") as f:
                f.write(text)
    else:
        suffix = ".zip" if entry.kind in ("zip", "raw_zip") else ""
        path = os.path.join(folder, entry.name + suffix)
        with open(path, "wb") as f:
            f.write(entry.raw)
    return path


def result_name(entry):
    """The name grade.py gives the entry's results folder (a .py or .zip loses its suffix)."""
    return entry.name


def processes_of(uids):
    """The pids of every process on the machine whose uid is in `uids` (sandbox uids)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if uid in uids:
            found.append(pid)
    return found
