"""bench/: the table's arithmetic and a one-round run of part 1 (no timing is asserted)."""
import re

import pytest

from bench import run as bench_run
from bench.timing import Row, Spread, interleave


def test_spread_is_median_and_quartiles():
    spread = Spread.of([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (spread.median, spread.q1, spread.q3, spread.n) == (3.0, 2.0, 4.0, 5)
    assert spread.relative_iqr == pytest.approx(2.0 / 3.0)
    assert Spread.of([7.0]) == Spread(7.0, 7.0, 7.0, 1)


@pytest.mark.parametrize("ratio, condition, want", [
    (Spread(0.60, 0.58, 0.62, 5), True, "yes"),
    (Spread(0.80, 0.78, 0.82, 5), True, "no"),
    (Spread(0.69, 0.66, 0.72, 5), True, "yes (noise)"),
    (Spread(0.71, 0.66, 0.72, 5), True, "no (noise)"),
    (Spread(0.60, 0.58, 0.62, 5), False, "no"),
])
def test_row_says_whether_the_target_is_met_and_whether_noise_could_flip_it(ratio, condition, want):
    row = Row(part="1", measurement="m", threads="1", ratio=ratio, target=0.70, ours="",
              baseline="", condition=condition)
    assert row.met == want


def test_interleave_alternates_the_order_of_candidates():
    calls = []
    interleave({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3, warmup=0)
    assert calls == ["a", "b", "b", "a", "a", "b"]


@pytest.mark.slow
def test_forward_backward_part_prints_a_row_per_baseline_and_shape(capsys):
    assert bench_run.main(["--parts", "forward_backward", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 6, out
    for line in rows:
        assert re.search(r"\| \d+\.\d{3} \(\d+\.\d{3}-\d+\.\d{3}\) \|", line), line
