"""A correct solution written the way students of the original course write it.

The grader's test corpus (tests/grading_corpus.py) builds its broken and hostile submissions by
editing this file, so every edit is one visible bug or one attack.
"""
import random
import statistics

import torch

from linear_classifier import sample_batch


def nn_forward_pass(params, X):
    W1, b1 = params['W1'], params['b1']
    W2, b2 = params['W2'], params['b2']
    hidden = (X.mm(W1) + b1).clamp(min=0)
    scores = hidden.mm(W2) + b2
    return scores, hidden


def nn_forward_backward(params, X, y=None, reg=0.0):
    W1, b1 = params['W1'], params['b1']
    W2, b2 = params['W2'], params['b2']
    N, D = X.shape
    scores, h1 = nn_forward_pass(params, X)
    if y is None:
        return scores
    shifted = scores - scores.max(dim=1, keepdim=True).values
    exp_scores = torch.exp(shifted)
    probs = exp_scores / exp_scores.sum(dim=1, keepdim=True)
    log_probs = shifted - torch.log(exp_scores.sum(dim=1, keepdim=True))
    loss = -log_probs[torch.arange(N), y].sum()
    loss /= N
    loss += reg * torch.sum(W1 * W1) + reg * torch.sum(W2 * W2)

    grads = {}
    dscores = probs.clone()
    dscores[torch.arange(N), y] -= 1
    dscores /= N
    grads['W2'] = h1.t().mm(dscores) + 2 * reg * W2
    grads['b2'] = dscores.sum(dim=0)
    dh1 = dscores.mm(W2.t())
    dh1[h1 <= 0] = 0
    grads['W1'] = X.t().mm(dh1) + 2 * reg * W1
    grads['b1'] = dh1.sum(dim=0)
    return loss, grads


def nn_train(params, loss_func, pred_func, X, y, X_val, y_val,
             learning_rate=1e-3, learning_rate_decay=0.95,
             reg=5e-6, num_iters=100,
             batch_size=200, verbose=False):
    num_train = X.shape[0]
    iterations_per_epoch = max(num_train // batch_size, 1)
    loss_history = []
    train_acc_history = []
    val_acc_history = []
    for it in range(num_iters):
        X_batch, y_batch = sample_batch(X, y, num_train, batch_size)
        loss, grads = loss_func(params, X_batch, y=y_batch, reg=reg)
        loss_history.append(loss.item())
        for k in params:
            params[k] -= learning_rate * grads[k]
        if verbose and it % 100 == 0:
            print('iteration %d / %d: loss %f' % (it, num_iters, loss.item()))
        if it % iterations_per_epoch == 0:
            y_train_pred = pred_func(params, loss_func, X_batch)
            train_acc = (y_train_pred == y_batch).float().mean().item()
            y_val_pred = pred_func(params, loss_func, X_val)
            val_acc = (y_val_pred == y_val).float().mean().item()
            train_acc_history.append(train_acc)
            val_acc_history.append(val_acc)
            learning_rate *= learning_rate_decay
    return {
        'loss_history': loss_history,
        'train_acc_history': train_acc_history,
        'val_acc_history': val_acc_history,
    }


def nn_predict(params, loss_func, X):
    scores, _ = nn_forward_pass(params, X)
    y_pred = torch.argmax(scores, dim=1)
    return y_pred
