"""Real AWS clients in subprocesses, each given only what `govuk-imds env --json` prints (plus PATH and HOME).

* ``aws(...)``: the aws CLI from the venv.
* ``boto3_whoami(...)`` / ``node_whoami(...)``: one sts:GetCallerIdentity through boto3's default chain, or through
  the AWS SDK for JavaScript v3 (its default chain, ``fromHttp`` or ``fromContainerMetadata``); each prints one
  JSON line describing the outcome, or the error exactly as the SDK worded it.
* ``crt_command`` / ``arrow_command`` / ``objects_command`` / ``node_v2_command``: clients from other SDK families
  (the AWS Common Runtime, the AWS SDK for C++ in pyarrow, Rust's object_store in obstore, the JS SDK v2), each
  printing one JSON line; the native ones run with ``native_env``.
* ``LongLived``: a program that keeps running and makes one round of calls per line it reads, so a test can change
  the world between rounds (rotate credentials, rotate the token) while no fetch is in flight.

Every client runs behind a network guard (py/site/sitecustomize.py, js/guard.mjs) that refuses and reports any
connection that would leave loopback, and records what the SDK hides (retried fetches, HTTP statuses).
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.support.world import BIN, World, env_json

HERE = Path(__file__).parent
JS = HERE / "js"
PY = HERE / "py"
GUARD = PY / "site"
TIMEOUT = 60


def client_env(world: World, name: str, **extra: str) -> dict[str, str]:
    """What a shell has after `eval "$(govuk-imds env NAME)"` in a clean login: env's variables, PATH, HOME."""
    environment = world.client_environment(name, env_json(world, name))
    environment.update(extra)
    return environment


def guarded(environment: dict[str, str]) -> dict[str, str]:
    """The same environment, with the network guard loaded into any Python program started with it."""
    return {**environment, "PYTHONPATH": str(GUARD)}


def aws_command(sts_url: str, *args: str) -> list[str]:
    return [str(BIN / "aws"), "sts", "get-caller-identity", "--endpoint-url", sts_url, "--output", "json", *args]


def aws(world: World, environment: dict[str, str], *args: str) -> Outcome:
    return run(aws_command(world.sts.url, *args), environment)


def boto3_command(sts_url: str, calls: int = 1) -> list[str]:
    return [sys.executable, str(PY / "whoami.py"), sts_url, str(calls)]


def native_env(environment: dict[str, str], closed_port: int) -> dict[str, str]:
    """For clients whose sockets the Python guard cannot see (C, C++, Rust): no instance metadata service at all.

    pyarrow asks 169.254.169.254 even when the endpoint answers, unless AWS_EC2_METADATA_DISABLED is set; obstore
    ignores that variable and uses AWS_METADATA_ENDPOINT instead: both point nowhere but a closed loopback port."""
    return {**environment, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_METADATA_ENDPOINT": f"http://127.0.0.1:{closed_port}"}


def crt_command(sts_url: str, region: str) -> list[str]:
    return [sys.executable, str(PY / "crt.py"), sts_url, region]


def arrow_command(s3_url: str, region: str) -> list[str]:
    return [sys.executable, str(PY / "arrow.py"), s3_url, region]


def objects_command(s3_url: str, region: str, bucket: str) -> list[str]:
    return [sys.executable, str(PY / "objects.py"), s3_url, region, bucket]


def node_v2_command(sts_url: str) -> list[str]:
    return ["node", str(JS / "whoami_v2.mjs"), "--endpoint", sts_url]


def node_command(sts_url: str, provider: str = "default", max_retries: int | None = None) -> list[str]:
    command = ["node", str(JS / "whoami.mjs"), "--endpoint", sts_url, "--provider", provider]
    if max_retries is not None:
        command += ["--max-retries", str(max_retries)]
    return command


class Outcome:
    """A finished client: exit status, stdout, stderr (the guard's reports) and, from our scripts, JSON answers."""

    def __init__(self, process: subprocess.CompletedProcess[str]) -> None:
        self.returncode = process.returncode
        self.stdout = process.stdout
        self.stderr = process.stderr

    @property
    def answers(self) -> list[dict[str, Any]]:
        """The JSON lines our client scripts print, one per call."""
        lines = [line for line in self.stdout.splitlines() if line.startswith("{") and line.endswith("}")]
        assert lines, f"no answer (exit {self.returncode}): {self.stdout}\n{self.stderr}"
        return [json.loads(line) for line in lines]

    @property
    def last(self) -> dict[str, Any]:
        return self.answers[-1]

    def __repr__(self) -> str:
        return f"Outcome(exit {self.returncode}, stdout={self.stdout[-3000:]!r}, stderr={self.stderr[-2000:]!r})"


def run(command: list[str], environment: dict[str, str]) -> Outcome:
    return Outcome(subprocess.run(command, env=guarded(environment), capture_output=True, text=True,
                                  timeout=TIMEOUT, check=False))


def run_together(commands: dict[str, tuple[list[str], dict[str, str]]]) -> dict[str, Outcome]:
    """Several clients at once: the failing paths spend ~3 s each in the SDKs' own retries."""
    started = {
        key: subprocess.Popen(command, env=guarded(environment), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
        for key, (command, environment) in commands.items()
    }
    outcomes = {}
    try:
        for key, process in started.items():
            stdout, stderr = process.communicate(timeout=TIMEOUT)
            outcomes[key] = Outcome(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait(5)
    return outcomes


def boto3_whoami(world: World, environment: dict[str, str], calls: int = 1) -> Outcome:
    return run(boto3_command(world.sts.url, calls), environment)


def node_whoami(world: World, environment: dict[str, str], provider: str = "default",
                max_retries: int | None = None) -> Outcome:
    return run(node_command(world.sts.url, provider, max_retries), environment)


def daemon_answers(outcome: dict[str, Any]) -> list[int]:
    """The HTTP statuses a Node client received from the daemon (not from STS), in order."""
    return [answer["status"] for answer in outcome["answers"] if answer["host"] == "127.0.0.1"
            and answer["path"].startswith("/v1/credentials/")]


def served_document(world: World, name: str) -> dict[str, Any]:
    """What the endpoint itself answers right now, fetched the way an SDK does."""
    request = urllib.request.Request(world.url(name), headers={"Authorization": world.token(name)})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
        return json.loads(answer.read())  # type: ignore[no-any-return]


class LongLived:
    """A client program that stays up and makes one round of calls per line it is sent."""

    def __init__(self, command: list[str], environment: dict[str, str]) -> None:
        self.process = subprocess.Popen(command, env=guarded(environment), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.rounds: list[dict[str, Any]] = []
        self.stderr: str | None = None

    def round(self, timeout: float = 30) -> dict[str, Any]:
        self.ask()
        return self.answer(timeout)

    def ask(self) -> None:
        """Start a round; ``answer()`` waits for it. Several clients asked first run their rounds at once."""
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def answer(self, timeout: float = 30) -> dict[str, Any]:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise AssertionError(f"no answer within {timeout} s from {self.process.args!r}")
        line = self.process.stdout.readline()
        assert line, f"{self.process.args!r} exited: {self.stop()}"
        answer: dict[str, Any] = json.loads(line)
        self.rounds.append(answer)
        return answer

    def stop(self) -> str:
        """End the program (end of input) and return what it wrote on stderr."""
        if self.stderr is None:
            try:
                _, self.stderr = self.process.communicate(timeout=15)  # closes stdin: the program's end of input
            except subprocess.TimeoutExpired:
                self.process.kill()
                _, self.stderr = self.process.communicate(timeout=5)
        return self.stderr

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


def boto3_long_lived(world: World, environment: dict[str, str]) -> LongLived:
    return LongLived([sys.executable, str(PY / "long_lived.py"), world.sts.url], environment)


def node_long_lived(world: World, environment: dict[str, str]) -> LongLived:
    return LongLived(["node", str(JS / "long_lived.mjs"), "--endpoint", world.sts.url], environment)


def rounds_until(clients: list[LongLived], done: Callable[[], bool], timeout: float, pause: float = 0.2) -> None:
    """Make rounds on every client, all at once and in step, until ``done()`` holds; bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for client in clients:
            client.ask()
        for client in clients:
            client.answer()
        if done():
            return
        time.sleep(pause)
    raise AssertionError(f"still waiting after {timeout} s; last rounds: {[c.rounds[-1:] for c in clients]}")


def rounds_freely_until(clients: list[LongLived], done: Callable[[LongLived], bool], timeout: float) -> None:
    """Each client makes rounds back to back, at its own pace, until ``done(client)`` holds for it; bounded.

    In step, a client that spends 2 s retrying holds the others back, and they never see what it saw."""
    deadline = time.monotonic() + timeout
    failures: list[BaseException] = []

    def run(client: LongLived) -> None:
        try:
            while time.monotonic() < deadline and not done(client):
                client.round()
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 60)
    if failures:
        raise failures[0]
    waiting = [client.process.args for client in clients if not done(client)]
    assert not waiting, f"still waiting after {timeout} s for {waiting}"
