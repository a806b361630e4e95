"""Keep a process's memory to itself: no core dumps, and no debugger attach by other processes of the same user.

The daemon calls ``keep_memory_private`` before anything else (it holds MFA sessions and role credentials), and so
does every CLI command that touches a long-term key or an MFA session (add, import, unlock, rotate-key, keys,
remove, console), before it reads one: a core file written at a SIGQUIT, or a debugger attached by another
program running as the user, would otherwise hold the key.

- ``RLIMIT_CORE`` 0 (soft and hard, so a child cannot raise it back): no core file.
- Linux: ``PR_SET_DUMPABLE`` 0. The kernel then writes no core even if the limit is raised from outside
  (``prlimit --pid``), refuses ``ptrace`` attach and ``/proc/<pid>/mem`` to other processes of the same uid, and
  makes ``/proc/<pid>/`` root's. root is not kept out (SECURITY.md says so).
- macOS: ``PT_DENY_ATTACH``: debuggers (lldb, dtrace's pid provider) cannot attach.

Only the standard library (``resource``, ``ctypes``), nothing of ours: any layer may call it.
"""

from __future__ import annotations

import contextlib
import resource
import sys

PR_SET_DUMPABLE = 4
PT_DENY_ATTACH = 31


def keep_memory_private() -> None:
    """No core dumps, no ptrace attach; call it before the process reads a secret."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    elif sys.platform == "darwin":
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).ptrace(PT_DENY_ATTACH, 0, None, 0)
