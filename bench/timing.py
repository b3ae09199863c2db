"""Interleaved timing in one process, and the result rows every benchmark returns.

A benchmark runs its candidates in rounds, A then B in one round and B then A in the next, so
that a burst of load from another process hits both sides of a ratio; it reports the median of
the per-round ratios and their interquartile range as the noise.
"""
import os
import platform
import statistics
import time
from dataclasses import dataclass


@dataclass
class Spread:
    """Median and quartiles of a list of samples (seconds or ratios)."""

    median: float
    q1: float
    q3: float
    n: int

    @classmethod
    def of(cls, samples):
        samples = sorted(samples)
        if len(samples) == 1:
            return cls(samples[0], samples[0], samples[0], 1)
        q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
        return cls(statistics.median(samples), q1, q3, len(samples))

    @property
    def relative_iqr(self):
        """(q3 - q1) / median: 0.05 means the middle half of the samples lie within 5%."""
        return (self.q3 - self.q1) / self.median if self.median else float("nan")


@dataclass
class Row:
    """One line of the table: a ratio of ours to a baseline, or an absolute figure.

    `met` is "yes" or "no" by the median ratio against `target` (and any extra condition the
    benchmark passes as `condition`), with "(noise)" added when the target lies inside the
    interquartile range, i.e. when another run could well say the opposite.
    """

    part: str
    measurement: str
    threads: str
    ratio: Spread | None
    target: float | None
    ours: str
    baseline: str
    note: str = ""
    condition: bool = True
    met: str = ""

    def __post_init__(self):
        if self.ratio is not None and self.target is not None:
            ok = self.ratio.median <= self.target and self.condition
            straddles = self.ratio.q1 <= self.target <= self.ratio.q3
            noise = " (noise)" if straddles and self.condition else ""
            self.met = ("yes" if ok else "no") + noise


def interleave(candidates, *, rounds, number=1, warmup=1):
    """Time every candidate `rounds` times, alternating their order from round to round.

    Args:
        candidates: {name: function of no arguments}; each call is one unit of work.
        rounds: samples per candidate.
        number: calls per sample; a sample is their mean time.
        warmup: untimed calls of each candidate before the first round.
    Returns:
        {name: list of `rounds` sample times in seconds}, in round order.
    """
    names = list(candidates)
    for name in names:
        for _ in range(warmup):
            candidates[name]()
    samples = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            fn = candidates[name]
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - start) / number)
    return samples


def ratios(samples, ours, baseline):
    """Per-round ratios ours / baseline of `interleave`'s samples, summarised."""
    return Spread.of([a / b for a, b in zip(samples[ours], samples[baseline])])


def seconds(value):
    """A duration for the side columns: 1.23 ms, 45.6 us, 0.251 s."""
    if value >= 1.0:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} us"


def machine():
    """One line naming the machine: CPU model, cores, Python, torch and its BLAS."""
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = "MKL" if torch.backends.mkl.is_available() else "no MKL"
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__} ({blas}), {platform.system()}")


def load_average():
    """The 1-minute load average, or None where the OS has none."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


class threads:
    """Context manager: run torch and every BLAS / OpenMP pool in this process at `n` threads.

    torch.set_num_threads covers torch (its MKL and OpenMP); threadpoolctl covers the OpenBLAS
    that numpy and scikit-learn use. Both are restored on exit.
    """

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        import torch
        from threadpoolctl import threadpool_limits

        self._torch_before = torch.get_num_threads()
        self._limits = threadpool_limits(limits=self.n)
        torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self._torch_before)
        self._limits.restore_original_limits()
        return False
