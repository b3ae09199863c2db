"""Grading on a Dask cluster (grader.cluster, grader.dask_worker): a real scheduler and workers.

The module's cluster is what a user starts with the `dask` command line: `dask scheduler` and
`dask worker --nthreads 1` (each under its nanny, which restarts a dead worker), on 127.0.0.1 and
random ports: two workers with the kit and a third, "old", that reports another grader version;
the scheduler cannot import the grader, as on a machine with Dask alone.
The workers load tests/cluster_preload.py, which lets a test bring a worker down or give it
another kit on purpose. The scheduler allows one failure per task, so that a task that takes
down its worker is given up after two.
"""
import csv
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time

import pytest

import grade
import grader
import grading_corpus
from conftest import ROOT
from grader import cluster, dask_worker, wire

DASK = os.path.join(os.path.dirname(sys.executable), "dask")
PRELOAD = os.path.join(ROOT, "tests", "cluster_preload.py")
CORPUS = ["correct", "forward_missing_relu", "os_exit", "kills_the_grader"]
START_S = 90
WORKERS = 3
OLD_KIT = "0.9+old"


def worker_command(address, name):
    return [DASK, "worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--name", name,
            "--dashboard-address", "127.0.0.1:0", "--preload", PRELOAD]


def start(command, log, kit=True, **env):
    """Start a `dask` command; with `kit`, where it can import the grader (a worker)."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**environment, **({"PYTHONPATH": ROOT} if kit else {}), **env})


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """(scheduler address, a Client, the logs folder, [worker Popen]) of a running cluster."""
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask")
    scheduler_file = logs / "scheduler.json"
    processes = [start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                        "--dashboard-address", "127.0.0.1:0", "--scheduler-file",
                        str(scheduler_file)], open(logs / "scheduler.log", "w"), kit=False,
                       DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1")]
    try:
        deadline = time.monotonic() + START_S
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, (logs / "scheduler.log").read_text()
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        for name in ("w1", "w2"):
            processes.append(start(worker_command(address, name), open(logs / f"{name}.log", "w")))
        processes.append(start(worker_command(address, "old"), open(logs / "old.log", "w"),
                               TEST_KIT_VERSION=OLD_KIT))
        client = Client(address, timeout=30, set_as_default=False)
        client.wait_for_workers(WORKERS, timeout=START_S)
        yield address, client, logs, processes
        client.close()
    finally:
        for process in processes:
            process.terminate()
        for process in reversed(processes):
            stop(process)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(paths, {name: results.json without its execution time}) of a local run of the batch."""
    folder = tmp_path_factory.mktemp("corpus")
    out = folder / "local"
    entries = {e.name: e for e in grading_corpus.entries([], str(out))}
    paths = [grading_corpus.write(entries[name], str(folder)) for name in CORPUS]
    assert grade.main([*paths, "--out", str(out), "--jobs", "2"]) == 0
    return paths, results_of(out)


def results_of(out):
    """{name: results.json without execution_time} of every row in out/grades.csv."""
    with open(out / "grades.csv") as f:
        names = [row["name"] for row in csv.DictReader(f)]
    assert len(names) == len(set(names)), f"a row is doubled in grades.csv: {names}"
    found = {}
    for name in names:
        data = json.loads((out / name / "results.json").read_text())
        data.pop("execution_time")
        found[name] = data
    return found


def test_a_worker_with_another_kit_refuses_the_request_before_writing_anything(tmp_path):
    theirs = {"grader": "0.9+old", "torch": "1.0"}
    with pytest.raises(dask_worker.KitMismatch) as refused:
        dask_worker.run_request(b"not even a message", {"x/two_layer_net.py": b""}, ["x"],
                                str(tmp_path), theirs)
    assert "0.9+old" in str(refused.value) and grader.GRADER_VERSION in str(refused.value)
    assert dask_worker.SLOTS.run_root is None, "a slot was started for a refused request"


def test_a_worker_that_is_not_root_says_which_walls_are_down_and_the_batch_repeats_it(
        monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    report = dask_worker.kit()
    assert any("sandbox uid" in wall for wall in report["walls_down"])
    assert any("namespaces" in wall and "root" in wall for wall in report["walls_down"])
    connected = cluster.Cluster.__new__(cluster.Cluster)  # its bookkeeping, without a scheduler
    said = []
    connected.kit, connected.address, connected.log = cluster.own_kit(), "tcp://s:8786", said.append
    connected.accepted, connected.refused = {}, {}
    connected._judge("tcp://w:1", report)
    assert "tcp://w:1" in connected.accepted, "walls down are a note, not a refusal"
    assert len(said) == 1 and "without separate sandbox uids" in said[0]
    notes = connected.notes()
    assert len(notes) == len(report["walls_down"]) and all("tcp://w:1" in n for n in notes)


def test_a_request_path_that_leaves_its_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="leaves"):
        dask_worker._materialise(str(tmp_path), {"../escape.py": b""}, [])
    assert not (tmp_path.parent / "escape.py").exists()


def test_an_unreachable_scheduler_is_a_usage_error_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2.0)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sub = tmp_path / "amy.py"
    sub.write_text(grading_corpus.BASE)
    out = tmp_path / "out"
    assert grade.main([str(sub), "--out", str(out), "--cluster", f"tcp://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"127.0.0.1:{port}" in err, err
    assert "dask scheduler" in err and not out.exists()


class InProcessCluster:
    """A stand-in for cluster.Cluster whose "workers" run each task in this process, recording
    what it was sent exactly as Dask would carry it (cloudpickle)."""

    def __init__(self):
        self.kit = cluster.own_kit()
        self.client = self
        self.sent = []

    def submit(self, function, *args, **_):
        import cloudpickle
        self.sent.append(cloudpickle.dumps((function, args)))
        return Done(function(*args))

    def nthreads(self):
        return {"here": 1}

    def workers(self):
        return ["here"]

    def slot(self, run_root):
        return cluster.RemoteSlot(self, run_root)


class Done:
    def __init__(self, value):
        self.value = value

    def result(self, timeout=None):
        return self.value

    def cancel(self):
        pass


@pytest.mark.slow
def test_a_worker_is_sent_the_inputs_and_files_never_the_seed_or_an_expected_value(tmp_path):
    from grader import batch, exports, groups as rubric_groups, rubric

    seed = "s3cret-seed-for-this-test"
    sub = tmp_path / "amy.py"
    sub.write_text(grading_corpus.BASE)
    fake = InProcessCluster()
    rows = batch.grade_batch([str(sub)], out_dir=str(tmp_path / "out"), seed=seed, public=False,
                             limits=batch.Limits(timeout=30, memory_mb=1024), jobs=1,
                             progress=False, cluster=fake)
    assert rows["amy"].score == 100
    # Each submission's inputs are drawn from its own seed (the batch's secret and its content).
    (collected,) = exports.collect([str(sub)])
    own_seed = rubric.submission_seed(seed, collected.content_hash)
    groups = {g.name: g for g in rubric_groups.build(own_seed)}
    assert len(fake.sent) == len(groups)
    for payload in fake.sent:
        assert seed.encode() not in payload and own_seed.encode() not in payload
        function, (message, files, folders, origin, kit) = pickle.loads(payload)
        request, arrays = wire.decode(message, 1 << 30)
        group = groups[request["group"]]
        assert request["meta"] == json.loads(json.dumps(group.meta)), "more than its inputs"
        assert set(arrays) == set(group.arrays), \
            "a request carried more than its group's inputs"
        # the submission and the grader's stand-ins (linear_classifier, the eecs598 package and
        # the 2020 release's top-level a2_helpers)
        assert all(k.endswith(("two_layer_net.py", "linear_classifier.py", "/a2_helpers.py"))
                   or "eecs598" in k for k in files), sorted(files)


@pytest.mark.slow
def test_a_worker_with_another_kit_is_refused_with_both_kits_named(dask_cluster):
    address, client, _, _ = dask_cluster
    said = []
    with cluster.connect(address, log=said.append) as connected:
        accepted = connected.workers()
    (old,) = old_workers(client)
    assert old not in accepted and len(accepted) == WORKERS - 1
    (refusal,) = [line for line in said if "refused" in line]
    assert old in refusal and OLD_KIT in refusal and grader.GRADER_VERSION in refusal


def old_workers(client):
    return [a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "old"]


@pytest.mark.slow
def test_a_batch_on_the_cluster_equals_the_local_one_though_a_worker_is_killed_mid_batch(
        dask_cluster, corpus, tmp_path):
    address, client, _, _ = dask_cluster
    paths, local = corpus
    out = tmp_path / "out"
    batch = subprocess.Popen([sys.executable, "grade.py", *paths, "--out", str(out), "--cluster",
                              address], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline, killed = time.monotonic() + START_S, None
    while killed is None and batch.poll() is None and time.monotonic() < deadline:
        busy = [a for a, keys in client.processing().items() if keys]
        if busy and os.path.isdir(out) and any(p.is_dir() for p in out.iterdir()):
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed = pid
        time.sleep(0.1)
    stdout, stderr = batch.communicate(timeout=300)
    assert killed is not None, "the batch ended before a worker could be killed mid-batch"
    assert batch.returncode == 0, stderr.decode()[-2000:]
    assert "dashboard: http://127.0.0.1:" in stderr.decode()
    assert results_of(out) == local
    (old,) = old_workers(client)
    slots = client.run(lambda: len(dask_worker.SLOTS.by_thread), workers=[old])
    assert slots == {old: 0}, "the worker with another kit started a slot"
    client.wait_for_workers(WORKERS, timeout=START_S)  # its nanny starts it again


@pytest.mark.slow
def test_a_submission_that_takes_down_every_worker_fails_after_bounded_tries(dask_cluster,
                                                                            tmp_path):
    address, client, logs, _ = dask_cluster
    deaths_before = _deaths(logs)
    (tmp_path / "mal.py").write_text("# TAKE DOWN THE DASK WORKER\n" + grading_corpus.BASE)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "grade.py", str(tmp_path / "mal.py"), "--out", str(out),
                           "--cluster", address], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = results_of(out)
    assert results["mal"]["score"] == 0
    for test in results["mal"]["tests"]:
        assert "took down every Dask worker it ran on" in test["output"], test
    # allowed-failures is 1: its first test group ran twice, the others were not sent
    assert _deaths(logs) - deaths_before == 2
    client.wait_for_workers(WORKERS, timeout=START_S)


def _deaths(logs):
    """How many times the nannies restarted a worker that died."""
    return sum((logs / f"{name}.log").read_text().count("Restarting worker")
               for name in ("w1", "w2"))
