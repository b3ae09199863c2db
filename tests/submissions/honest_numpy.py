"""An honest solution with the imports and helpers public solutions carry: numpy, tqdm,
matplotlib, the course package imported inside find_best_net, a gradient check by autograd that
only the self-test under __main__ calls, torch.no_grad, tuning code with os and time, and
gradients summed in other orders (einsum, a loop over examples). Written for the grader's honest
corpus (tests/corpus_honest.py)."""
import math
import os
import time

import matplotlib
import numpy as np
import torch
from tqdm import tqdm

from linear_classifier import sample_batch

matplotlib.use("Agg")


def nn_forward_pass(params, X):
    with torch.no_grad():
        hidden = torch.clamp(X @ params['W1'] + params['b1'], min=0)
        scores = hidden @ params['W2'] + params['b2']
    return scores, hidden


def nn_forward_backward(params, X, y=None, reg=0.0):
    W1, b1, W2, b2 = (params[k] for k in ('W1', 'b1', 'W2', 'b2'))
    N = X.shape[0]
    z1 = torch.addmm(b1, X, W1)
    hidden = z1.clamp(min=0)
    scores = torch.addmm(b2, hidden, W2)
    if y is None:
        return scores
    log_z = torch.logsumexp(scores, dim=1, keepdim=True)
    log_probs = scores - log_z
    loss = -log_probs.gather(1, y.view(-1, 1)).sum() / N
    loss = loss + reg * (torch.einsum('ij,ij->', W1, W1) + torch.einsum('ij,ij->', W2, W2))
    dscores = torch.exp(log_probs)
    dscores[range(N), y] -= 1.0
    dscores = dscores / N
    dW2 = torch.einsum('nh,nc->hc', hidden, dscores) + 2 * reg * W2
    db2 = torch.zeros_like(b2)
    for n in range(N):
        db2 += dscores[n]
    dhidden = dscores @ W2.T
    dz1 = torch.where(z1 > 0, dhidden, torch.zeros_like(dhidden))
    dW1 = torch.einsum('nd,nh->dh', X, dz1) + 2 * reg * W1
    db1 = dz1.sum(0)
    return loss, {'W1': dW1, 'b1': db1, 'W2': dW2, 'b2': db2}


def nn_train(params, loss_func, pred_func, X, y, X_val, y_val,
             learning_rate=1e-3, learning_rate_decay=0.95,
             reg=5e-6, num_iters=100,
             batch_size=200, verbose=False):
    num_train = X.shape[0]
    iterations_per_epoch = max(num_train // batch_size, 1)
    loss_history, train_acc_history, val_acc_history = [], [], []
    for it in tqdm(range(num_iters), disable=not verbose):
        X_batch, y_batch = sample_batch(X, y, num_train, batch_size)
        loss, grads = loss_func(params, X_batch, y=y_batch, reg=reg)
        loss_history.append(loss.item())
        for key in params:
            params[key] = params[key] - learning_rate * grads[key]
        if it % iterations_per_epoch == 0:
            train_acc_history.append(
                float(np.mean((pred_func(params, loss_func, X_batch) == y_batch).numpy())))
            val_acc_history.append(
                float(np.mean((pred_func(params, loss_func, X_val) == y_val).numpy())))
            learning_rate *= learning_rate_decay
    return {'loss_history': loss_history, 'train_acc_history': train_acc_history,
            'val_acc_history': val_acc_history, 'diverged_at': None}


def nn_predict(params, loss_func, X):
    scores, _ = nn_forward_pass(params, X)
    return torch.argmax(scores, dim=1)


def check_gradients_with_autograd(params, X, y, reg):
    """Compare the hand-written gradients with autograd's (a self-test; never graded)."""
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    scores, _ = nn_forward_pass(leaves, X)
    loss = torch.nn.functional.cross_entropy(scores, y)
    loss = loss + reg * ((leaves['W1'] ** 2).sum() + (leaves['W2'] ** 2).sum())
    loss.backward()
    _, grads = nn_forward_backward(params, X, y, reg)
    return {k: (grads[k] - leaves[k].grad).abs().max().item() for k in params}


def find_best_net(data_dict, get_param_set_fn):
    import eecs598

    eecs598.reset_seed(0)
    out_dir = os.path.join(os.getcwd(), "tuning")
    os.makedirs(out_dir, exist_ok=True)
    best = (None, None, -math.inf)
    for lr, hidden_size, reg, decay in zip(*get_param_set_fn()):
        started = time.time()
        D = data_dict['X_train'].shape[1]
        params = {'W1': 1e-4 * torch.randn(D, hidden_size, dtype=torch.float64),
                  'b1': torch.zeros(hidden_size, dtype=torch.float64),
                  'W2': 1e-4 * torch.randn(hidden_size, 10, dtype=torch.float64),
                  'b2': torch.zeros(10, dtype=torch.float64)}
        stats = nn_train(params, nn_forward_backward, nn_predict, data_dict['X_train'],
                         data_dict['y_train'], data_dict['X_val'], data_dict['y_val'],
                         learning_rate=lr, learning_rate_decay=decay, reg=reg)
        print(f"{lr} {hidden_size}: {time.time() - started:.1f} s")
        if stats['val_acc_history'][-1] > best[2]:
            best = (params, stats, stats['val_acc_history'][-1])
    return best


if __name__ == "__main__":
    torch.manual_seed(0)
    p = {'W1': torch.randn(4, 5, dtype=torch.float64), 'b1': torch.randn(5, dtype=torch.float64),
         'W2': torch.randn(5, 3, dtype=torch.float64), 'b2': torch.randn(3, dtype=torch.float64)}
    print(check_gradients_with_autograd(p, torch.randn(6, 4, dtype=torch.float64),
                                        torch.tensor([0, 1, 2, 0, 1, 2]), 0.1))
