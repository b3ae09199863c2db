"""Part 2: nn_train on the digits set against scikit-learn's MLPClassifier(solver="sgd").

Both sides get the same problem and the same updates: the digits split of
helpers.load_digits_data (1,200 training images, float32), H=100 ReLU units, softmax output,
batches of 200, 1,200 updates, a constant learning rate of 0.5, no momentum, and the same L2
strength (ours: reg * sum(W**2) with reg=1e-4; scikit-learn: alpha / 2 * sum(W**2) / batch_size,
so alpha = 2 * reg * batch_size). scikit-learn's max_iter counts epochs: 200 epochs of 6 batches.
Early stopping is off on both sides. Each side keeps its own initialisation (ours: std 0.1,
about scikit-learn's Glorot scale here) and its own batch sampling (ours: with replacement, as
the contract says; scikit-learn: shuffled epochs).

Timed: building the net and training it (ours: TwoLayerNet + nn_train, which also measures
train and validation accuracy once an epoch, as the contract says; scikit-learn: fit, which
does not). Test accuracy on the 297 test images is measured after the timing; every round
trains both sides with the round's seed.
"""
import warnings

import torch

from helpers import load_digits_data
from timing import Row, Spread, interleave, ratios, seconds
from two_layer_net import TwoLayerNet

TARGET = 0.70
HIDDEN, BATCH, UPDATES, LEARNING_RATE, REG, STD = 100, 200, 1200, 0.5, 1e-4, 0.1


def candidates(data, trained):
    """{name: function of no arguments}; each call trains one net with the next seed and
    appends it to `trained[name]`."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, y, X_val, y_val = data["X_train"], data["y_train"], data["X_val"], data["y_val"]
    X_np, y_np = X.numpy(), y.numpy()
    epochs = UPDATES * BATCH // X.shape[0]

    def ours():
        seed = len(trained["ours"])
        torch.manual_seed(seed)
        net = TwoLayerNet(X.shape[1], HIDDEN, 10, std=STD, seed=seed)
        net.train(X, y, X_val, y_val, learning_rate=LEARNING_RATE, learning_rate_decay=1.0,
                  reg=REG, num_iters=UPDATES, batch_size=BATCH)
        trained["ours"].append(net)

    def sklearn():
        seed = len(trained["sklearn"])
        clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), solver="sgd", momentum=0.0,
                            batch_size=BATCH, learning_rate="constant",
                            learning_rate_init=LEARNING_RATE, alpha=2 * REG * BATCH,
                            max_iter=epochs, n_iter_no_change=epochs + 1, tol=0.0,
                            early_stopping=False, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X_np, y_np)
        assert clf.t_ == UPDATES * BATCH, f"scikit-learn made {clf.t_ // BATCH} updates"
        trained["sklearn"].append(clf)

    return {"ours": ours, "sklearn": sklearn}


def test_accuracies(data, trained):
    """{side: [test accuracy of each trained net]}."""
    X_test, y_test = data["X_test"], data["y_test"]
    return {"ours": [(net.predict(X_test) == y_test).float().mean().item()
                     for net in trained["ours"]],
            "sklearn": [float(clf.score(X_test.numpy(), y_test.numpy()))
                        for clf in trained["sklearn"]]}


def run(*, threads, rounds):
    """One row: our training time / scikit-learn's, with both sides' median test accuracy."""
    data = load_digits_data()
    trained = {"ours": [], "sklearn": []}
    samples = interleave(candidates(data, trained), rounds=rounds, warmup=1)
    for side in trained:
        del trained[side][0]  # the warm-up net
    acc = {side: Spread.of(a).median for side, a in test_accuracies(data, trained).items()}
    n_test = data["y_test"].shape[0]
    ratio = ratios(samples, "ours", "sklearn")
    return [Row(
        part="2", measurement="nn_train on digits / sklearn MLPClassifier(sgd), 1,200 updates",
        threads=str(threads), ratio=ratio, target=TARGET,
        ours=seconds(Spread.of(samples["ours"]).median),
        baseline=seconds(Spread.of(samples["sklearn"]).median),
        note=(f"test accuracy {acc['ours']:.1%} vs {acc['sklearn']:.1%} (median of {rounds} seeds, "
              f"{n_test} images)"),
        condition=acc["ours"] >= acc["sklearn"])]
