"""A seccomp filter: system calls a child may not make at all, whatever code it runs.

Installed by the child (grader.child) as its last wall; the kernel keeps it for the child and
every process the child starts, across exec, and nothing can lift it. The filter is a small
classic-BPF program built here with ctypes (no libseccomp needed):

- every child: no kernel keyring (`add_key`, `request_key`, `keyctl`). A keyring belongs to a
  uid, not to a process: a key one submission stored would outlive it and wait for the next
  submission of the same sandbox uid (and for later batches). No other wall covers it.
- a test child, in addition: no new program (`execve`, `execveat`) and no new process
  (`fork`, `vfork`, a `clone` without CLONE_THREAD; `clone3` answers ENOSYS, so that the C
  library falls back to `clone`, whose flags the filter can read). Threads stay allowed. A
  process the child starts would run code that the child's own watch never sees; a notebook's
  child keeps both, to start its kernel.

A call the filter refuses fails with EPERM (ENOSYS for clone3), as a refused call does in a
container; a system call of another ABI (32-bit, x32) is refused whole. `available()` is False
off Linux or on a machine whose system-call numbers are not listed here; the walls then do
without it, and README's "What the grader guarantees" says what that loses.
"""
import ctypes
import errno
import os
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
CLONE_THREAD = 0x00010000

# BPF opcodes: ld word absolute, jump-if-equal / -greater-or-equal / -bits-set (constant), return.
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian).
_NR, _ARCH, _ARG0_LOW = 0, 4, 16

ARCHES = {  # machine: (AUDIT_ARCH_*, system-call numbers, lowest number of a foreign ABI)
    "x86_64": (0xC000003E, {"add_key": 248, "request_key": 249, "keyctl": 250, "execve": 59,
                            "execveat": 322, "fork": 57, "vfork": 58, "clone": 56, "clone3": 435},
               0x40000000),  # __X32_SYSCALL_BIT
    "aarch64": (0xC00000B7, {"add_key": 217, "request_key": 218, "keyctl": 219, "execve": 221,
                             "execveat": 281, "clone": 220, "clone3": 435}, None),
}
KEYRING = ("add_key", "request_key", "keyctl")
NEW_PROGRAMS = ("execve", "execveat", "fork", "vfork")

_libc = ctypes.CDLL(None, use_errno=True)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


class SeccompError(OSError):
    """The filter could not be installed; the child must not run the submission."""


def available():
    return sys.platform.startswith("linux") and os.uname().machine in ARCHES


def program(no_new_processes):
    """The filter's bytes for this machine (see the module docstring)."""
    arch, numbers, foreign = ARCHES[os.uname().machine]
    refused = [numbers[n] for n in KEYRING]
    if no_new_processes:
        refused += [numbers[n] for n in NEW_PROGRAMS if n in numbers]
    # (opcode, k, jump if true, jump if false): a jump names a label, None is the next one.
    code = [(_LD_W_ABS, _ARCH, None, None), (_JEQ_K, arch, None, "deny"),
            (_LD_W_ABS, _NR, None, None)]
    if foreign is not None:
        code.append((_JGE_K, foreign, "deny", None))
    code += [(_JEQ_K, number, "deny", None) for number in refused]
    if no_new_processes:
        code += [(_JEQ_K, numbers["clone3"], "nosys", None),
                 (_JEQ_K, numbers["clone"], None, "allow"),
                 (_LD_W_ABS, _ARG0_LOW, None, None),  # clone's flags: a thread may be made
                 (_JSET_K, CLONE_THREAD, "allow", "deny")]
    labels = {"allow": len(code), "deny": len(code) + 1, "nosys": len(code) + 2}
    code += [(_RET_K, SECCOMP_RET_ALLOW, None, None),
             (_RET_K, SECCOMP_RET_ERRNO | errno.EPERM, None, None),
             (_RET_K, SECCOMP_RET_ERRNO | errno.ENOSYS, None, None)]

    def offset(label, at):
        return 0 if label is None else labels[label] - at - 1

    return b"".join(struct.pack("<HBBI", op, offset(jt, i), offset(jf, i), k)
                    for i, (op, k, jt, jf) in enumerate(code))


def install(no_new_processes):
    """Refuse the keyring (and, for a test child, new programs and processes) from now on."""
    code = program(no_new_processes)
    buffer = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buffer, ctypes.c_char_p))
    for option, arg, pointer in ((PR_SET_NO_NEW_PRIVS, 1, None),
                                 (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog))):
        if _libc.prctl(option, ctypes.c_ulong(arg), pointer, 0, 0) != 0:
            err = ctypes.get_errno()
            raise SeccompError(err, f"prctl({option}): {os.strerror(err)}")
