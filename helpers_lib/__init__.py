"""The parts of helpers.py, one module a topic. Import them through `helpers` (the notebook and
students do); the grader imports only the part it needs.

- `data`: the toy problem and its committed reference, the huge-scores case, the digits and
  CIFAR-10 (read with an unpickler that loads arrays only).
- `gradcheck`: `rel_error`, central differences, `grad_check` and the oracle's loss and gradients.
- `oracle`: every check's expected forward pass, loss and gradients (torch.autograd in the
  instructor's kit; in the student release, the values recorded for its checks when it was built).
- `training`: nn_train's epochs, learning-rate schedule and accuracy, restated.
- `plots`: training curves, learned weights, the search heat map.
- `errors`: an exception on one line, shared with the grader and `grade.py submit`.
- `notebook`: the notebook's checks and reports, the student's module followed as saved,
  seeds, threads, progress bars.
- `deepnets`: the vanishing- and exploding-gradient demonstrations of section 8.
"""
