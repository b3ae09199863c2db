"""A two-layer fully-connected network, written by hand in PyTorch (no autograd).

Shapes: N examples, D input features, H hidden units, C classes.

    hidden = max(0, X @ W1 + b1)        # (N, H)
    scores = hidden @ W2 + b2           # (N, C)
    loss   = mean_i(-log softmax(scores_i)[y_i]) + reg * (sum(W1**2) + sum(W2**2))

The regulariser is `reg * sum(W**2)`: no factor 1/2, and the biases are not regularised.

`params` is a dict with `W1` (D, H), `b1` (H,), `W2` (H, C) and `b2` (C,), all of one dtype on one
device. Every function follows the dtype and device of its inputs; nothing defaults to CUDA, and
no function modifies its inputs except `nn_train`, which updates `params` in place.

Where to write: search this file for `YOUR CODE HERE`. Each such line says what to write; your
code goes there, in place of the `raise NotImplementedError(...)` below it. (Part 2 of
`nn_forward_backward` has no raise, so that the loss can be checked before the gradients exist.
In the instructor's copy the solution stands between `# BEGIN SOLUTION` and `# END SOLUTION`.)
The code around those lines is given: leave it, and the function names and arguments, as they are.

Imports: torch, numpy, Python's standard library, and the course's modules `linear_classifier`
and `eecs598` (the grader supplies both). Compute the gradients by hand: a backward pass through
torch.autograd (`loss.backward()`, `torch.autograd.grad`, `torch.func`) or by finite
differences scores 0 on the gradient tests.
"""
import itertools
import math
import warnings

import torch


def sample_batch(X, y, num_train, batch_size):
    """Draw a minibatch uniformly at random, with replacement (provided; not a student task).

    Args:
        X: (N, D) data; y: (N,) labels.
        num_train: N, the number of examples to draw from.
        batch_size: B, the number of examples drawn.
    Returns:
        X_batch: (B, D); y_batch: (B,).
    """
    idx = torch.randint(num_train, (batch_size,), device=X.device)
    return X.index_select(0, idx), y.index_select(0, idx)  # X[idx], y[idx], with less overhead


def nn_forward_pass(params, X):
    """Compute the hidden activations and the class scores.

    Args:
        params: dict with W1 (D, H), b1 (H,), W2 (H, C), b2 (C,).
        X: (N, D) input data.
    Returns:
        scores: (N, C) class scores.
        hidden: (N, H) ReLU activations of the hidden layer.
    """
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    # BEGIN SOLUTION: the forward pass: the hidden layer's ReLU activations, then the class scores
    hidden = torch.addmm(b1, X, W1).clamp_(min=0)  # (N, D)@(D, H) -> (N, H); relu in place
    scores = torch.addmm(b2, hidden, W2)  # (N, H)@(H, C) -> (N, C)
    # END SOLUTION
    return scores, hidden


def nn_forward_backward(params, X, y=None, reg=0.0):
    """Compute the loss and its gradients, or only the scores.

    Args:
        params: dict with W1 (D, H), b1 (H,), W2 (H, C), b2 (C,); not modified.
        X: (N, D) input data; not modified.
        y: (N,) int64 labels in [0, C), or None.
        reg: strength of the L2 regulariser reg * (sum(W1**2) + sum(W2**2)).
    Returns:
        If y is None: scores (N, C).
        Otherwise: (loss, grads), loss a 0-dim tensor, grads a dict with the keys, shapes, dtype
        and device of params.
    """
    W1, W2 = params["W1"], params["W2"]
    scores, hidden = nn_forward_pass(params, X)
    if y is None:
        return scores

    # Part 1 of 2: the loss, mean_i(-log softmax(scores_i)[y_i]) + reg * (sum(W1**2) + sum(W2**2))
    # (the notebook checks it in section 3). It must stay finite for scores in the thousands, where
    # exp overflows and a probability can round to 0 (log 0 = -inf): softmax does not change when
    # the same number is subtracted from every score of a row, and a log of a softmax can be
    # computed without forming the probabilities (look up "log-sum-exp").
    # BEGIN SOLUTION: the loss: the softmax data loss over the batch plus the L2 term, as above
    N = X.shape[0]
    rows = torch.arange(N, device=X.device)
    shifted = scores - scores.amax(dim=1, keepdim=True)  # row max is 0: exp cannot overflow
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    data_loss = -log_probs[rows, y].mean()
    # sum(W**2) as the dot product w.w of the flattened weights: no (D, H) temporary W * W
    reg_loss = reg * (W1.flatten() @ W1.flatten() + W2.flatten() @ W2.flatten())
    loss = data_loss + reg_loss
    # END SOLUTION

    # Part 2 of 2: the gradients of that loss (section 4), by hand: each grads[k] has the shape of
    # params[k], and dW1, dW2 include the L2 term's 2 * reg * W. Until you write this part, the
    # function returns the loss with an empty grads, so that you can check the loss first.
    grads = {}
    # BEGIN SOLUTION NO RAISE: backpropagate the loss into grads, one entry per key of params
    dscores = log_probs.exp_()  # softmax probabilities, computed in place
    dscores[rows, y] -= 1
    dscores /= N
    dW2 = torch.addmm(W2, hidden.T, dscores, beta=2 * reg)  # (H, N)@(N, C) -> (H, C), + 2 reg W2
    db2 = dscores.sum(dim=0)
    dhidden = dscores @ W2.T  # (N, C)@(C, H) -> (N, H)
    dz1 = dhidden.mul_(hidden.sign())  # relu'(z1) = sign(hidden): 1 where active, else 0
    dW1 = torch.addmm(W1, X.T, dz1, beta=2 * reg)  # (D, N)@(N, H) -> (D, H), + 2 reg W1
    db1 = dz1.sum(dim=0)
    grads["W1"], grads["b1"], grads["W2"], grads["b2"] = dW1, db1, dW2, db2
    # END SOLUTION
    return loss, grads


def nn_train(params, loss_func, pred_func, X, y, X_val, y_val,
             learning_rate=1e-3, learning_rate_decay=0.95, reg=5e-6,
             num_iters=100, batch_size=200, verbose=False):
    """Train the network with minibatch SGD, decaying the learning rate once per epoch.

    Args:
        params: dict of parameters, updated in place.
        loss_func: (params, X_batch, y=y_batch, reg=reg) -> (loss, grads).
        pred_func: (params, loss_func, X) -> (N,) predicted labels.
        X: (N, D) and y: (N,) training data; X_val: (N_val, D) and y_val: (N_val,) validation data.
        learning_rate: initial step size.
        learning_rate_decay: factor applied to the learning rate once per epoch.
        reg: strength of the L2 regulariser, passed to loss_func.
        num_iters: number of SGD steps.
        batch_size: examples per step, drawn with replacement.
        verbose: print the loss every 100 iterations.
    Returns:
        stats: dict with loss_history (one float per iteration), train_acc_history and
        val_acc_history (one float per epoch) and diverged_at (the iteration whose loss was not
        finite, or None). Training stops at a loss of inf or NaN, with one RuntimeWarning.
    """
    num_train = X.shape[0]
    iterations_per_epoch = max(num_train // batch_size, 1)
    loss_history, train_acc_history, val_acc_history = [], [], []
    diverged_at = None

    for it in range(num_iters):
        X_batch, y_batch = sample_batch(X, y, num_train, batch_size)  # with replacement
        loss, grads = loss_func(params, X_batch, y=y_batch, reg=reg)
        loss = loss.item()
        if not math.isfinite(loss):
            # Given (not a student task): the loss is inf or NaN, training has diverged (usually
            # a learning rate too large). Stop here, with one warning; this loss is not recorded
            # and no parameter is updated.
            diverged_at = it
            warnings.warn(f"nn_train: the loss is {loss} at iteration {it} with learning rate "
                          f"{learning_rate:g}; training stopped (try a smaller learning rate)",
                          RuntimeWarning, stacklevel=2)
            break
        loss_history.append(loss)

        # Vanilla SGD: a step of size learning_rate against the gradient, for every key of grads.
        # Afterwards params[k] must hold the new value (change the tensor in place, or store the
        # new tensor under the same key).
        # BEGIN SOLUTION: the SGD update of every parameter, as the comment above says
        for k, grad in grads.items():
            params[k].sub_(grad, alpha=learning_rate)  # params[k] -= learning_rate * grad, in place
        # END SOLUTION

        if verbose and it % 100 == 0:
            print(f"iteration {it} / {num_iters}: loss {loss:f}")

        # Once per epoch, after this iteration's update: check the training accuracy (on this
        # minibatch) and the validation accuracy, and decay the learning rate.
        if it % iterations_per_epoch == 0:
            train_acc = (pred_func(params, loss_func, X_batch) == y_batch).float().mean().item()
            val_acc = (pred_func(params, loss_func, X_val) == y_val).float().mean().item()
            train_acc_history.append(train_acc)
            val_acc_history.append(val_acc)
            learning_rate *= learning_rate_decay

    return {"loss_history": loss_history, "train_acc_history": train_acc_history,
            "val_acc_history": val_acc_history, "diverged_at": diverged_at}


def nn_predict(params, loss_func, X):
    """Predict a label for every example.

    Args:
        params: dict of parameters.
        loss_func: (params, X) -> (N, C) scores when called without labels.
        X: (N, D) data.
    Returns:
        y_pred: (N,) int64 labels, the index of each row's highest score.
    """
    # BEGIN SOLUTION: the predicted labels, from the scores that loss_func gives without labels
    y_pred = loss_func(params, X).argmax(dim=1)
    # END SOLUTION
    return y_pred


def nn_get_search_params():
    """The hyperparameters that `find_best_net` tries, every combination of them.

    Returns:
        (learning_rates, hidden_sizes, regularization_strengths, learning_rate_decays), each a list.
    """
    learning_rates = [1e-1, 3e-1, 1.0]
    hidden_sizes = [32, 128]
    regularization_strengths = [1e-4, 1e-3, 1e-2]
    learning_rate_decays = [0.99]
    return learning_rates, hidden_sizes, regularization_strengths, learning_rate_decays


def find_best_net(data_dict, get_param_set_fn, num_iters=1000, batch_size=200):
    """Train one network per hyperparameter combination and keep the best on validation data.

    Args:
        data_dict: X_train, y_train, X_val, y_val tensors; their dtype and device are used.
        get_param_set_fn: () -> (learning_rates, hidden_sizes, regularization_strengths,
            learning_rate_decays), e.g. `nn_get_search_params`.
        num_iters: SGD steps per combination.
        batch_size: examples per step.
    Returns:
        best_net: the TwoLayerNet with the highest validation accuracy.
        best_stat: its training stats; best_stat["search"] lists every combination tried with
            its validation accuracy (dicts with learning_rate, hidden_size, reg,
            learning_rate_decay, val_acc).
        best_val_acc: its validation accuracy, a fraction in [0, 1].
    """
    X_train, y_train = data_dict["X_train"], data_dict["y_train"]
    X_val, y_val = data_dict["X_val"], data_dict["y_val"]
    num_classes = int(torch.cat([y_train, y_val]).max()) + 1
    best_net, best_stat, best_val_acc = None, None, -1.0
    search = []

    for lr, hidden_size, reg, decay in itertools.product(*get_param_set_fn()):
        net = TwoLayerNet(X_train.shape[1], hidden_size, num_classes,
                          dtype=X_train.dtype, device=X_train.device, seed=0)
        stats = net.train(X_train, y_train, X_val, y_val, learning_rate=lr,
                          learning_rate_decay=decay, reg=reg, num_iters=num_iters,
                          batch_size=batch_size)
        val_acc = (net.predict(X_val) == y_val).float().mean().item()
        search.append({"learning_rate": lr, "hidden_size": hidden_size, "reg": reg,
                       "learning_rate_decay": decay, "val_acc": val_acc})
        if val_acc > best_val_acc:
            best_net, best_stat, best_val_acc = net, stats, val_acc

    if best_stat is not None:
        best_stat["search"] = search
    return best_net, best_stat, max(best_val_acc, 0.0)


class TwoLayerNet:
    """The functions above, bundled with their parameters.

    Args:
        input_size: D; hidden_size: H; output_size: C.
        dtype, device: of the parameters (CPU unless asked otherwise).
        std: standard deviation of the initial weights (biases start at zero).
        seed: seeds a private generator for the initial weights; None draws from torch's
            global generator. The global seed is never changed.
    """

    def __init__(self, input_size, hidden_size, output_size, dtype=torch.float32,
                 device="cpu", std=1e-4, seed=None):
        generator = torch.Generator().manual_seed(seed) if seed is not None else None

        def randn(*shape):  # drawn on the CPU so that a seed means the same weights everywhere
            return torch.randn(*shape, generator=generator, dtype=dtype).to(device)

        self.params = {
            "W1": std * randn(input_size, hidden_size),
            "b1": torch.zeros(hidden_size, dtype=dtype, device=device),
            "W2": std * randn(hidden_size, output_size),
            "b2": torch.zeros(output_size, dtype=dtype, device=device),
        }

    def loss(self, X, y=None, reg=0.0):
        """`nn_forward_backward` on this net's parameters."""
        return nn_forward_backward(self.params, X, y, reg)

    def train(self, X, y, X_val, y_val, learning_rate=1e-3, learning_rate_decay=0.95,
              reg=5e-6, num_iters=100, batch_size=200, verbose=False):
        """`nn_train` on this net's parameters; returns its stats."""
        return nn_train(self.params, nn_forward_backward, nn_predict, X, y, X_val, y_val,
                        learning_rate, learning_rate_decay, reg, num_iters, batch_size, verbose)

    def predict(self, X):
        """`nn_predict` on this net's parameters: (N,) int64 labels."""
        return nn_predict(self.params, nn_forward_backward, X)

    def save(self, path):
        """Write the parameters to `path` (a torch checkpoint of plain tensors)."""
        torch.save(self.params, path)

    def load(self, path):
        """Read parameters written by `save`, keeping this net's dtype and device."""
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(loaded, dict) or set(loaded) != set(self.params):
            raise ValueError(f"checkpoint '{path}' does not hold the parameters W1, b1, W2, b2; "
                             "load a file written by TwoLayerNet.save")
        for k, old in self.params.items():
            if loaded[k].shape != old.shape:
                raise ValueError(f"checkpoint '{path}' has {k} of shape {tuple(loaded[k].shape)}, "
                                 f"this net expects {tuple(old.shape)}; build the net with the "
                                 "sizes it was saved with")
        self.params = {k: loaded[k].to(dtype=old.dtype, device=old.device)
                       for k, old in self.params.items()}
