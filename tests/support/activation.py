"""Socket activation as a service manager does it, for tests that hand a real listening socket to a process.

``LAUNCHER`` (run with ``python -c``) moves the descriptors named in argv[1] to 3, 4, ..., sets ``LISTEN_FDS``,
``LISTEN_FDNAMES`` and ``LISTEN_PID`` and execs argv[3:]. argv[2]: "self" sets LISTEN_PID to the launcher's own pid,
which the exec keeps (the process is then the one the sockets are for), "parent" to another process's.
``serving`` runs a service and stops it as a manager would; ``activated`` does so with a socket that the test itself
holds, so the port stays held while the daemon stops and starts again, as a systemd socket unit holds it.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

LAUNCHER = """
import fcntl, os, sys
sources = [int(part) for part in sys.argv[1].split(",") if part]
high = [fcntl.fcntl(source, fcntl.F_DUPFD, 100) for source in sources]
for source in sources:
    os.close(source)
for index, descriptor in enumerate(high):
    os.dup2(descriptor, 3 + index, inheritable=True)
    os.close(descriptor)
os.environ["LISTEN_FDS"] = str(len(sources))
os.environ["LISTEN_FDNAMES"] = ":".join(["govuk-imds.socket"] * len(sources))
os.environ["LISTEN_PID"] = str(os.getpid() if sys.argv[2] == "self" else os.getppid())
os.execv(sys.argv[3], sys.argv[3:])
"""


def activated(descriptor: int, argv: Sequence[str], environment: dict[str, str],
              log: Path) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """Run ``argv`` with the listening socket ``descriptor`` passed as systemd passes it; SIGTERM it at the end."""
    command = [sys.executable, "-c", LAUNCHER, str(descriptor), "self", *argv]
    return serving(command, environment, log, pass_fds=(descriptor,))


@contextlib.contextmanager
def serving(command: list[str], environment: dict[str, str], log: Path,
            pass_fds: Sequence[int] = ()) -> Iterator[subprocess.Popen[bytes]]:
    """Run a service as a service manager would, its output appended to ``log``; SIGTERM it at the end."""
    with log.open("ab") as output:
        process = subprocess.Popen(command, env=environment, pass_fds=pass_fds, stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=output)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
