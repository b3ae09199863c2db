"""The kit's files that leave the kit folder: into a notebook's work folder, the student release
and the Gradescope autograder. Each list is said once, here; the three take their files from it.
"""
import glob
import os

from grader import KIT_ROOT

# What a notebook imports beside the student's two_layer_net.py: the helpers, their package and
# the toy fixtures (helpers.load_toy_reference).
NOTEBOOK_SUPPORT = ["helpers.py", "helpers_lib/*.py", "tests/fixtures/*.json"]
# What `python grade.py` runs on: its command line, the pinned requirements and the grader.
GRADER = ["grade.py", "requirements.txt", "grader/*.py", "grader/groups/*.py"]
# What the student release ships in place of a kit file: {path in the release: the kit's file
# shipped there}. The kit's oracle computes every expected value by autograd; the release's
# replays the values recorded when it was built (grader/release.py).
RELEASE_SUBSTITUTES = {"helpers_lib/oracle.py": "release/oracle.py"}


def kit_files(patterns, kit=KIT_ROOT):
    """Relative paths ('/'-separated) of the kit's files that the glob `patterns` name, in the
    patterns' order (each pattern's files sorted); FileNotFoundError for a pattern that names
    none, with the pattern and the folder looked in."""
    files = []
    for pattern in patterns:
        found = sorted(p.replace(os.sep, "/") for p in glob.glob(pattern, root_dir=kit)
                       if os.path.isfile(os.path.join(kit, p)))
        if not found:
            raise FileNotFoundError(f"the kit has no '{pattern}' (looked in {kit})")
        files += found
    return files
