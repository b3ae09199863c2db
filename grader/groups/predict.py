"""The `predict` test: nn_predict's labels are the argmax of a consistent loss_func's scores."""
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
        arrays.update(case_arrays(f"case{i}", params, X))
        expected.append(oracle_forward(params, X)[0].argmax(dim=1))

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


def run(runner, meta, arrays):
    for case in range(meta["cases"]):
        params, X = params_of(arrays, f"case{case}"), arrays[f"case{case}/X"].clone()

        def scores_func(params_now, X_now, y=None, reg=0.0):
            if y is not None:
                raise ContractError("nn_predict called loss_func with labels; call "
                                    "loss_func(params, X) to get the scores")
            return oracle_forward(params_now, X_now)[0]

        def call():
            labels = runner.module.nn_predict(params, scores_func, X)
            runner.arrays[f"case{case}/labels"] = as_tensor(labels, "nn_predict's result")

        runner.guarded(f"case{case}", call)
