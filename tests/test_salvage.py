"""grader.salvage: code the rubric never calls that this Python cannot parse is left out, and
nothing else is. The corpus (`py312_syntax_in_tuning_code`, `syntax_error_py312*`) shows the
grades; these tests pin which lines are stubbed."""
import sys

import pytest

from grader import salvage

NEWER_SYNTAX = 'f"{\n        x}"'  # a replacement field across lines: Python 3.12 and later

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 12),
                                reason="this Python parses the syntax these tests rely on")

GRADED = "def nn_forward_pass(params, X):\n    return X, X\n"


def salvaged(text):
    files, notes = salvage.salvage({"two_layer_net.py": text.encode(), "other.py": b"x = ("})
    assert files["other.py"] == b"x = (", "only two_layer_net.py is ever salvaged"
    return files["two_layer_net.py"].decode(), notes


def test_a_tuning_function_that_does_not_parse_becomes_a_stub_and_keeps_every_line_number():
    text = (GRADED + "\n\n@staticmethod\ndef find_best_net(\n    data,\n):\n"
            f"    return {NEWER_SYNTAX}\n\n\nLATER = 1\n")
    out, notes = salvaged(text)
    assert out.count("\n") == text.count("\n")
    assert out.startswith(GRADED) and out.endswith("\n\n\nLATER = 1\n")
    assert "def find_best_net(*args, **kwargs): raise SyntaxError(" in out
    assert "@staticmethod" not in out, "a decorator goes with its function"
    assert len(notes) == 1 and notes[0].startswith("find_best_net left out: two_layer_net.py:9 ")
    namespace = {}
    exec(compile(out, "two_layer_net.py", "exec"), namespace)
    with pytest.raises(SyntaxError, match=r"find_best_net \(two_layer_net.py line 9\) does not "
                                          r"parse on Python 3\.\d+"):
        namespace["find_best_net"]()


def test_an_error_in_a_graded_function_or_at_module_level_is_left_as_it_is():
    for text in (f"def nn_train(params):\n    return {NEWER_SYNTAX}\n",
                 GRADED + f"NOTE = {NEWER_SYNTAX}\n",
                 GRADED + "def f(:\n    pass\n" * (salvage.MAX_STUBS + 1)):
        files, notes = salvage.salvage({"two_layer_net.py": text.encode()})
        assert files["two_layer_net.py"] == text.encode() and notes == []


def test_a_parsing_module_is_returned_untouched():
    files = {"two_layer_net.py": GRADED.encode()}
    assert salvage.salvage(files) == (files, [])


def test_as_submitted_names_the_error_the_unsalvaged_file_raises():
    """The notebook's kernel imports the file as written: it is told the original error."""
    text = GRADED + "\n\ndef broken(:\n    pass\n"
    said = salvage.as_submitted({"two_layer_net.py": text.encode()})
    assert said.startswith("SyntaxError: two_layer_net.py:5 does not parse on Python"), said
    assert salvage.as_submitted({"two_layer_net.py": GRADED.encode()}) == ""
