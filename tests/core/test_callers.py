"""The names a process goes by, where a chain ends, and deny_callers' verdicts (pure; the real processes are in
tests/e2e/test_guardrails.py)."""

from __future__ import annotations

import pytest

from govuk_imds.core.callers import Caller, Process, denied, refusal
from govuk_imds.core.guards import RECOMMENDED_DENY_CALLERS

SETTING = "[environments.production] of /home/u/.config/govuk-imds/config.toml"


def process(name: str, argv: tuple[str, ...], exe: str | None = None, pid: int = 100, ppid: int = 50) -> Process:
    return Process(pid=pid, ppid=ppid, name=name, exe=exe, argv=argv)


@pytest.mark.parametrize(
    ("seen", "names"),
    [
        # npm renames itself after starting: comm and argv[0] become "npm install"
        (process("npm install", ("npm install", "", ""), "/usr/bin/node"), {"npm", "node"}),
        # before the rename, or a version that does not: the script's name
        (process("node", ("node", "/usr/lib/node_modules/npm/bin/npm-cli.js", "ci"), "/usr/bin/node"),
         {"node", "npm"}),
        (process("node", ("/usr/bin/node", "/usr/share/yarn/bin/yarn.js", "add", "x"), "/usr/bin/node"),
         {"node", "yarn"}),
        # a Python console script run through its #! line: comm is the script's name
        (process("pip", ("/usr/bin/python3", "/home/u/.local/bin/pip", "install", "x"), "/usr/bin/python3.11"),
         {"pip", "python3", "python3.11"}),
        (process("python3", ("python3", "-m", "pip", "install", "x"), "/usr/bin/python3.11"),
         {"python3", "python3.11", "pip"}),
        (process("python3", ("python3", "-u", "tools/deploy.py"), "/usr/bin/python3.11"),
         {"python3", "python3.11", "deploy"}),
        (process("python3", ("python3", "-c", "import go"), "/usr/bin/python3.11"), {"python3", "python3.11"}),
        # a login shell's argv[0] starts with "-"
        (process("bash", ("-bash",), "/usr/bin/bash"), {"bash"}),
        # only interpreters run a script: `make go` is make, not go
        (process("make", ("make", "go"), "/usr/bin/make"), {"make"}),
        (process("terraform", ("terraform", "plan"), "/usr/local/bin/terraform"), {"terraform"}),
    ],
)
def test_a_process_goes_by_its_name_its_argv0_its_executable_and_its_script(seen: Process,
                                                                              names: set[str]) -> None:
    assert seen.names() == names


def chain(*processes: Process) -> Caller:
    return Caller(uid=1000, chain=processes)


CURL = process("curl", ("curl", "http://127.0.0.1:9911/v1/credentials/production"), "/usr/bin/curl", pid=300,
               ppid=200)
SH = process("sh", ("sh", "-c", "curl ..."), "/usr/bin/dash", pid=200, ppid=100)
NPM = process("npm install", ("npm install",), "/usr/bin/node", pid=100, ppid=50)
BASH = process("bash", ("-bash",), "/usr/bin/bash", pid=50, ppid=1)


def test_a_caller_under_npm_is_denied_naming_the_program_and_the_ancestor() -> None:
    match = denied(chain(CURL, SH, NPM, BASH), RECOMMENDED_DENY_CALLERS)
    assert match is not None
    assert (match.program, match.process) == ("npm", NPM)
    message = refusal("production", RECOMMENDED_DENY_CALLERS, chain(CURL, SH, NPM, BASH), SETTING)
    assert message == (
        "credentials for 'production' are refused to programs run by npm (an ancestor of the caller, pid 100 npm): "
        f"'npm' is in deny_callers in {SETTING}; run the tool outside npm, or change that setting"
    )


def test_the_denied_program_itself_is_denied() -> None:
    pip = process("pip", ("/usr/bin/python3", "/usr/bin/pip", "download", "x"), "/usr/bin/python3.11")
    match = denied(chain(pip, BASH), ["pip"])
    assert match is not None and match.because.startswith("the calling process, pid 100")


def test_a_versioned_name_matches_its_entry_but_a_longer_word_does_not() -> None:
    pip3 = process("pip3", ("pip3", "install"), "/usr/bin/python3.11")
    gofmt = process("gofmt", ("gofmt", "-l", "."), "/usr/local/go/bin/gofmt")
    assert denied(chain(pip3), ["pip"]) is not None
    assert denied(chain(gofmt), ["go"]) is None


def test_a_terraform_caller_is_not_denied() -> None:
    terraform = process("terraform", ("terraform", "plan"), "/usr/local/bin/terraform", pid=300, ppid=50)
    assert refusal("production", RECOMMENDED_DENY_CALLERS, chain(terraform, BASH), SETTING) is None


def test_a_script_that_detached_from_npm_is_still_denied_by_its_environment() -> None:
    orphan = chain(process("curl", ("curl", "x"), "/usr/bin/curl", ppid=1))
    detached = Caller(uid=1000, chain=orphan.chain, npm_script="postinstall")
    assert denied(orphan, ["npm"]) is None
    match = denied(detached, ["npm", "pip"])
    assert match is not None
    assert match.because == "the caller runs inside a package script (npm_lifecycle_event=postinstall)"
    assert denied(detached, ["pip"]) is None  # only the npm family exports it


def test_an_unidentified_caller_is_refused_where_deny_callers_is_set_and_served_elsewhere() -> None:
    unknown = Caller(problem="the client had closed its connection before it could be looked up")
    message = refusal("production", ["npm"], unknown, SETTING)
    assert message == (
        "credentials for 'production' are refused to a caller govuk-imds cannot identify (the client had closed "
        f"its connection before it could be looked up), because deny_callers is set in {SETTING}"
    )
    assert refusal("staging", [], unknown, SETTING) is None


def test_a_chain_ends_at_a_login_shell_the_service_manager_or_init() -> None:
    assert BASH.ends_chain()
    assert process("systemd", ("/lib/systemd/systemd", "--user"), pid=900, ppid=1).ends_chain()
    assert process("launchd", ("/sbin/launchd",), pid=1, ppid=0).ends_chain()
    assert not SH.ends_chain()
