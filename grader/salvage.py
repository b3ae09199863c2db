"""Grading what parses: a two_layer_net.py with a syntax error in code the rubric never calls.

Real solutions written on Colab (Python 3.12) use syntax the grader's Python may not parse
(an f-string whose replacement field spans lines parses only on 3.12 and later), most often in
find_best_net's tuning loop. One such line made the whole module unimportable: 0/100 for a
correct backward pass, although code the graded functions cannot reach is never a reason to
take points. `salvage` blanks the top-level function or class that holds the error and puts a
one-line stub there that raises SyntaxError, naming the line, when anything calls it; line
numbers stay as written. The four graded functions are never stubbed (an error in one of them
stays the import error it is), nor is module-level code (it runs at import).

The grader's process audits and stages the salvaged text, so what is audited is what runs.
"""
import re
import sys

from grader import audit

MODULE = "two_layer_net.py"
MAX_STUBS = 10  # errors in as many blocks; more than that is not code written for a newer Python
TOP_LEVEL_DEF = re.compile(r"(?:async\s+def|def|class)\s+([A-Za-z_]\w*)")
CONTINUED = (" ", "\t", "#", "\n", "\r", "\f", ")", "]", "}")  # a line that does not end a block
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def salvage(files):
    """({name: bytes} to audit and stage, [notes]): `files` unchanged when two_layer_net.py
    parses (or cannot be salvaged); else its copy with each unparsable top-level function or
    class of code the rubric does not call replaced by a stub, and a note for each."""
    source = files.get(MODULE)
    try:
        text = source.decode("utf-8") if source is not None else None
    except UnicodeDecodeError:
        text = None
    notes = []
    for _ in range(MAX_STUBS + 1):
        if text is None:
            return files, []
        error = _syntax_error(text)
        if error is None:
            return ({**files, MODULE: text.encode("utf-8")}, notes) if notes else (files, [])
        text, note = _stubbed(text, error)
        notes.append(note)
    return files, []


def as_submitted(files):
    """Why two_layer_net.py as submitted does not import here ("SyntaxError: ..."), for what runs
    it unsalvaged (the notebook's kernel imports the file the student wrote); "" when it parses."""
    try:
        error = _syntax_error(files[MODULE].decode("utf-8"))
    except (KeyError, UnicodeDecodeError):
        return ""
    if error is None:
        return ""
    return f"SyntaxError: {MODULE}:{error.lineno} does not parse on Python {PYTHON} ({error.msg})"


def _syntax_error(text):
    """The SyntaxError compiling `text` raises, or None; compiling runs none of it."""
    try:
        with audit._PARSING:
            compile(text, MODULE, "exec", dont_inherit=True)
    except SyntaxError as error:
        return error
    except (ValueError, RecursionError, MemoryError, SystemError) as error:
        return SyntaxError(str(error))  # no line: not salvaged
    return None


def _stubbed(text, error):
    """(text with the block holding `error` stubbed, note), or (None, None) when the error is
    not inside a top-level function or class the rubric does not call."""
    lines = text.splitlines(keepends=True)
    at = (error.lineno or 0) - 1
    if not 0 <= at < len(lines):
        return None, None
    start = next((i for i in range(at, -1, -1) if TOP_LEVEL_DEF.match(lines[i])), None)
    if start is None:
        return None, None
    name = TOP_LEVEL_DEF.match(lines[start]).group(1)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(CONTINUED)),
               len(lines))
    if name in audit.GRADED or at >= end:
        return None, None
    while start > 0 and lines[start - 1].startswith("@"):
        start -= 1
    why = (f"{name} ({MODULE} line {at + 1}) does not parse on Python {PYTHON}: {error.msg}; "
           "the grader left it out")
    lines[start:end] = [f"def {name}(*args, **kwargs): raise SyntaxError({why!r})\n"] + \
        ["\n"] * (end - start - 1)
    return "".join(lines), (f"{name} left out: {MODULE}:{at + 1} does not parse on Python "
                            f"{PYTHON} ({error.msg}); the rubric never calls it, the rest is graded")
