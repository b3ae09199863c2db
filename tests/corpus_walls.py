"""Submissions that test the walls and the process model themselves, not the audit.

Each attack sits where the audit cannot decide the verdict (nn_predict, or a file next to the
module), so that the test it targets passes only if the wall is missing: a new program started,
a submission file imported by the standard library, a key kept in the kernel's keyring,
another submission's data found in the child's memory, a scratch folder filled without bound.
The entries are graded in one slot (--jobs 1), in the order of their names.
"""
import secrets

from grading_corpus import BASE, Entry, edit, fails, in_predict

SCAN = '''
import ctypes
import os


def count_in_memory(head, tail):
    """How many times head + tail lies in this process's memory (resident pages of the heap
    and of every mapping from 256 GiB below the C library up), found without /proc (Landlock hides
    it): mmap(MAP_FIXED_NOREPLACE) tells empty ranges, mincore mapped and resident pages,
    process_vm_readv reads them. head + tail never exists here as one string."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.mmap.restype = ctypes.c_void_p
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.process_vm_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong,
                                      ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    libc.process_vm_readv.restype = ctypes.c_ssize_t
    page, chunk = 4096, 1 << 20
    vec = (ctypes.c_ubyte * (chunk // page))()
    buf = bytearray(chunk)
    address = ctypes.addressof((ctypes.c_char * chunk).from_buffer(buf))

    class IoVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    local, remote = IoVec(address, 0), IoVec(0, 0)

    def empty(lo, size):
        got = libc.mmap(lo, size, 0, 0x22 | 0x100000, -1, 0)  # PRIVATE|ANONYMOUS|FIXED_NOREPLACE
        if got in (None, ctypes.c_void_p(-1).value):
            return False
        libc.munmap(got, size)
        return got == lo

    # Where Linux puts memory: the brk heap after the program; the mappings (libraries,
    # Python's arenas, large buffers) below the C library; the stack at the top.
    libc.sbrk.restype = ctypes.c_void_p
    heap_end = libc.sbrk(0) // page * page
    mappings = ctypes.cast(libc.mincore, ctypes.c_void_p).value // page * page
    mapped, regions = [], [(max(1 << 16, heap_end - (16 << 30)), heap_end + page),
                           (mappings - (256 << 30), 1 << 47)]
    while regions:
        lo, hi = regions.pop()
        if hi - lo <= chunk and libc.mincore(lo, hi - lo, vec) == 0:
            mapped.append((lo, hi))
        elif hi - lo > page and not empty(lo, hi - lo):
            mid = (lo + (hi - lo) // 2) // page * page
            regions += [(mid, hi), (lo, mid)]
    found = 0
    for lo, hi in mapped:
        libc.mincore(lo, hi - lo, vec)
        resident = [i for i in range((hi - lo) // page) if vec[i] & 1]
        runs = []
        for i in resident:
            if runs and runs[-1][1] == i:
                runs[-1][1] = i + 1
            else:
                runs.append([i, i + 1])
        for start, end in runs:
            remote.base, remote.len = lo + start * page, (end - start) * page
            local.len = remote.len
            got = libc.process_vm_readv(os.getpid(), ctypes.byref(local), 1,
                                        ctypes.byref(remote), 1, 0)
            at = buf.find(head, 0, max(got, 0))
            while at >= 0:
                found += buf[at + len(head):at + len(head) + len(tail)] == tail
                at = buf.find(head, at + 1, got)
    return found
'''

# The program: a fresh Python where the sandbox uid may run it, else the system's dynamic
# loader (which any user may run, and which today's Landlock rules allow).
PROGRAM = ("import os, sys\n"
           "program = [sys.executable, '-c', 'pass'] if os.access(sys.executable, os.X_OK) "
           "else ['/lib64/ld-linux-x86-64.so.2', '--version']\n")
START_PROGRAM = {  # how a child starts a program; `ran` is True when it ran to success
    "posix_spawn": "import posix\n"
                   "pid = posix.posix_spawn(program[0], program, {})\n"
                   "ran = posix.waitpid(pid, 0)[1] == 0",
    "posix_system": "import posix, shlex\n"
                    "status = posix.system(shlex.join(program))\n"
                    "if status != 0:\n"
                    "    raise OSError(f'could not start the program (system() returned {status})')\n"
                    "ran = True",
    "fork_exec": "pid = os.fork()\n"
                 "if pid == 0:\n"
                 "    os.execv(program[0], program)\n"
                 "ran = os.waitpid(pid, 0)[1] == 0",
    "multiprocessing": "import multiprocessing\n"
                       "try:\n"
                       "    from multiprocessing import popen_fork  # noqa: F401\n"
                       "except ImportError:  # a Python the sandbox uid cannot read: no route here\n"
                       "    raise OSError('could not start the program (multiprocessing cannot load)')\n"
                       "process = multiprocessing.get_context('fork').Process(target=os.execv, "
                       "args=(program[0], program))\n"
                       "process.start()\n"
                       "process.join()\n"
                       "ran = process.exitcode == 0",
}
CHECK_RAN = "if not ran:\n    raise RuntimeError('the program did not run')\n"
REFUSED = r"Operation not permitted|could not start the program"

KEYRING = '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
SYS_ADD_KEY, SYS_KEYCTL, KEY_SPEC_USER_KEYRING, KEYCTL_SEARCH, KEYCTL_READ = 248, 250, -4, 10, 11
'''


def key_reader(descriptions):
    """nn_predict raises with what it read from the uid's keyring under `descriptions`."""
    return in_predict(KEYRING + f'''
for description in {descriptions!r}:
    key = libc.syscall(SYS_KEYCTL, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, b"user",
                       description.encode(), 0)
    if key > 0:
        value = ctypes.create_string_buffer(64)
        libc.syscall(SYS_KEYCTL, KEYCTL_READ, key, value, 64)
        raise RuntimeError("read the key " + description + ": " + value.value.decode())
''')


def entries(marker_head, marker_tail, namespaces=True):
    """The walls corpus. `marker_head + marker_tail`: a string only the first entry holds."""
    marker = marker_head + marker_tail
    out = []
    out.append(Entry(
        "w01_marker", "holds a unique string in its output and its error message",
        source=in_predict(f'''
for _ in range(200):
    print({marker!r})
raise RuntimeError({marker!r})
'''), expect=fails(["predict"], "RuntimeError")))
    control_head, control_tail = "control-" + secrets.token_hex(6), secrets.token_hex(6)
    out.append(Entry(
        "w02_scan", "counts the first entry's string in its own memory (and a control string it "
                    "makes itself, to show that the scan works)",
        source=edit("import random\n", "import random\n" + SCAN, in_predict(f'''
control = ["".join([{control_head!r}, {control_tail!r}])]
found = count_in_memory({marker_head!r}.encode(), {marker_tail!r}.encode())
seen = count_in_memory({control_head!r}.encode(), {control_tail!r}.encode())
raise RuntimeError(f"marker copies found: {{found}}; control copies: {{seen}}")
''')), expect=fails(["predict"], r"marker copies found: 0; control copies: [1-9]")))
    for i, (name, code) in enumerate(START_PROGRAM.items()):
        out.append(Entry(
            f"w{3 + i:02d}_{name}", f"starts a program with {name}: a test child may not",
            source=in_predict(PROGRAM + code + "\n" + CHECK_RAN),
            expect=fails(["predict"], REFUSED)))
    out.append(Entry(
        "w07_keyring_writer", "stores a value in its uid's kernel keyring",
        source=in_predict(KEYRING + '''
key = libc.syscall(SYS_ADD_KEY, b"user", b"two-layer-net-leak", b"hidden 0.25", 11,
                   KEY_SPEC_USER_KEYRING)
if key < 0:
    raise OSError(ctypes.get_errno(), "add_key: " + __import__("os").strerror(ctypes.get_errno()))
'''), expect=fails(["predict"], "Operation not permitted")))
    out.append(Entry("w08_keyring_reader", "reads what an earlier submission of its slot stored",
                     source=key_reader(["two-layer-net-leak"])))
    out.append(Entry(
        "w09_shadows_stdlib", "a hmac.py the standard library's secrets would import",
        kind="folder", files={
            # secrets imports hmac, tty termios, wave chunk. Where the sandbox uid cannot read
            # the Python installation (no namespaces), only what the grader preloads imports.
            "two_layer_net.py": "import secrets\n" + in_predict("""
try:
    import tty
    import wave
except ImportError as error:
    if "shadowed" in str(error):
        raise
"""),
            **{f"{name}.py": f"raise ImportError('the submission shadowed {name}')\n"
               for name in ("hmac", "termios", "chunk")}}))
    out.append(Entry(
        "w10_own_linear_classifier", "its own linear_classifier.py still wins over the stand-in",
        kind="folder", files={
            "two_layer_net.py": edit("def nn_predict(params, loss_func, X):\n",
                                     "def nn_predict(params, loss_func, X):\n"
                                     "    import linear_classifier\n"
                                     "    assert linear_classifier.OWN, 'not my module'\n"),
            "linear_classifier.py": "import torch\n\nOWN = True\n\n\n"
                                    "def sample_batch(X, y, num_train, batch_size):\n"
                                    "    idx = torch.randint(num_train, (batch_size,))\n"
                                    "    return X[idx], y[idx]\n"}))
    out.append(Entry(
        "w11_fills_one_file", "writes one file until the system says no",
        source=in_predict('''
block = b"x" * (1 << 20)
with open("fill", "wb") as f:
    while True:
        f.write(block)
'''), expect=fails(["predict"], r"No space left on device|File too large|SIGXFSZ")))
    if namespaces:  # without them, only RLIMIT_FSIZE bounds a file, nothing bounds the count
        out.append(Entry(
            "w12_fills_many_files", "writes files until the system says no",
            source=in_predict('''
block = b"x" * (1 << 20)
for i in range(100000):
    with open(f"fill{i}", "wb") as f:
        f.write(block[:(1 << 20) if i < 1000 else 1])
'''), expect=fails(["predict"], r"No space left on device")))
    out.append(Entry("w13_correct_after", "an honest submission graded after them all",
                     source=BASE))
    return out

