"""What runs inside a submission's child process: import the module, call it, report plain data.

The child gets the hidden inputs of one test group (never the expected values, never the seed),
calls the student's functions on fresh copies of them, and returns what they produced as
arrays plus a JSON-able `meta` (errors, flags, call records). Every call is guarded: an
exception, even a BaseException such as SystemExit, becomes a message with the last frames of
its traceback that point into the student's files; the other calls still run.
"""
import importlib.util
import os
import sys

import torch

import helpers  # noqa: F401 -- loaded before any fork, so that a submission may import it
from grader import notebook
from grader.calls import MESSAGE_LIMIT, Runner
from grader.groups import BY_NAME
from helpers_lib.errors import headline

MODULE_NAME = "two_layer_net"


def import_submission(module_path):
    """Import the student's two_layer_net.py as `two_layer_net`, from its own folder."""
    folder = os.path.dirname(module_path)
    sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module




def run_notebook(notebook_path, workdir, timeout):
    """Execute the submitted notebook in `workdir` with a fresh kernel; returns (meta, arrays).

    Every cell runs (errors are kept as outputs, for the person grading); meta lists the cells
    that raised. The kernel talks over Unix sockets in `workdir` (the sandbox allows no TCP).
    """
    import nbformat

    executed = nbformat.read(notebook_path, as_version=4)
    client = notebook.client(executed, cwd=workdir, timeout=timeout, allow_errors=True,
                             over_ipc=True)
    meta = {"errors": {}}
    try:
        client.execute()
    except BaseException as error:  # noqa: BLE001 -- a dead kernel or a timeout is a finding too
        meta["errors"]["notebook"] = headline(error, str(error)[:MESSAGE_LIMIT])
    failed = []
    for index, cell in enumerate(executed.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                failed.append({"cell": index, "error": f"{output.get('ename')}: "
                                                       f"{str(output.get('evalue'))[:MESSAGE_LIMIT]}"})
    meta["failed_cells"] = failed
    data = nbformat.writes(executed).encode()
    return meta, {"notebook": torch.frombuffer(bytearray(data), dtype=torch.uint8)}


def run(group, module_path, meta, arrays, on_imported=None):
    """Import the submission and run one group; returns (meta, arrays) to send back.

    on_imported() is called once the import has finished, whether or not it raised, so that
    the supervisor can tell a hang at import from a hang in the tested function.
    """
    folder = os.path.dirname(os.path.abspath(module_path))
    torch.manual_seed(0)
    runner = Runner(None, folder)
    runner.module = runner.guarded("import", lambda: import_submission(module_path))
    if on_imported is not None:
        on_imported()
    if runner.module is not None:
        BY_NAME[group].run(runner, meta, arrays)
    return runner.meta, runner.arrays
