"""The kit's main job on its embedded defaults: train the reference on the digits set.

    python main.py [--out DIR]

Prints the final training loss and the test accuracy and writes DIR/digits_training.png.
"""
import argparse
import os
import sys

import torch

from helpers import load_digits_data, plot_stats
from two_layer_net import TwoLayerNet

DIGITS_DEFAULTS = dict(hidden_size=100, std=1e-2, learning_rate=0.5, learning_rate_decay=0.99,
                       reg=1e-4, num_iters=1200, batch_size=200, seed=0)


def train_digits(*, out_dir, hidden_size, std, learning_rate, learning_rate_decay, reg, num_iters,
                 batch_size, seed):
    """Train the reference net on the digits set; return (final loss, test accuracy, figure path)."""
    torch.manual_seed(seed)
    data = load_digits_data(seed=seed)
    net = TwoLayerNet(data["X_train"].shape[1], hidden_size, 10, std=std, seed=seed)
    stats = net.train(data["X_train"], data["y_train"], data["X_val"], data["y_val"],
                      learning_rate=learning_rate, learning_rate_decay=learning_rate_decay,
                      reg=reg, num_iters=num_iters, batch_size=batch_size)
    test_acc = (net.predict(data["X_test"]) == data["y_test"]).float().mean().item()
    os.makedirs(out_dir, exist_ok=True)
    figure_path = os.path.join(out_dir, "digits_training.png")
    plot_stats(stats).savefig(figure_path, dpi=100)
    return stats["loss_history"][-1], test_acc, figure_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="folder for the figures (default: out)")
    args = parser.parse_args(argv)
    loss, test_acc, figure_path = train_digits(out_dir=args.out, **DIGITS_DEFAULTS)
    print(f"digits: final training loss {loss:.4f}, test accuracy {test_acc:.1%}")
    print(f"wrote {figure_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
