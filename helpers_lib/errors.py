"""An exception in a student's words, on one line: `Type: message (file, line N)`.

Three places tell a student which exception their code raised and where: the notebook's checks
(`describe_error`, here), the grader's child (grader/child.py) and `grade.py submit`
(grader/submit.py). They build their lines from `headline` and `place`, so all three read alike.
"""
import os
import traceback


def headline(error, message=None):
    """`Type: message`, as Python's traceback ends; `message` replaces str(error) (cut, or
    with a note)."""
    return f"{type(error).__name__}: {error if message is None else message}"


def place(file, line, function=None):
    """`(file, line N)`, or `(file, line N, in function)`: where, after a headline."""
    return f"({file}, line {line}" + (f", in {function}" if function else "") + ")"


def describe_error(error):
    """One line for an exception: its type, message and where it was raised (no traceback).

    Returns:
        e.g. "NotImplementedError: compute the scores (two_layer_net.py, line 47, in
        nn_forward_pass)"; the place is the innermost frame outside torch's own code.
    """
    import torch

    if getattr(error, "described_plainly", False):
        return str(error)
    text = headline(error).strip()
    if isinstance(error, SyntaxError) and error.filename:
        return f"{headline(error, error.msg)} {place(os.path.basename(error.filename), error.lineno)}"
    torch_dir = os.path.dirname(torch.__file__)
    frames = traceback.extract_tb(error.__traceback__)
    outside_torch = [f for f in frames if not f.filename.startswith(torch_dir)]
    if not (outside_torch or frames):
        return text
    frame = (outside_torch or frames)[-1]
    if "ipykernel_" in frame.filename or frame.filename.startswith("<"):
        return f"{text} {place('this cell', frame.lineno)}"
    return f"{text} {place(os.path.basename(frame.filename), frame.lineno, frame.name)}"
