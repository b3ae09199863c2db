"""An honest solution in the cs231n "modular layers" style, with the habits that today's audit
took for autograd or hidden code: own Linear/ReLU classes whose backward methods fill a
self.grad field, autograd switched off, dunder reads, the course package, tuning and profiling
code the grader never calls. Written for the grader's honest corpus (tests/corpus_honest.py)."""
import time
import timeit

import torch
import torch.nn.functional as F

import eecs598
from linear_classifier import sample_batch

eecs598.reset_seed(0)
DTYPE_NAME = "float64"


class Linear:
    """y = x @ W + b, with its own backward pass."""

    def __init__(self, W, b):
        self.W, self.b = W, b
        self.cache = None
        self.grad = {}

    def forward(self, x):
        self.cache = x
        return x.mm(self.W) + self.b

    def backward(self, dout):
        x = self.cache
        self.grad = {"W": x.t().mm(dout), "b": dout.sum(dim=0)}
        return dout.mm(self.W.t())


class ReLU:
    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = x > 0
        return F.relu(x)

    def backward(self, dout):
        return dout * self.mask


class SoftmaxLoss:
    def forward(self, scores, y):
        shifted = scores - scores.max(dim=1, keepdim=True).values
        log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
        self.probs, self.y = log_probs.exp(), y
        return -log_probs[torch.arange(len(y)), y].mean()

    def backward(self):
        dscores = self.probs.clone()
        dscores[torch.arange(len(self.y)), self.y] -= 1
        return dscores / len(self.y)


def nn_forward_pass(params, X):
    with torch.set_grad_enabled(False):
        X = X.detach().requires_grad_(False)
        fc1 = Linear(params['W1'], params['b1'])
        relu = ReLU()
        fc2 = Linear(params['W2'], params['b2'])
        hidden = relu.forward(fc1.forward(X))
        scores = fc2.forward(hidden)
    return scores, hidden


def nn_forward_backward(params, X, y=None, reg=0.0):
    if __debug__:
        assert X.dim() == 2, f"X must be a matrix, got a {X.__class__.__name__} of {X.dim()} dims"
    torch.set_grad_enabled(False)
    W1 = dict.__getitem__(params, 'W1')
    W2 = params['W2']
    fc1, relu, fc2 = Linear(W1, params['b1']), ReLU(), Linear(W2, params['b2'])
    scores = fc2.forward(relu.forward(fc1.forward(X)))
    if y is None:
        return scores
    criterion = SoftmaxLoss()
    loss = criterion.forward(scores, y) + reg * (W1.pow(2).sum() + W2.pow(2).sum())
    dhidden = fc2.backward(criterion.backward())
    fc1.backward(relu.backward(dhidden))
    grads = {'W1': fc1.grad['W'] + 2 * reg * W1, 'b1': fc1.grad['b'],
             'W2': fc2.grad['W'] + 2 * reg * W2, 'b2': fc2.grad['b']}
    return loss, grads


def nn_train(params, loss_func, pred_func, X, y, X_val, y_val,
             learning_rate=1e-3, learning_rate_decay=0.95,
             reg=5e-6, num_iters=100,
             batch_size=200, verbose=False):
    num_train = X.shape[0]
    iterations_per_epoch = max(num_train // batch_size, 1)
    loss_history, train_acc_history, val_acc_history = [], [], []
    for it in range(num_iters):
        X_batch, y_batch = sample_batch(X, y, num_train, batch_size)
        loss, grads = loss_func(params, X_batch, y=y_batch, reg=reg)
        loss_history.append(loss.item())
        params['W1'] = params['W1'] - learning_rate * grads['W1']
        params['b1'] = params['b1'] - learning_rate * grads['b1']
        params['W2'] = params['W2'] - learning_rate * grads['W2']
        params['b2'] = params['b2'] - learning_rate * grads['b2']
        if verbose and it % 100 == 0:
            print('iteration %d / %d: loss %f' % (it, num_iters, loss.item()))
        if it % iterations_per_epoch == 0:
            train_acc = (pred_func(params, loss_func, X_batch) == y_batch).float().mean().item()
            val_acc = (pred_func(params, loss_func, X_val) == y_val).float().mean().item()
            train_acc_history.append(train_acc)
            val_acc_history.append(val_acc)
            learning_rate *= learning_rate_decay
    return {'loss_history': loss_history, 'train_acc_history': train_acc_history,
            'val_acc_history': val_acc_history, 'diverged_at': None}


def nn_predict(params, loss_func, X):
    return loss_func(params, X).argmax(dim=1)


def find_best_net(data_dict, get_param_set_fn):
    eecs598.reset_seed(0)
    dtype = getattr(torch, DTYPE_NAME)
    best = (None, None, -1.0)
    for lr in (1e-1, 3e-1):
        started = timeit.default_timer()
        D, C = data_dict['X_train'].shape[1], 10
        params = {'W1': 1e-2 * torch.randn(D, 50, dtype=dtype), 'b1': torch.zeros(50, dtype=dtype),
                  'W2': 1e-2 * torch.randn(50, C, dtype=dtype), 'b2': torch.zeros(C, dtype=dtype)}
        stats = nn_train(params, nn_forward_backward, nn_predict, data_dict['X_train'],
                         data_dict['y_train'], data_dict['X_val'], data_dict['y_val'],
                         learning_rate=lr, num_iters=50)
        print(f"lr {lr}: {timeit.default_timer() - started:.1f} s, {time.strftime('%X')}")
        if stats['val_acc_history'][-1] > best[2]:
            best = (params, stats, stats['val_acc_history'][-1])
    return best


if __name__ == "__main__":
    import cProfile
    import inspect
    import signal

    signal.alarm(60)
    print(inspect.signature(nn_forward_backward))
    cProfile.run("nn_forward_backward({'W1': torch.ones(3, 2), 'b1': torch.ones(2), "
                 "'W2': torch.ones(2, 2), 'b2': torch.ones(2)}, torch.ones(4, 3))")
