"""A class for `grade.py similar` to rank: independent solutions, disguised copies, the stubs.

Each STYLE is an independent, correct solution of every student region of the kit's module
(grader.release's regions, in order: forward, loss, backward, diverge, update, predict, search,
best), written in its own way: vectorised, loops, modular layers, numpy-like, einsum,
step-by-step, fused. `module(style)` puts one into the release's stubs, so it keeps the given
scaffold as a student's file does. The DISGUISES rewrite a module as a copier would: renamed
names, another layout, other comments, reordered functions, dead code; `partial` copies one
function (nn_forward_backward) of one solution into another. ANSWERS are the written answers
of some styles, and `reworded` copies them with light rewording.
"""
import ast
import io
import json
import keyword
import os
import random
import re
import tokenize

from conftest import ROOT
from grader import release

REGIONS = ["forward", "loss", "backward", "diverge", "update", "predict", "search", "best"]
API = {"nn_forward_pass", "nn_forward_backward", "nn_train", "nn_predict", "nn_get_search_params",
       "find_best_net", "sample_batch", "TwoLayerNet", "torch", "math", "warnings", "itertools",
       "params", "loss_func", "pred_func", "X", "y", "X_val", "y_val", "reg", "learning_rate",
       "learning_rate_decay", "num_iters", "batch_size", "verbose", "data_dict",
       "get_param_set_fn", "input_size", "hidden_size", "output_size", "dtype", "device", "std",
       "seed", "self", "path", "generator", "dim", "keepdim", "min", "alpha", "num_classes",
       "axis", "weights_only", "map_location", "beta", "stacklevel", "cls",
       "it", "loss", "k", "loaded", "old"}  # and the names f-strings use

BEST_LOOPS = '''\
learning_rates, hidden_sizes, regs, decays = get_param_set_fn()
for lr in learning_rates:
    for hs in hidden_sizes:
        for r in regs:
            for decay in decays:
                model = TwoLayerNet(X_train.shape[1], hs, num_classes, dtype=X_train.dtype,
                                    device=X_train.device, seed=0)
                st = model.train(X_train, y_train, X_val, y_val, learning_rate=lr,
                                 learning_rate_decay=decay, reg=r, num_iters=num_iters,
                                 batch_size=batch_size)
                acc = (model.predict(X_val) == y_val).double().mean().item()
                search.append({"learning_rate": lr, "hidden_size": hs, "reg": r,
                               "learning_rate_decay": decay, "val_acc": acc})
                if acc > best_val_acc:
                    best_val_acc = acc
                    best_net = model
                    best_stat = st
'''

STYLES = {
    "vectorised": {
        "forward": '''\
z1 = X.matmul(W1) + b1
hidden = torch.relu(z1)
scores = hidden.matmul(W2) + b2
''',
        "loss": '''\
num = X.size(0)
lse = torch.logsumexp(scores, dim=1)
correct = scores.gather(1, y.view(-1, 1)).squeeze(1)
loss = (lse - correct).mean() + reg * ((W1 ** 2).sum() + (W2 ** 2).sum())
''',
        "backward": '''\
p = torch.softmax(scores, dim=1)
p[torch.arange(num), y] -= 1.0
p = p / num
grads["W2"] = hidden.t().matmul(p) + 2.0 * reg * W2
grads["b2"] = p.sum(0)
dh = p.matmul(W2.t())
dh = dh * (hidden > 0).to(dh.dtype)
grads["W1"] = X.t().matmul(dh) + 2.0 * reg * W1
grads["b1"] = dh.sum(0)
''',
        "diverge": '''\
diverged_at = it
warnings.warn("loss diverged at iteration %d (lr=%g)" % (it, learning_rate), RuntimeWarning)
break
''',
        "update": '''\
for name in params:
    params[name] -= learning_rate * grads[name]
''',
        "predict": '''\
y_pred = torch.argmax(loss_func(params, X), dim=1)
''',
        "search": '''\
learning_rates = [0.05, 0.1, 0.5]
hidden_sizes = [64, 128]
regularization_strengths = [0.0, 1e-4]
learning_rate_decays = [0.95]
''',
        "best": BEST_LOOPS,
    },
    "loops": {
        "forward": '''\
N = X.shape[0]
hidden = torch.zeros(N, W1.shape[1], dtype=X.dtype, device=X.device)
for i in range(N):
    hidden[i] = torch.clamp(X[i] @ W1 + b1, min=0)
scores = hidden @ W2 + b2
''',
        "loss": '''\
n_examples = X.shape[0]
total = 0.0
for i in range(n_examples):
    row = scores[i] - scores[i].max()
    total = total + (torch.log(torch.exp(row).sum()) - row[y[i]])
loss = total / n_examples
loss = loss + reg * torch.sum(W1 * W1) + reg * torch.sum(W2 * W2)
''',
        "backward": '''\
dW1 = torch.zeros_like(W1)
db1 = torch.zeros_like(params["b1"])
dW2 = torch.zeros_like(W2)
db2 = torch.zeros_like(params["b2"])
for i in range(n_examples):
    row = scores[i] - scores[i].max()
    prob = torch.exp(row) / torch.exp(row).sum()
    prob[y[i]] -= 1
    dW2 += torch.outer(hidden[i], prob) / n_examples
    db2 += prob / n_examples
    dhid = (W2 @ prob) * (hidden[i] > 0)
    dW1 += torch.outer(X[i], dhid) / n_examples
    db1 += dhid / n_examples
dW1 += 2 * reg * W1
dW2 += 2 * reg * W2
grads["W1"] = dW1
grads["b1"] = db1
grads["W2"] = dW2
grads["b2"] = db2
''',
        "diverge": '''\
diverged_at = it
msg = "iteration " + str(it) + ": loss is not finite, learning rate " + str(learning_rate)
warnings.warn(msg, RuntimeWarning)
break
''',
        "update": '''\
for key in grads:
    params[key] = params[key] - learning_rate * grads[key]
''',
        "predict": '''\
sc = loss_func(params, X)
y_pred = torch.zeros(sc.shape[0], dtype=torch.int64, device=sc.device)
for i in range(sc.shape[0]):
    y_pred[i] = int(torch.argmax(sc[i]))
''',
        "search": '''\
learning_rates = []
for e in range(-2, 1):
    learning_rates.append(10.0 ** e)
hidden_sizes = [50, 100, 150]
regularization_strengths = [1e-5, 1e-3]
learning_rate_decays = [0.9, 0.99]
''',
        "best": '''\
lrs, sizes, strengths, decays = get_param_set_fn()
combos = [(a, b, c, d) for a in lrs for b in sizes for c in strengths for d in decays]
for combo in combos:
    net = TwoLayerNet(X_train.shape[1], combo[1], num_classes, dtype=X_train.dtype,
                      device=X_train.device, seed=0)
    stats = net.train(X_train, y_train, X_val, y_val, learning_rate=combo[0],
                      learning_rate_decay=combo[3], reg=combo[2], num_iters=num_iters,
                      batch_size=batch_size)
    correct = 0
    predictions = net.predict(X_val)
    for i in range(len(y_val)):
        if predictions[i] == y_val[i]:
            correct += 1
    val_acc = correct / len(y_val)
    search.append(dict(learning_rate=combo[0], hidden_size=combo[1], reg=combo[2],
                       learning_rate_decay=combo[3], val_acc=val_acc))
    if val_acc > best_val_acc:
        best_net, best_stat, best_val_acc = net, stats, val_acc
''',
    },
    "layers": {
        "forward": '''\
def affine(inp, w, b):
    return inp.mm(w) + b

def relu(z):
    return z.clamp(min=0)

hidden = relu(affine(X, W1, b1))
scores = affine(hidden, W2, b2)
''',
        "loss": '''\
def softmax_cross_entropy(logits, labels):
    shifted_logits = logits - logits.max(dim=1, keepdim=True).values
    log_z = shifted_logits.exp().sum(dim=1, keepdim=True).log()
    log_p = shifted_logits - log_z
    n = logits.shape[0]
    ce = -log_p[torch.arange(n), labels].sum() / n
    dlogits = log_p.exp()
    dlogits[torch.arange(n), labels] -= 1
    return ce, dlogits / n

def l2(*ws):
    return sum((w * w).sum() for w in ws)

data_loss, dscores = softmax_cross_entropy(scores, y)
loss = data_loss + reg * l2(W1, W2)
''',
        "backward": '''\
def affine_backward(dout, inp, w):
    return dout.mm(w.t()), inp.t().mm(dout), dout.sum(dim=0)

def relu_backward(dout, out):
    return dout * (out > 0)

dhidden, dW2, db2 = affine_backward(dscores, hidden, W2)
dz = relu_backward(dhidden, hidden)
_, dW1, db1 = affine_backward(dz, X, W1)
grads.update(W1=dW1 + 2 * reg * W1, b1=db1, W2=dW2 + 2 * reg * W2, b2=db2)
''',
        "diverge": '''\
diverged_at = it
warnings.warn(f"training diverged: loss {loss} at step {it}", RuntimeWarning)
break
''',
        "update": '''\
for param_name, gradient in grads.items():
    params[param_name].sub_(learning_rate * gradient)
''',
        "predict": '''\
_, y_pred = loss_func(params, X).max(dim=1)
''',
        "search": '''\
learning_rates = [3e-2, 3e-1]
hidden_sizes = [16, 32, 64]
regularization_strengths = [5e-4]
learning_rate_decays = [0.97, 1.0]
''',
        "best": '''\
def evaluate(lr, size, strength, decay):
    candidate = TwoLayerNet(X_train.shape[1], size, num_classes, dtype=X_train.dtype,
                            device=X_train.device, seed=0)
    history = candidate.train(X_train, y_train, X_val, y_val, learning_rate=lr,
                              learning_rate_decay=decay, reg=strength,
                              num_iters=num_iters, batch_size=batch_size)
    return candidate, history, candidate.predict(X_val).eq(y_val).float().mean().item()

for setting in itertools.product(*get_param_set_fn()):
    candidate, history, accuracy = evaluate(*setting)
    search.append(dict(zip(("learning_rate", "hidden_size", "reg", "learning_rate_decay"),
                           setting), val_acc=accuracy))
    if accuracy > best_val_acc:
        best_net, best_stat, best_val_acc = candidate, history, accuracy
''',
    },
    "numpyish": {
        "forward": '''\
a1 = torch.mm(X, W1) + b1.unsqueeze(0)
hidden = torch.where(a1 > 0, a1, torch.zeros_like(a1))
scores = torch.mm(hidden, W2) + b2.unsqueeze(0)
''',
        "loss": '''\
N, C = scores.shape
onehot = torch.zeros(N, C, dtype=scores.dtype, device=scores.device)
onehot[torch.arange(N), y] = 1.0
m = torch.max(scores, 1, keepdim=True)[0]
e = torch.exp(scores - m)
softmax = e / torch.sum(e, 1, keepdim=True)
logp = (scores - m) - torch.log(torch.sum(e, 1, keepdim=True))
loss = -torch.sum(onehot * logp) / N + reg * (torch.sum(torch.square(W1)) +
                                              torch.sum(torch.square(W2)))
''',
        "backward": '''\
delta2 = (softmax - onehot) / N
grads['W2'] = torch.mm(hidden.T, delta2) + 2 * reg * W2
grads['b2'] = torch.sum(delta2, 0)
delta1 = torch.mm(delta2, W2.T)
delta1[hidden <= 0] = 0
grads['W1'] = torch.mm(X.T, delta1) + 2 * reg * W1
grads['b1'] = torch.sum(delta1, 0)
''',
        "diverge": '''\
diverged_at = it
warnings.warn('nan/inf loss (it={}, lr={})'.format(it, learning_rate), RuntimeWarning)
break
''',
        "update": '''\
for k in ('W1', 'b1', 'W2', 'b2'):
    params[k] -= learning_rate * grads[k]
''',
        "predict": '''\
y_pred = torch.max(loss_func(params, X), 1)[1]
''',
        "search": '''\
learning_rates = [1e-1, 2e-1]
hidden_sizes = [100, 200]
regularization_strengths = [1e-6, 1e-5, 1e-4]
learning_rate_decays = [0.95, 0.99]
''',
        "best": '''\
grid = get_param_set_fn()
for i in range(len(grid[0])):
    for j in range(len(grid[1])):
        for k in range(len(grid[2])):
            for m in range(len(grid[3])):
                net = TwoLayerNet(X_train.shape[1], grid[1][j], num_classes,
                                  dtype=X_train.dtype, device=X_train.device, seed=0)
                stat = net.train(X_train, y_train, X_val, y_val, learning_rate=grid[0][i],
                                 learning_rate_decay=grid[3][m], reg=grid[2][k],
                                 num_iters=num_iters, batch_size=batch_size)
                va = torch.mean((net.predict(X_val) == y_val).float()).item()
                search.append({'learning_rate': grid[0][i], 'hidden_size': grid[1][j],
                               'reg': grid[2][k], 'learning_rate_decay': grid[3][m],
                               'val_acc': va})
                if va > best_val_acc:
                    best_net, best_stat, best_val_acc = net, stat, va
''',
    },
    "einsum": {
        "forward": '''\
pre = torch.einsum("nd,dh->nh", X, W1) + b1
hidden = pre * (pre > 0)
scores = torch.einsum("nh,hc->nc", hidden, W2) + b2
''',
        "loss": '''\
batch = X.shape[0]
idx = torch.arange(batch, device=X.device)
stable = scores - scores.max(1).values[:, None]
log_norm = torch.log(torch.exp(stable).sum(1))
nll = log_norm - stable[idx, y]
penalty = reg * (torch.einsum("ij,ij->", W1, W1) + torch.einsum("ij,ij->", W2, W2))
loss = nll.mean() + penalty
''',
        "backward": '''\
g_scores = torch.exp(stable - log_norm[:, None])
g_scores[idx, y] = g_scores[idx, y] - 1
g_scores = g_scores / batch
g_hidden = torch.einsum("nc,hc->nh", g_scores, W2)
g_pre = g_hidden * (hidden > 0)
grads["W2"] = torch.einsum("nh,nc->hc", hidden, g_scores) + 2 * reg * W2
grads["b2"] = g_scores.sum(0)
grads["W1"] = torch.einsum("nd,nh->dh", X, g_pre) + 2 * reg * W1
grads["b1"] = g_pre.sum(0)
''',
        "diverge": '''\
diverged_at = it
warnings.warn(RuntimeWarning(f"stopping: non-finite loss at iteration {it}"))
break
''',
        "update": '''\
params.update({k: params[k] - learning_rate * g for k, g in grads.items()})
''',
        "predict": '''\
y_pred = loss_func(params, X).argmax(-1)
''',
        "search": '''\
learning_rates = [0.2 * 2 ** i for i in range(3)]
hidden_sizes = [48, 96]
regularization_strengths = [1e-3]
learning_rate_decays = [0.98]
''',
        "best": '''\
for combo in itertools.product(*get_param_set_fn()):
    lr_, size_, reg_, decay_ = combo
    net_ = TwoLayerNet(X_train.shape[1], size_, num_classes, dtype=X_train.dtype,
                       device=X_train.device, seed=0)
    stats_ = net_.train(X_train, y_train, X_val, y_val, learning_rate=lr_,
                        learning_rate_decay=decay_, reg=reg_, num_iters=num_iters,
                        batch_size=batch_size)
    acc_ = float((net_.predict(X_val) == y_val).sum()) / y_val.numel()
    search.append({"learning_rate": lr_, "hidden_size": size_, "reg": reg_,
                   "learning_rate_decay": decay_, "val_acc": acc_})
    if acc_ > best_val_acc:
        best_net, best_stat, best_val_acc = net_, stats_, acc_
''',
    },
    "stepwise": {
        "forward": '''\
first_layer = X @ W1
first_layer = first_layer + b1
hidden = torch.maximum(first_layer, torch.tensor(0.0, dtype=X.dtype, device=X.device))
second_layer = hidden @ W2
scores = second_layer + b2
''',
        "loss": '''\
number_of_examples = len(y)
log_softmax = torch.nn.functional.log_softmax(scores, dim=1)
picked = log_softmax[range(number_of_examples), y]
data_loss = -picked.sum() / number_of_examples
reg_loss = reg * W1.pow(2).sum() + reg * W2.pow(2).sum()
loss = data_loss + reg_loss
''',
        "backward": '''\
probabilities = log_softmax.exp()
targets = torch.nn.functional.one_hot(y, num_classes=scores.shape[1]).to(scores.dtype)
dscores = (probabilities - targets) / number_of_examples
dW2 = hidden.transpose(0, 1) @ dscores
db2 = dscores.sum(axis=0)
dhidden = dscores @ W2.transpose(0, 1)
dhidden = dhidden.masked_fill(hidden == 0, 0.0)
dW1 = X.transpose(0, 1) @ dhidden
db1 = dhidden.sum(axis=0)
grads["W1"] = dW1 + reg * 2 * W1
grads["b1"] = db1
grads["W2"] = dW2 + reg * 2 * W2
grads["b2"] = db2
''',
        "diverge": '''\
diverged_at = it
warning_text = "The loss became " + str(loss) + " at iteration " + str(it)
warnings.warn(warning_text, category=RuntimeWarning)
break
''',
        "update": '''\
params["W1"] -= learning_rate * grads["W1"]
params["b1"] -= learning_rate * grads["b1"]
params["W2"] -= learning_rate * grads["W2"]
params["b2"] -= learning_rate * grads["b2"]
''',
        "predict": '''\
all_scores = loss_func(params, X)
best_class = torch.argmax(all_scores, dim=1)
y_pred = best_class
''',
        "search": '''\
learning_rates = [0.001, 0.01, 0.1, 1.0]
hidden_sizes = [128]
regularization_strengths = [0.0001]
learning_rate_decays = [0.95]
''',
        "best": '''\
all_learning_rates, all_hidden_sizes, all_regs, all_decays = get_param_set_fn()
for hidden_units in all_hidden_sizes:
    for learning_rate_value in all_learning_rates:
        for decay_value in all_decays:
            for reg_value in all_regs:
                this_net = TwoLayerNet(X_train.shape[1], hidden_units, num_classes,
                                       dtype=X_train.dtype, device=X_train.device, seed=0)
                this_stats = this_net.train(X_train, y_train, X_val, y_val,
                                            learning_rate=learning_rate_value,
                                            learning_rate_decay=decay_value, reg=reg_value,
                                            num_iters=num_iters, batch_size=batch_size)
                predicted = this_net.predict(X_val)
                this_acc = (predicted == y_val).to(torch.float64).mean().item()
                search.append({"learning_rate": learning_rate_value,
                               "hidden_size": hidden_units, "reg": reg_value,
                               "learning_rate_decay": decay_value, "val_acc": this_acc})
                if this_acc > best_val_acc:
                    best_net = this_net
                    best_stat = this_stats
                    best_val_acc = this_acc
''',
    },
    "fused": {
        "forward": '''\
hidden = torch.addmm(b1, X, W1).relu()
scores = torch.addmm(b2, hidden, W2)
''',
        "loss": '''\
count = scores.shape[0]
top = scores.amax(dim=1, keepdim=True)
logprob = scores - top - (scores - top).exp().sum(dim=1, keepdim=True).log()
loss = -logprob.gather(1, y.unsqueeze(1)).mean() + reg * (W1.square().sum() + W2.square().sum())
''',
        "backward": '''\
d = logprob.exp()
d.scatter_add_(1, y.unsqueeze(1), -torch.ones(count, 1, dtype=d.dtype, device=d.device))
d /= count
grads["W2"] = torch.addmm(2 * reg * W2, hidden.T, d)
grads["b2"] = d.sum(0)
dh = (d @ W2.T) * hidden.gt(0)
grads["W1"] = torch.addmm(2 * reg * W1, X.T, dh)
grads["b1"] = dh.sum(0)
''',
        "diverge": '''\
diverged_at = it
warnings.warn(RuntimeWarning("diverged"))
break
''',
        "update": '''\
for k in grads:
    params[k].add_(grads[k], alpha=-learning_rate)
''',
        "predict": '''\
y_pred = loss_func(params, X).max(1).indices
''',
        "search": '''\
learning_rates, hidden_sizes = [0.1, 1.0], [32]
regularization_strengths, learning_rate_decays = [1e-2, 1e-3], [0.9]
''',
        "best": '''\
results = []
for lr, hsize, strength, decay in itertools.product(*get_param_set_fn()):
    trial = TwoLayerNet(X_train.shape[1], hsize, num_classes, dtype=X_train.dtype,
                        device=X_train.device, seed=0)
    trial_stats = trial.train(X_train, y_train, X_val, y_val, learning_rate=lr,
                              learning_rate_decay=decay, reg=strength, num_iters=num_iters,
                              batch_size=batch_size)
    results.append((trial.predict(X_val).eq(y_val).double().mean().item(), trial, trial_stats,
                    lr, hsize, strength, decay))
for acc, trial, trial_stats, lr, hsize, strength, decay in results:
    search.append({"learning_rate": lr, "hidden_size": hsize, "reg": strength,
                   "learning_rate_decay": decay, "val_acc": acc})
    if acc > best_val_acc:
        best_net, best_stat, best_val_acc = trial, trial_stats, acc
''',
    },
}
CLASS_STYLES = ["vectorised", "loops", "layers", "numpyish", "einsum", "stepwise"]
HOST = "fused"  # only ever the host of a partial copy, so that copy shares nothing else

ANSWERS = {
    "vectorised": {
        "q1": "The toy loss falls quickly and then flattens. On the digits both accuracies climb "
              "together for a while; with a big hidden layer and no regularisation the training "
              "accuracy keeps rising while validation stalls, which is overfitting. Stronger "
              "regularisation closed that gap but lowered both numbers.",
        "q2": "Calling it without labels just returns the scores, because the forward pass is the "
              "first half of the loss anyway. Passing the function in means train and predict "
              "do not care which model they work with.",
        "q3": "A tiny rate crawls, a huge one blows up to NaN, the middle ones converge. The "
              "10000-iteration run hardly improved because the rate decays every iteration on "
              "the toy problem, so after a few hundred steps it is essentially zero. I would decay "
              "per real epoch or use a slower decay.",
    },
    "loops": {
        "q1": "In section 5 the curve drops fast at the start. For the digits, train and val "
              "accuracy rose side by side, until the widest nets started memorising the training "
              "set. Adding weight decay pulled the two curves back together.",
        "q2": "nn_forward_backward checks whether y is None and returns early with scores. So "
              "any loss function also works as a predictor, which keeps nn_predict generic.",
        "q3": "Larger learning rates dropped the loss faster until the biggest one diverged. More "
              "iterations did not help since the step size shrank geometrically (0.95 per "
              "iteration when N < batch size), so the extra 9800 steps moved nothing. Fix: "
              "decay less often.",
    },
    "layers": {
        "q1": "Loss curves: monotone decrease with noise from the minibatches. Accuracy curves "
              "split when capacity is high: the model fits training digits it cannot generalise "
              "from. Regularisation reduces this split; too much of it underfits.",
        "q2": "The scores are an intermediate result of the loss computation, so returning them "
              "when there are no labels costs nothing. It lets one callable serve both purposes "
              "and decouples the training loop from the model.",
        "q3": "With a very small step the curve is almost flat; with the largest it oscillates "
              "and explodes. Ten thousand iterations barely beat two hundred because the "
              "learning rate had decayed to about 3.5e-6. I would change the decay schedule.",
    },
    "numpyish": {
        "q1": "Toy: loss goes down to around one. Digits: training accuracy ends above "
              "validation accuracy for large hidden sizes, overfitting; regularization "
              "strength 0.1 makes both drop, underfitting.",
        "q2": "Because without y the function stops after computing scores. The trainer only "
              "needs a callable so we can swap models.",
        "q3": "Too low: slow. Too high: divergence. The long run was no better because "
              "lr * 0.95^it goes to zero, every iteration counts as an epoch here.",
    },
    "einsum": {
        "q1": "The toy training curve is smooth and ends near 1.07. The sweeps show the "
              "generalisation gap opening as hidden units grow, and L2 penalties shrinking it "
              "at the cost of some training accuracy.",
        "q2": "The labels are optional: scores are what the loss is built from, so the function "
              "can hand them back. This is dependency injection, training code stays model "
              "agnostic.",
        "q3": "Learning rate controls the step size: small ones under-train, large ones "
              "overshoot. The decay is applied per epoch and on five examples each step is an "
              "epoch, so the effective rate vanishes and extra iterations are wasted.",
    },
    "stepwise": {
        "q1": "First the loss goes down and then it stays flat. The accuracy plots show that "
              "bigger networks do better on training data than on validation data. When I made "
              "the regularization bigger the difference got smaller.",
        "q2": "It works since the scores get computed before the loss. If there is no y we "
              "can stop there. Passing loss_func around means the same code can train other "
              "models too.",
        "q3": "When the learning rate was bigger the loss went down faster but the biggest one "
              "went to infinity. The long training was not better because the learning rate "
              "became really tiny after the decay. I would use a larger batch or less decay.",
    },
}
SYNONYMS = {"quickly": "fast", "falls": "drops", "flattens": "levels off", "big": "large",
            "keeps": "continues", "rising": "going up", "stalls": "plateaus",
            "stronger": "more", "lowered": "reduced", "numbers": "values", "just": "simply",
            "because": "since", "anyway": "already", "means": "implies", "tiny": "very small",
            "huge": "very large", "hardly": "barely", "improved": "got better",
            "essentially": "basically", "would": "could", "rate": "rate", "slower": "gentler"}


def regions_of_kit():
    with open(os.path.join(ROOT, "two_layer_net.py"), encoding="utf-8") as f:
        source = f.read()
    return source, release.find_regions(source)


def module(style, regions=None):
    """The kit's module with every solution region written in `style` (a STYLES key), or
    `regions` {region name: code} where given; the scaffold is the release's."""
    source, found = regions_of_kit()
    lines = source.splitlines(keepends=True)
    bodies = {**STYLES[style], **(regions or {})}
    out, previous = [], 0
    for name, region in zip(REGIONS, found):
        marker = lines[region.begin - 1]
        indent = marker[:len(marker) - len(marker.lstrip())]
        out += lines[previous:region.begin - 1]
        out += [indent + line if line.strip() else "\n"
                for line in bodies[name].splitlines(keepends=True)]
        previous = region.end
    out += lines[previous:]
    return "".join(out)


def stubs():
    source, _ = regions_of_kit()
    return release.strip_solutions(source)[0]


# ---- disguises: each takes a module's source and returns a working variant of it ---------

def _names(source):
    found = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME and not keyword.iskeyword(token.string):
            found.add(token.string)
    return found


def rename(source, seed=1):
    """Every name the student could choose (not the API, not attributes) renamed."""
    import builtins

    rng = random.Random(seed)
    words = ["alpha", "beta_", "gamma", "delta", "omega", "kappa", "sigma", "theta", "zeta"]
    mapping = {}
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    out, depth = [], 0
    for i, token in enumerate(tokens):
        string = token.string
        depth += (string in "([{") - (string in ")]}") if token.type == tokenize.OP else 0
        prev = next((t.string for t in reversed(tokens[:i])
                     if t.type not in (tokenize.NL, tokenize.COMMENT)), None)
        nxt = tokens[i + 1].string if i + 1 < len(tokens) else None
        if (token.type == tokenize.NAME and not keyword.iskeyword(string) and prev != "."
                and string not in API and not hasattr(builtins, string) and not (nxt == "=" and depth)
                or token.type == tokenize.NAME and string in mapping and prev != "."):
            if string not in mapping:
                mapping[string] = f"{rng.choice(words)}_{len(mapping)}"
            string = mapping[string]
        out.append((token.type, string))
    return tokenize.untokenize(out)


def reformat(source):
    """Another layout: the module through ast.unparse (quotes, spacing, line breaks and
    parentheses change, comments go), then blank lines doubled."""
    return ast.unparse(ast.parse(source)).replace("\n\ndef ", "\n\n\n\ndef ") + "\n"


def recomment(source):
    """Every comment removed and other comments written on other lines."""
    rng = random.Random(3)
    notes = ["# compute this step", "# TODO: check shapes", "# my implementation",
             "# this part was tricky", "# vectorised version"]
    out = []
    for line in source.splitlines():
        stripped = line.split("#")[0].rstrip() if "#" in line and '"' not in line else line
        if line.lstrip().startswith("#"):
            continue
        if stripped.strip() and rng.random() < 0.2 and not stripped.rstrip().endswith((",", "(")):
            indent = stripped[:len(stripped) - len(stripped.lstrip())]
            out.append(indent + rng.choice(notes))
        out.append(stripped)
    return "\n".join(out) + "\n"


def reorder(source):
    """The module's top-level functions and classes in the reverse order."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    blocks, head_end = [], None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            blocks.append("".join(lines[start:node.end_lineno]))
            head_end = start if head_end is None else head_end
    return "".join(lines[:head_end]) + "\n\n".join(reversed(blocks)) + "\n"


def dead_code(source):
    """Statements that do nothing inserted after every few lines of every function body."""
    rng = random.Random(5)
    junk = ["_unused_{n} = [0] * 3", "if False:\n{i}    print('debug {n}')",
            "_tmp_{n} = {n} * 2 + 1", "for _ in range(0):\n{i}    pass"]
    tree = ast.parse(source)
    inserts = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for stmt in node.body[1:]:
                if rng.random() < 0.35 and not isinstance(stmt, ast.Return):
                    inserts[stmt.lineno] = stmt.col_offset
    out = []
    for number, line in enumerate(source.splitlines(keepends=True), 1):
        if number in inserts:
            indent = " " * inserts[number]
            out.append(indent + rng.choice(junk).format(n=number, i=indent) + "\n")
        out.append(line)
    out.append("\n\ndef _helper_never_called(a, b):\n    c = a + b\n    return c * c\n")
    return "".join(out)


def partial(style, host=HOST):
    """`host`'s solution with one function of `style`'s copied in: nn_forward_backward's loss
    and backward regions (one function of the four the rubric grades)."""
    return module(host, {"loss": STYLES[style]["loss"], "backward": STYLES[style]["backward"]})


def everything(source):
    return dead_code(reorder(recomment(rename(source, seed=9))))


DISGUISES = {"rename": rename, "reformat": reformat, "recomment": recomment, "reorder": reorder,
             "dead_code": dead_code, "everything": everything}


# ---- answers -------------------------------------------------------------------------------

def reworded(answers):
    """Each answer lightly reworded: synonyms, sentences swapped, punctuation and case."""
    out = {}
    for qid, text in answers.items():
        words = [SYNONYMS.get(w.lower(), w) for w in text.split(" ")]
        sentences = re.split(r"(?<=\.) ", " ".join(words))
        if len(sentences) > 2:
            sentences[0], sentences[1] = sentences[1], sentences[0]
        out[qid] = " ".join(sentences).replace(", ", "; ").replace(":", " -")
    return out


def notebook_bytes(answers):
    """A notebook holding the kit's answer cells, answered."""
    import nbformat

    cells = []
    for qid, text in answers.items():
        cells.append(nbformat.v4.new_markdown_cell(f"Question {qid}", id=f"question-{qid}"))
        cells.append(nbformat.v4.new_markdown_cell(text, id=f"answer-{qid}"))
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells)).encode()


def write_student(folder, name, source, answers=None):
    path = os.path.join(folder, name)
    os.makedirs(path)
    with open(os.path.join(path, "two_layer_net.py"), "w", encoding="utf-8") as f:
        f.write(source)
    if answers:
        with open(os.path.join(path, "two_layer_net.ipynb"), "wb") as f:
            f.write(notebook_bytes(answers))
    return path


def build_class(folder, *, copies=True):
    """The corpus as a folder of student folders; returns {name: kind}, kind 'original',
    'copy:<original>' (a copy of that submission), 'answers:<original>' or 'stubs'."""
    kinds = {}
    for style in CLASS_STYLES:
        write_student(folder, style, module(style), ANSWERS.get(style))
        kinds[style] = "original"
    if not copies:
        return kinds
    for number, (disguise, rewrite) in enumerate(DISGUISES.items()):
        style = CLASS_STYLES[number % len(CLASS_STYLES)]
        name = f"{disguise}_of_{style}"
        write_student(folder, name, rewrite(module(style)))
        kinds[name] = f"copy:{style}"
    partial_of = CLASS_STYLES[len(DISGUISES) % len(CLASS_STYLES)]
    write_student(folder, f"partial_of_{partial_of}", partial(partial_of))
    kinds[f"partial_of_{partial_of}"] = f"copy:{partial_of}"
    write_student(folder, "stubs_alone", stubs())
    kinds["stubs_alone"] = "stubs"
    answered = "layers"
    write_student(folder, f"answers_of_{answered}", stubs(), reworded(ANSWERS[answered]))
    kinds[f"answers_of_{answered}"] = f"answers:{answered}"
    return kinds


def dump_json(kinds, path):
    with open(path, "w") as f:
        json.dump(kinds, f, indent=1)
