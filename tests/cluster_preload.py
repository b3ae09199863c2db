"""A preload for the Dask workers of tests/test_cluster.py (`dask worker --preload FILE`): it
causes, on purpose, the faults the cluster code must survive and that the walls keep a real
submission from causing.

- $TEST_KIT_VERSION set: this worker reports that grader version (a machine with another kit).
- A request whose files hold TAKE_DOWN: the Dask worker process dies on it, as one would if a
  submission brought its machine down.
"""
import os

import grader
from grader import dask_worker

TAKE_DOWN = b"TAKE DOWN THE DASK WORKER"


def dask_setup(worker):
    if os.environ.get("TEST_KIT_VERSION"):
        grader.GRADER_VERSION = os.environ["TEST_KIT_VERSION"]
    run_request = dask_worker.run_request

    def run_or_die(message, files, *rest):
        if any(TAKE_DOWN in data for data in files.values()):
            os._exit(70)
        return run_request(message, files, *rest)

    dask_worker.run_request = run_or_die
