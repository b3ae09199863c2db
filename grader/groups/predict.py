"""The `predict` test: nn_predict's labels are the argmax of a consistent loss_func's scores."""
import torch

from grader.calls import ContractError, as_tensor, params_of
from grader.rubric import (
    Draw,
    Group,
    Verdict,
    case_arrays,
    check_array,
    child_error,
    describe,
    draw_case,
    oracle_forward,
)


def build(seed):
    g = Draw(seed, "predict")
    shapes = [(1, 6, 8, 2), (200, 12, 16, 10)]
    arrays, expected = {}, []
    for i, shape in enumerate(shapes):
        params, X, _ = draw_case(g, *shape)
        scores = oracle_forward(params, X)[0]
        arrays.update(case_arrays(f"case{i}", params, X))
        arrays[f"case{i}/scores"] = scores
        expected.append(scores.argmax(dim=1))

    def judge(meta, out):
        for i, want in enumerate(expected):
            label = f"case {i} ({describe(shapes[i])})"
            error = child_error(meta, f"case{i}")
            if error:
                return {"predict": Verdict(False, f"{label}: nn_predict raised {error}")}
            got = out.get(f"case{i}/labels")
            _, problem = check_array(got, want, "y_pred")
            if problem:
                return {"predict": Verdict(False, f"{label}: {problem}")}
            wrong = int((got != want).sum())
            if wrong:
                return {"predict": Verdict(False, f"{label}: {wrong} of {len(want)} labels are "
                                                  "not the argmax of the scores")}
        return {"predict": Verdict(True, f"every label is the argmax of the scores "
                                         f"({len(expected)} cases)")}

    return Group("predict", ["predict"], {"cases": len(shapes)}, arrays, judge)


def matching_rows(X, X_now):
    """The index into X of each row of X_now, or None where X_now is not made of X's rows: the
    child answers loss_func from the grader's scores, so it answers for X, a slice of it, or
    rows of it in any order (a student may predict in batches)."""
    if not isinstance(X_now, torch.Tensor) or X_now.dim() != 2 or X_now.shape[1] != X.shape[1]:
        return None
    if X_now.shape == X.shape and torch.equal(X_now, X):
        return torch.arange(X.shape[0])
    where = {row.numpy().tobytes(): i for i, row in enumerate(X)}
    rows = [where.get(row.to(X.dtype).cpu().numpy().tobytes()) for row in X_now.detach()]
    return None if None in rows else torch.tensor(rows, dtype=torch.int64)


def run(runner, meta, arrays):
    for case in range(meta["cases"]):
        params, X = params_of(arrays, f"case{case}"), arrays[f"case{case}/X"].clone()
        given = {k: v.clone() for k, v in params.items()}
        scores = arrays[f"case{case}/scores"]

        def scores_func(params_now, X_now, y=None, reg=0.0, given=given, X=X, scores=scores):
            if y is not None:
                raise ContractError("nn_predict called loss_func with labels; call "
                                    "loss_func(params, X) to get the scores")
            if not isinstance(params_now, dict) or not all(
                    isinstance(params_now.get(k), torch.Tensor) and torch.equal(params_now[k], v)
                    for k, v in given.items()):
                raise ContractError("nn_predict called loss_func with other parameters than "
                                    "its own params; pass params on unchanged")
            rows = matching_rows(X, X_now)
            if rows is None:
                raise ContractError("nn_predict called loss_func on inputs that are not rows of "
                                    "its X; pass X, or slices of it")
            return scores[rows].clone()

        def call():
            labels = runner.module.nn_predict(params, scores_func, X)
            runner.arrays[f"case{case}/labels"] = as_tensor(labels, "nn_predict's result")

        runner.guarded(f"case{case}", call)
