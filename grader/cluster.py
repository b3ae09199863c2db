"""Grading on a Dask distributed cluster (`grade.py SUB ... --out DIR --cluster ADDRESS`).

The grader's process stays what it is locally (grader.batch): it holds the seed, draws the
inputs, computes the expected values, judges every reply and alone writes the results folder.
Only its slots change: a RemoteSlot, in place of a local worker process, ships each request
(the wire message and the files its paths name) to a Dask worker as data, where
grader.dask_worker runs it in a local `python -m grader.worker` behind the same walls, and brings
the raw reply back. No expected value and no seed ever leaves this process.

Workers are checked before they grade anything: each new worker reports its kit (the grader's
version, torch's) and the walls it cannot put up; a worker whose kit differs is refused, both
kits named, and never sent a request (each task checks again on arrival). The scheduler retries a
task whose worker died on another worker; a task that took down as many workers as its
`distributed.scheduler.allowed-failures` allows comes back as KilledWorker, and its submission
fails with that message instead of being tried again.
"""
import os
import sys
import threading
import time

import torch

from grader import GRADER_VERSION, batch, dask_worker, wire

CONNECT_TIMEOUT_S = 10.0
WORKER_WAIT_S = 120.0  # how long a request waits for a worker with the grader's kit
FIRST_WORKER_S = 30.0  # how long the start waits for the first one
POLL_S = 1.0
MAX_RESUBMITS = 20  # resubmissions of one request after refusals or vanished workers


class UsageError(Exception):
    """The cluster cannot be used (no scheduler at the address, no worker with the kit)."""


def own_kit():
    return {"grader": GRADER_VERSION, "torch": torch.__version__}


class Cluster:
    """A connection to a Dask scheduler and the workers accepted to grade."""

    def __init__(self, address, *, connect_timeout=None, log=None):
        from distributed import Client
        connect_timeout = CONNECT_TIMEOUT_S if connect_timeout is None else connect_timeout
        self.log = log or (lambda line: print(line, file=sys.stderr))
        try:
            self.client = Client(address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as e:
            raise UsageError(f"no Dask scheduler answers at '{address}' ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else 'no answer'}); start one "
                             "with `dask scheduler` and pass the address it prints") from None
        self.address = address
        self.kit = own_kit()
        self.accepted, self.refused = {}, {}  # address: its kit, or why it was refused
        self._lock = threading.Lock()

    @property
    def dashboard(self):
        try:
            return self.client.dashboard_link
        except (KeyError, ValueError, AttributeError):
            return None

    def close(self):
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def threads(self):
        """Threads of the accepted workers (at least 1): how many requests to keep in flight."""
        live = self.client.nthreads()
        return max(1, sum(n for a, n in live.items() if a in self.workers(live)))

    def workers(self, live=None):
        """Addresses of the live workers with the grader's kit; a new worker is checked first."""
        with self._lock:
            live = self.client.nthreads() if live is None else live
            new = [a for a in live if a not in self.accepted and a not in self.refused]
            if new:
                reports = self.client.run(dask_worker.kit, workers=new, on_error="return")
                for address in new:
                    self._judge(address, reports.get(address))
            return [a for a in live if a in self.accepted]

    def _judge(self, address, report):
        if isinstance(report, BaseException) or not isinstance(report, dict):
            why = f"it cannot run the grader ({type(report).__name__}: {report})"
            self.refused[address] = why
            self.log(f"grade.py: refused Dask worker {address}: {why}; start `dask worker` from "
                     "the kit's folder, with the kit's requirements installed")
        elif (report["grader"], report["torch"]) != (self.kit["grader"], self.kit["torch"]):
            self.refused[address] = report
            self.log(f"grade.py: refused Dask worker {address}: its kit is "
                     f"{dask_worker.describe(report)}, this grader's is "
                     f"{dask_worker.describe(self.kit)}; install the same kit there")
        else:
            self.accepted[address] = report
            if report["walls_down"]:
                self.log(f"grade.py: note: Dask worker {address} grades without "
                         + "; without ".join(report["walls_down"]))

    def recheck(self):
        """Ask every accepted worker for its kit again (a task was refused by one)."""
        with self._lock:
            accepted, self.accepted = list(self.accepted), {}
        self.workers({a: 0 for a in accepted})

    def walls_down(self):
        """{wall: [worker, ...]} for the walls some accepted worker cannot put up."""
        down = {}
        for address, report in self.accepted.items():
            for wall in report["walls_down"]:
                down.setdefault(wall, []).append(address)
        return down

    def notes(self):
        """Lines for the batch's summary: the walls some accepted worker could not put up."""
        return [f"note: graded on the Dask cluster at {self.address}; without {wall} on "
                f"{', '.join(workers)}" for wall, workers in self.walls_down().items()]

    def slot(self, run_root):
        return RemoteSlot(self, run_root)


def connect(address, **kwargs):
    """A Cluster at `address` with at least one worker accepted; raises UsageError otherwise."""
    cluster = Cluster(address, **kwargs)
    deadline = time.monotonic() + FIRST_WORKER_S
    while not cluster.workers():
        if time.monotonic() > deadline:
            refused = "; ".join(f"{a} ({w if isinstance(w, str) else dask_worker.describe(w)})"
                                for a, w in cluster.refused.items())
            cluster.close()
            raise UsageError(f"the Dask scheduler at '{address}' has no worker with this "
                             f"grader's kit ({dask_worker.describe(cluster.kit)})"
                             + (f"; refused: {refused}" if refused else
                                "; start workers with `dask worker " + address + "`"))
        time.sleep(POLL_S)
    return cluster


def on_worker(module, name):
    """A task function that calls module.name on the worker. It travels by value and imports
    nothing until it runs, so that the scheduler, which unpickles every task, needs no kit."""
    def run_request(*args):
        import importlib
        return getattr(importlib.import_module(module), name)(*args)
    return run_request


RUN_REQUEST = on_worker("grader.dask_worker", "run_request")


class RemoteSlot:
    """A job slot whose worker is whichever Dask worker the scheduler picks, one request at a
    time: the same run(request, arrays) / kill() / close() as batch.WorkerProcess."""

    def __init__(self, cluster, run_root):
        self.cluster, self.run_root = cluster, run_root
        self.future, self.killed = None, False
        self.lost = {}  # submission folder: why its requests are not sent again

    def run(self, request, arrays):
        if self.killed:
            raise batch.WorkerCrash("the batch was stopped")
        folder = os.path.relpath(request["scratch"], self.run_root).split(os.sep)[0]
        if folder in self.lost:
            raise batch.WorkerLost(self.lost[folder])
        files, folders = self._files(request)
        message = wire.encode(request, arrays)
        for _ in range(MAX_RESUBMITS):
            kind, value = self._try(message, files, folders)
            if kind == "reply":
                try:
                    return wire.decode(value, batch.REPLY_CAP)
                except ValueError as e:
                    raise batch.WorkerCrash(f"a Dask worker sent a malformed reply ({e})") from e
            if kind == "crash":
                raise batch.WorkerCrash(value)
            if kind == "lost":
                self.lost[folder] = value
                raise batch.WorkerLost(value)
        raise batch.WorkerCrash(f"no Dask worker took this request in {MAX_RESUBMITS} tries")

    def _try(self, message, files, folders):
        """("reply", bytes), ("crash", why), ("lost", why), or ("again", why) to resubmit."""
        from distributed import KilledWorker
        from distributed.utils import CancelledError

        workers = self._workers()
        future = self.cluster.client.submit(
            RUN_REQUEST, message, files, folders, self.run_root, self.cluster.kit,
            workers=workers, allow_other_workers=False, pure=False)
        self.future = future
        try:
            while not self.killed:
                try:
                    # a reply held by a worker that dies before it is fetched is computed again
                    return future.result(timeout=POLL_S)
                except TimeoutError:
                    if future.status == "error":  # the task's own TimeoutError
                        raise
                    if future.status in ("pending", "lost") and not set(workers) & set(self.cluster.client.nthreads()):
                        return "again", "every worker it could go to left"
                except KilledWorker:
                    return "lost", ("took down every Dask worker it ran on (the scheduler stops "
                                    "after distributed.scheduler.allowed-failures tries); not "
                                    "tried again")
                except dask_worker.KitMismatch as e:
                    self.cluster.recheck()
                    return "again", str(e)
                except CancelledError:
                    if not self.killed:
                        return "again", "the request was cancelled on the Dask cluster"
            raise batch.WorkerCrash("the batch was stopped")
        except (batch.WorkerCrash, batch.WorkerLost):
            raise
        except Exception as e:  # noqa: BLE001 -- whatever the worker raised: a grader fault
            raise batch.WorkerCrash(f"a Dask worker failed ({type(e).__name__}: {e})") from e
        finally:
            self.future = None
            future.cancel()  # a no-op once finished; else the task goes

    def _workers(self):
        deadline = time.monotonic() + WORKER_WAIT_S
        while not (workers := self.cluster.workers()):
            if self.killed or time.monotonic() > deadline:
                raise batch.WorkerCrash(f"no Dask worker with this grader's kit for "
                                        f"{WORKER_WAIT_S:g} s")
            time.sleep(POLL_S)
        return workers

    def _files(self, request):
        """({path relative to the run folder: bytes}, [folders]) for every folder the request's
        paths name inside the run folder (paths outside it are the kit's, on every machine)."""
        roots = {request["scratch"], *request.get("read_paths", [])}
        for key in ("module_path", "notebook_path"):
            if key in request:
                roots.add(os.path.dirname(request[key]))
        files, folders = {}, []
        for root in sorted(roots):
            if os.path.relpath(root, self.run_root).startswith(os.pardir):
                continue
            for here, dirs, names in os.walk(root):
                folders.append(os.path.relpath(here, self.run_root))
                for name in names:
                    path = os.path.join(here, name)
                    if os.path.isfile(path) and not os.path.islink(path):
                        with open(path, "rb") as f:
                            files[os.path.relpath(path, self.run_root)] = f.read()
        return files, folders

    def kill(self):
        self.killed = True
        future = self.future
        if future is not None:
            future.cancel()

    def close(self):
        self.kill()
