"""An honest solution whose layers live in the student's own module (tests/corpus_honest.py)."""
import torch

import layers
from eecs598 import reset_seed
from linear_classifier import sample_batch


def nn_forward_pass(params, X):
    hidden = layers.Relu().forward(layers.Affine(params['W1'], params['b1']).forward(X))
    return layers.Affine(params['W2'], params['b2']).forward(hidden), hidden


def nn_forward_backward(params, X, y=None, reg=0.0):
    fc1 = layers.Affine(params['W1'], params['b1'])
    relu = layers.Relu()
    fc2 = layers.Affine(params['W2'], params['b2'])
    scores = fc2.forward(relu.forward(fc1.forward(X)))
    if y is None:
        return scores
    loss, dscores = layers.softmax_loss(scores, y)
    loss = loss + reg * (params['W1'].square().sum() + params['W2'].square().sum())
    fc1.backward(relu.backward(fc2.backward(dscores)))
    grads = {'W1': fc1.dW + 2 * reg * params['W1'], 'b1': fc1.db,
             'W2': fc2.dW + 2 * reg * params['W2'], 'b2': fc2.db}
    return loss, grads


def nn_train(params, loss_func, pred_func, X, y, X_val, y_val,
             learning_rate=1e-3, learning_rate_decay=0.95,
             reg=5e-6, num_iters=100,
             batch_size=200, verbose=False):
    num_train = X.shape[0]
    iterations_per_epoch = max(num_train // batch_size, 1)
    stats = {'loss_history': [], 'train_acc_history': [], 'val_acc_history': [],
             'diverged_at': None}
    for it in range(num_iters):
        X_batch, y_batch = sample_batch(X, y, num_train, batch_size)
        loss, grads = loss_func(params, X_batch, y=y_batch, reg=reg)
        stats['loss_history'].append(loss.item())
        params.update({k: v - learning_rate * grads[k] for k, v in params.items()})
        if it % iterations_per_epoch == 0:
            stats['train_acc_history'].append(
                (pred_func(params, loss_func, X_batch) == y_batch).double().mean().item())
            stats['val_acc_history'].append(
                (pred_func(params, loss_func, X_val) == y_val).double().mean().item())
            learning_rate *= learning_rate_decay
    return stats


def nn_predict(params, loss_func, X):
    return nn_forward_pass(params, X)[0].argmax(1)


def find_best_net(data_dict, get_param_set_fn):
    reset_seed(0)
    raise NotImplementedError("tuning runs in the notebook")
