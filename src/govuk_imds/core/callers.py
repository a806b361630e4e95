"""Who called the endpoint, as a chain of processes, and whether an environment's ``deny_callers`` refuses them.

Pure: the daemon reads the processes (``daemon/peers_linux.py``, ``daemon/peers_macos.py``) and hands them here.
A process goes by several names, and a deny-list entry matches any of them:

- its command name (``comm``), first word: npm renames itself ``npm install``, ``npm run build``, ``npm exec``;
- its ``argv[0]``, first word, without the directory (and without a login shell's leading ``-``);
- its executable's file name (``exe``: ``node`` for npm, ``python3.11`` for pip);
- for an interpreter (node, python, ruby, ...), the script it runs, without directory or extension
  (``node .../yarn.js`` is ``yarn``, ``node .../npm-cli.js`` is ``npm``), or the module of ``python -m pip``.

An entry also matches a name that adds a version to it (``pip`` matches ``pip3`` and ``pip3.11``).

This is a guard against the common accident (a package manager's install script reaching for production), not a
security boundary: a process of the same user can detach from its parent, clear its environment or read the token
file. README ("Guard-rails") says so to the user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: Interpreters whose first non-option argument (or ``-m`` module) names the program really running.
_INTERPRETER = re.compile(r"(?:python|pypy|node|nodejs|bun|ruby|perl|php)(?:\d+(?:\.\d+)*)?")
#: Scripts whose file name is not the name people know them by.
_SCRIPT_ALIASES = {"npm-cli": "npm", "npx-cli": "npx"}
_INLINE_CODE = frozenset({"-c", "-e", "--eval", "-p", "--print"})
_VERSION_SUFFIX = re.compile(r"\d+(?:\.\d+)*")
#: Package managers that export ``npm_lifecycle_event`` to every script they run (npm, npx, yarn, pnpm).
NPM_FAMILY = frozenset({"npm", "npx", "yarn", "pnpm"})
#: Programs that end a chain: the init process or a per-user service manager.
_SERVICE_MANAGERS = frozenset({"systemd", "launchd", "init"})
#: How many processes a chain holds at most (the caller included).
MAX_CHAIN = 24
#: Why a caller is unknown when its connection closed first: nothing can find the process behind it then.
CLIENT_GONE = "the client had closed its connection before it could be looked up"


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    #: The kernel's short name for it (Linux ``comm``, 15 characters; macOS ``p_comm``).
    name: str
    #: The executable's path, or None where it cannot be read (another user's process, a kernel thread).
    exe: str | None
    argv: tuple[str, ...]
    #: Its working directory (which checkout a ``terraform apply`` ran in), None where it cannot be read.
    cwd: str | None = None

    def ends_chain(self) -> bool:
        """Stop walking up here: the init process, a service manager, or a login shell (``-bash``)."""
        return (
            self.pid <= 1
            or self.ppid <= 0
            or self.name in _SERVICE_MANAGERS
            or bool(self.argv and self.argv[0].startswith("-"))
        )

    def names(self) -> frozenset[str]:
        """Every name this process goes by (see the module docstring)."""
        found = {_first_word(self.name)}
        if self.argv:
            found.add(_basename(_first_word(self.argv[0])).lstrip("-"))
        if self.exe:
            found.add(_basename(self.exe))
        if any(_INTERPRETER.fullmatch(name) for name in found):
            script = _script(self.argv[1:])
            if script:
                found.add(_SCRIPT_ALIASES.get(script, script))
        found.discard("")
        return frozenset(found)


@dataclass(frozen=True)
class ClientSocket:
    """A client's end of a connection to us: its address and ours, and what the kernel said about it so far (on
    Linux the socket's inode and owner; on macOS nothing until the process scan)."""

    peer: tuple[str, int]
    local: tuple[str, int]
    inode: int | None = None
    uid: int | None = None


@dataclass(frozen=True, eq=False)
class Caller:
    """The process that called, its ancestors, and what could not be found out.

    Compared and hashed by identity: every request of a connection shares its one ``Caller``, and what is worked
    out from it (the verdict, the record's encoding) is cached by it cheaply.
    """

    uid: int | None = None
    #: The caller first, then its parent, up to a login shell or the service manager.
    chain: tuple[Process, ...] = ()
    #: ``npm_lifecycle_event`` in the caller's environment: it runs inside an npm, yarn or pnpm script.
    npm_script: str | None = None
    #: Why the caller is unknown or known only in part (None: found).
    problem: str | None = None

    @property
    def pid(self) -> int | None:
        return self.chain[0].pid if self.chain else None

    @property
    def known(self) -> bool:
        return bool(self.chain)


@dataclass(frozen=True)
class Denial:
    """Which deny-list entry matched, and in which process of the chain."""

    program: str
    process: Process | None
    because: str


def denied(caller: Caller, deny_callers: Iterable[str]) -> Denial | None:
    """The first process of the chain (the caller, then its ancestors) that one of ``deny_callers`` names."""
    entries = tuple(deny_callers)
    for process in caller.chain:
        for entry in entries:
            if any(_matches(name, entry) for name in process.names()):
                relation = "the calling process" if process is caller.chain[0] else "an ancestor of the caller"
                return Denial(entry, process, f"{relation}, pid {process.pid} {_shown(process)}")
    if caller.npm_script is not None:
        family = [entry for entry in entries if entry in NPM_FAMILY]
        if family:
            # npm, yarn and pnpm export this to every script they run; it survives a script that detached itself.
            return Denial(family[0], caller.chain[0] if caller.chain else None,
                          f"the caller runs inside a package script (npm_lifecycle_event={caller.npm_script})")
    return None


def refusal(environment: str, deny_callers: Iterable[str], caller: Caller, setting: str) -> str | None:
    """The 403's message when ``environment`` refuses this caller, else None. ``setting`` says where the list is
    written (the config file and table). A caller that cannot be identified is refused: see docs/design.md."""
    entries = tuple(deny_callers)
    if not entries:
        return None
    if not caller.known:
        return (
            f"credentials for {environment!r} are refused to a caller govuk-imds cannot identify "
            f"({caller.problem or 'unknown'}), because deny_callers is set in {setting}"
        )
    match = denied(caller, entries)
    if match is None:
        return None
    return (
        f"credentials for {environment!r} are refused to programs run by {match.program} ({match.because}): "
        f"{match.program!r} is in deny_callers in {setting}; run the tool outside {match.program}, or change that "
        "setting"
    )


def _shown(process: Process) -> str:
    return _first_word(process.name) or (process.argv[0] if process.argv else "?")


def _matches(name: str, entry: str) -> bool:
    return name == entry or (name.startswith(entry) and bool(_VERSION_SUFFIX.fullmatch(name[len(entry):])))


def _first_word(text: str) -> str:
    return text.split(" ", 1)[0]


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _script(arguments: tuple[str, ...]) -> str | None:
    """The program an interpreter runs: ``-m module``, or the first argument that is not an option."""
    for index, argument in enumerate(arguments):
        if argument in _INLINE_CODE:
            return None  # the program is the text that follows, not a file
        if argument == "-m" and index + 1 < len(arguments):
            return arguments[index + 1].split(".", 1)[0]
        if argument.startswith("-m") and len(argument) > 2:
            return argument[2:].split(".", 1)[0]
        if argument and not argument.startswith("-"):
            stem = _basename(argument)
            return stem.rsplit(".", 1)[0] if "." in stem else stem
    return None
