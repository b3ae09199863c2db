"""Part 3: nn_train's throughput on CIFAR-sized synthetic data, against torch.nn + torch.optim.

Synthetic float32 data the size of the course's CIFAR-10 split: X (49,000, 3,072) and
X_val (1,000, 3,072), standard normal, random labels in 0..9. Both sides run the same
iterations: a batch of 200 drawn with replacement, the loss and its gradients, the loss as a
Python float, a vanilla SGD step with L2 on the weights only (reg * sum(W**2), i.e. weight decay
2 * reg) and, once an epoch (245 iterations), train and validation accuracy and a learning-rate
decay. The baseline is the plain PyTorch way: nn.Sequential(Linear, ReLU, Linear),
F.cross_entropy, loss.backward() and torch.optim.SGD with weight decay on the weights' group.
"""
import torch
import torch.nn.functional as F

from timing import Row, Spread, interleave, ratios, seconds
from two_layer_net import TwoLayerNet

NUM_TRAIN, NUM_VAL, D, H, C = 49_000, 1_000, 3_072, 100, 10
BATCH, LEARNING_RATE, DECAY, REG, STD = 200, 1e-2, 0.95, 1e-3, 1e-2
ITERATIONS = 250  # one epoch is 245 iterations: two epoch checks per run, as in real training


def make_data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"X_train": torch.randn(NUM_TRAIN, D, generator=g),
            "y_train": torch.randint(C, (NUM_TRAIN,), generator=g),
            "X_val": torch.randn(NUM_VAL, D, generator=g),
            "y_val": torch.randint(C, (NUM_VAL,), generator=g)}


def torch_nn_train(model, X, y, X_val, y_val, *, learning_rate, learning_rate_decay, reg,
                   num_iters, batch_size):
    """nn_train's iterations, written with torch.nn and torch.optim.SGD."""
    weights = [model[0].weight, model[2].weight]
    biases = [model[0].bias, model[2].bias]
    optimizer = torch.optim.SGD([{"params": weights, "weight_decay": 2 * reg},
                                 {"params": biases, "weight_decay": 0.0}], lr=learning_rate)
    iterations_per_epoch = max(X.shape[0] // batch_size, 1)
    loss_history, train_acc_history, val_acc_history = [], [], []
    for it in range(num_iters):
        idx = torch.randint(X.shape[0], (batch_size,))
        X_batch, y_batch = X[idx], y[idx]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X_batch), y_batch)
        loss.backward()
        loss_history.append(loss.item())
        optimizer.step()
        if it % iterations_per_epoch == 0:
            with torch.no_grad():
                train_acc = (model(X_batch).argmax(1) == y_batch).float().mean().item()
                val_acc = (model(X_val).argmax(1) == y_val).float().mean().item()
            train_acc_history.append(train_acc)
            val_acc_history.append(val_acc)
            for group in optimizer.param_groups:
                group["lr"] *= learning_rate_decay
    return {"loss_history": loss_history, "train_acc_history": train_acc_history,
            "val_acc_history": val_acc_history}


def candidates(data):
    """{name: function of no arguments}, each training a fresh net for ITERATIONS steps."""
    X, y, X_val, y_val = data["X_train"], data["y_train"], data["X_val"], data["y_val"]
    settings = dict(learning_rate=LEARNING_RATE, learning_rate_decay=DECAY, reg=REG,
                    num_iters=ITERATIONS, batch_size=BATCH)

    def ours():
        net = TwoLayerNet(D, H, C, std=STD, seed=0)
        return net.train(X, y, X_val, y_val, **settings)

    def torch_nn():
        model = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, C))
        return torch_nn_train(model, X, y, X_val, y_val, **settings)

    return {"ours": ours, "torch_nn": torch_nn}


def check_same_updates(data, num_iters=3):
    """Raise unless both loops, from the same weights and the same seed, end at the same weights."""
    settings = dict(learning_rate=LEARNING_RATE, learning_rate_decay=DECAY, reg=REG,
                    num_iters=num_iters, batch_size=BATCH)
    net = TwoLayerNet(D, H, C, std=STD, seed=0)
    model = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, C))
    with torch.no_grad():
        for layer, W, b in ((model[0], "W1", "b1"), (model[2], "W2", "b2")):
            layer.weight.copy_(net.params[W].T)
            layer.bias.copy_(net.params[b])
    start = {k: v.clone() for k, v in net.params.items()}
    args = (data["X_train"], data["y_train"], data["X_val"], data["y_val"])
    torch.manual_seed(0)
    net.train(*args, **settings)
    torch.manual_seed(0)
    torch_nn_train(model, *args, **settings)
    # Compare the steps, not the weights: the L2 term is ~2% of a step and would hide in the weights.
    theirs = {"W1": model[0].weight.T, "b1": model[0].bias, "W2": model[2].weight.T,
              "b2": model[2].bias}
    for k in net.params:
        torch.testing.assert_close(net.params[k] - start[k], theirs[k].detach() - start[k],
                                   rtol=1e-3, atol=1e-8, msg=lambda m, k=k: f"{k}: {m}")


def run(*, threads, rounds, data=None):
    """Two rows: our iterations per second, and our time / the torch.nn loop's.

    `data` is make_data()'s result, to share it between calls (it takes 0.6 GB).
    """
    data = data if data is not None else make_data()
    check_same_updates(data)
    samples = interleave(candidates(data), rounds=rounds, warmup=1)
    ours, base = (Spread.of(samples[k]).median for k in ("ours", "torch_nn"))
    ratio = ratios(samples, "ours", "torch_nn")
    return [Row(part="3",
                measurement=f"nn_train throughput, {NUM_TRAIN:,} x {D:,} synthetic, batch {BATCH}",
                threads=str(threads), ratio=None, target=None,
                ours=f"{ITERATIONS / ours:.0f} it/s", baseline=f"{ITERATIONS / base:.0f} it/s",
                note=f"{ITERATIONS} iterations a run, {rounds} runs"),
            Row(part="3", measurement="nn_train / torch.nn + torch.optim.SGD loop, same iterations",
                threads=str(threads), ratio=ratio, target=None,
                ours=seconds(ours), baseline=seconds(base),
                note=f"per run of {ITERATIONS} iterations")]
