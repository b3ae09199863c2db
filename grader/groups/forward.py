"""The `forward` test: scores and hidden of nn_forward_pass on random cases."""
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
    draw_shapes,
    judge_errors,
    oracle_forward,
)


def build(seed):
    g = Draw(seed, "forward")
    shapes = draw_shapes(g, 4)
    arrays, expected = {}, []
    for i, shape in enumerate(shapes):
        params, X, _ = draw_case(g, *shape)
        arrays.update(case_arrays(f"case{i}", params, X))
        expected.append(oracle_forward(params, X))

    def judge(meta, out):
        checks = []
        for i, (scores, hidden) in enumerate(expected):
            label = f"case {i} ({describe(shapes[i])})"
            error = child_error(meta, f"case{i}")
            if error:
                return {"forward": Verdict(False, f"{label}: nn_forward_pass raised {error}")}
            checks.append((f"{label}, scores", *check_array(out.get(f"case{i}/scores"), scores, "scores")))
            checks.append((f"{label}, hidden", *check_array(out.get(f"case{i}/hidden"), hidden, "hidden")))
        return {"forward": judge_errors(checks, f"over {len(shapes)} cases")}

    return Group("forward", ["forward"], {"cases": len(shapes)}, arrays, judge)


def run(runner, meta, arrays):
    for case in range(meta["cases"]):
        params, X = params_of(arrays, f"case{case}"), arrays[f"case{case}/X"].clone()

        def call():
            result = runner.module.nn_forward_pass(params, X)
            if not isinstance(result, tuple) or len(result) != 2:
                raise ContractError(f"nn_forward_pass returned {type(result).__name__}, "
                                    "expected a tuple (scores, hidden)")
            scores = as_tensor(result[0], "scores")
            hidden = as_tensor(result[1], "hidden")
            runner.arrays[f"case{case}/scores"] = scores
            runner.arrays[f"case{case}/hidden"] = hidden

        runner.guarded(f"case{case}", call)
