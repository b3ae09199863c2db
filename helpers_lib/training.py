"""What nn_train does, restated for checks and plots: its epochs, learning rates and accuracy.

The contract (nn_train's docstring): an epoch is max(N // batch_size, 1)
iterations; after the update of every iteration `it` with it % iterations_per_epoch == 0, the
accuracies are recorded and the learning rate is multiplied by the decay. The notebook plots
these rates and the grader's train_schedule test expects them.
"""


def iterations_per_epoch(num_train, batch_size):
    """Iterations of one epoch: num_train // batch_size, and at least one."""
    return max(num_train // batch_size, 1)


def epoch_starts(num_iters, num_train, batch_size):
    """The iterations after which nn_train records the accuracies and decays the rate."""
    per_epoch = iterations_per_epoch(num_train, batch_size)
    return [it for it in range(num_iters) if it % per_epoch == 0]


def learning_rate_schedule(learning_rate, learning_rate_decay, num_iters, num_train, batch_size):
    """The learning rate nn_train uses at each iteration (it decays once per epoch).

    Returns:
        list of num_iters floats; entry `it` is the rate of the update at iteration `it`.
    """
    decays_after = set(epoch_starts(num_iters, num_train, batch_size))
    rates, rate = [], learning_rate
    for it in range(num_iters):
        rates.append(rate)
        if it in decays_after:
            rate *= learning_rate_decay
    return rates


def accuracy(y_pred, y):
    """Fraction of predictions equal to the labels, a float in [0, 1]."""
    return (y_pred == y.to(y_pred.device)).float().mean().item()
