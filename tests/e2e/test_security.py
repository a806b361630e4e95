"""Each defence in the threat model, proven against a real daemon over real sockets."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.support.world import BIN, World, aws_whoami, require, status_rows, wait_for


def files_containing(roots: list[Path], needles: list[bytes], since: float) -> list[str]:
    found = []
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                path = Path(directory) / name
                try:
                    info = path.lstat()
                    if not path.is_file() or path.is_symlink() or info.st_size > 20_000_000 or info.st_mtime < since:
                        continue
                    content = path.read_bytes()
                except OSError:
                    continue
                found += [f"{path}: {needle!r}" for needle in needles if needle in content]
    return found


def status_with(world: World, token: str, user_agent: str | None = None) -> int:
    """One GET for production with ``token``, as a client would send it; the answer's status."""
    agent = f"User-Agent: {user_agent}\r\n" if user_agent else ""
    with socket.create_connection(("127.0.0.1", world.port), timeout=5) as connection:
        connection.sendall(f"GET /v1/credentials/production HTTP/1.1\r\nHost: 127.0.0.1:{world.port}\r\n"
                           f"Authorization: {token}\r\n{agent}Connection: close\r\n\r\n".encode())
        return int(connection.recv(100).split(b" ", 2)[1])


def test_a_lock_keeps_the_token_so_a_request_racing_it_is_told_locked_never_wrong_token(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    token = world.token("production")
    statuses: list[int] = []
    locked = threading.Event()
    done = threading.Event()

    def ask() -> None:  # back to back, before, during and after the lock; bounded
        for _ in range(20_000):
            statuses.append(status_with(world, token))
            if locked.is_set() and statuses[-1] == 423 and statuses.count(423) >= 20:
                break
        done.set()

    asker = threading.Thread(target=ask)
    asker.start()
    wait_for(lambda: 200 in statuses, 10, "a first answer")
    assert world.cli("lock", "production").returncode == 0
    locked.set()
    asker.join(60)
    assert done.is_set()
    assert set(statuses) == {200, 423}  # never a 401 or 403 "wrong token"
    first_locked = statuses.index(423)
    assert set(statuses[first_locked:]) == {423}
    assert world.token("production") == token

    assert world.unlock("production").returncode == 0
    assert status_with(world, token) == 200  # the same token: shells that hold it work again
    assert aws_whoami(world, "production").returncode == 0


def test_lock_with_new_tokens_makes_every_copy_of_the_old_token_worthless(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production", "staging").returncode == 0
    old = {name: world.token(name) for name in ("production", "staging")}
    locked = world.cli("lock", "--all", "--new-tokens")
    assert locked.returncode == 0, locked.stderr
    assert "run it again" in locked.stdout
    assert all(world.token(name) != token for name, token in old.items())
    assert world.unlock("production").returncode == 0
    assert status_with(world, old["production"]) == 403
    assert status_with(world, world.token("production")) == 200


def test_status_names_the_client_last_refused_because_the_environment_was_locked(world: World) -> None:
    world.start()  # production is locked
    assert status_with(world, "not-the-token", "curl/8.0") == 403  # no token, no record
    assert status_with(world, world.token("production"), "aws-sdk-cpp/1.11.900 \u00e9\u00e9 ua/2.0" + "x" * 300) == 423
    status = world.cli("status")
    assert status.returncode == 0, status.stderr
    [line] = [line for line in status.stdout.splitlines() if line.startswith("production: ")]
    # Printable ASCII only (a User-Agent is anyone's to write, and status prints it on a terminal), cut short.
    shown = re.fullmatch(r"production: locked, and refused (aws-sdk-cpp/1\.11\.900 \?\? ua/2\.0x+) at "
                         r"\d\d:\d\d:\d\d; run `govuk-imds unlock production`", line)
    assert shown is not None, line
    assert len(shown.group(1)) == 120
    rows = status_rows(world)
    refused = rows["production"]["refused_while_locked"]
    assert isinstance(refused, dict)
    assert refused["client"].startswith("aws-sdk-cpp/1.11.900 ")
    assert rows["staging"]["refused_while_locked"] is None
    assert status_with(world, world.token("production")) == 423  # no User-Agent at all
    assert "locked, and refused a client that sent no User-Agent at " in world.cli("status").stdout


def test_refuses_to_start_with_a_runtime_dir_open_to_others(world: World) -> None:
    world.runtime.chmod(0o755)
    started = world.cli("start")
    assert started.returncode != 0
    assert f"chmod 0700 {world.runtime}" in started.stderr
    assert "Traceback" not in started.stderr


def test_refuses_a_symlinked_runtime_dir(world: World, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    world.runtime.rmdir()
    world.runtime.symlink_to(target)
    started = world.cli("start")
    assert started.returncode != 0
    assert "symlink" in started.stderr


def test_a_planted_token_symlink_is_never_followed(world: World, tmp_path: Path) -> None:
    decoy = tmp_path / "decoy"
    decoy.write_text("")
    tokens = world.runtime / "tokens"
    tokens.mkdir(mode=0o700)
    (tokens / "production").symlink_to(decoy)
    world.start()  # a daemon that bound the port itself replaces every token file, the planted link included
    token_file = tokens / "production"
    assert not token_file.is_symlink()
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert decoy.read_text() == ""


def test_control_socket_refuses_another_uid_even_when_its_mode_is_widened(world: World) -> None:
    require(os.geteuid() == 0, "root, to run a client as another uid")
    system_python = Path("/usr/bin/python3")  # the venv's interpreter may sit in a directory nobody cannot enter
    require(system_python.exists(), "/usr/bin/python3")
    world.start()
    world.runtime.chmod(0o755)
    control = world.runtime / "control.sock"
    control.chmod(0o777)
    # The daemon hangs up at once: the client sees an empty read, a reset, or (if the hang-up beats its write) a
    # broken pipe. All three mean "no answer".
    probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
             "try:\n s.sendall(b'{\"op\":\"status\"}\\n'); print(repr(s.recv(1000)))\n"
             "except (ConnectionResetError, BrokenPipeError): print(repr(b''))")
    as_nobody = subprocess.run([str(system_python), "-c", probe, str(control)], user=65534, group=65534,
                               capture_output=True, text=True, timeout=10, check=False)
    assert as_nobody.returncode == 0, as_nobody.stderr  # it could connect...
    assert as_nobody.stdout.strip() == "b''"  # ...and was hung up on without a word
    assert "refused a control connection from another user" in world.log()
    world.runtime.chmod(0o700)
    assert world.cli("status").returncode == 0  # the owner is still served


def test_the_control_socket_is_0600_in_a_0700_runtime_dir(world: World) -> None:
    world.start()
    assert (world.runtime / "control.sock").stat().st_mode & 0o777 == 0o600
    assert world.runtime.stat().st_mode & 0o777 == 0o700
    assert (world.runtime / "tokens").stat().st_mode & 0o777 == 0o700


def test_listens_on_loopback_only_with_core_dumps_off(world: World) -> None:
    world.start()
    pid = world.daemon_pid()
    listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    ours = [fields[1] for fields in listening if fields[3] == "0A" and fields[1].endswith(f":{world.port:04X}")]
    assert ours == [f"0100007F:{world.port:04X}"]
    limits = Path(f"/proc/{pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]


def test_no_secret_or_mfa_code_leaves_memory_through_a_whole_cycle(fast_rotation: World) -> None:
    world = fast_rotation
    began = time.time() - 1
    world.sts.canary = "CANARYZQ"
    try:
        world.add_key()
        world.start()
        code = world.code()
        assert world.cli("unlock", "production", "--code", code).returncode == 0
        first = aws_whoami(world, "production")
        assert first.returncode == 0, first.stderr
        expiry = status_rows(world)["production"]["credentials_expire"]
        wait_for(lambda: status_rows(world)["production"]["credentials_expire"] != expiry, 20, "a rotation")
        assert aws_whoami(world, "production").returncode == 0
        assert world.cli("lock", "production").returncode == 0
        log = world.log()
        assert world.cli("stop").returncode == 0
    finally:
        world.sts.canary = None
    assert "renewed" in log  # the daemon did log at DEBUG through the rotation
    # ...but the libraries that log request and response bodies at DEBUG are held at WARNING.
    assert not [line for line in log.splitlines() if " DEBUG botocore" in line or " DEBUG urllib3" in line]
    # HOME includes the world's TMPDIR: everything the CLI, the daemon and the clients wrote is under these two.
    leaks = files_containing([world.home, world.runtime], [b"CANARYZQ", b"CANARY-"], began)
    leaks += files_containing([world.home, world.runtime], [code.encode()], began)
    assert leaks == []
    assert "CANARYZQ" not in log
    assert code not in log


def test_sts_traffic_goes_only_where_our_config_says_whatever_the_shell_sets(world: World) -> None:
    hostile = dict(world.environment,
                   AWS_ENDPOINT_URL="http://127.0.0.1:9/", AWS_ENDPOINT_URL_STS="http://127.0.0.1:9/",
                   AWS_CA_BUNDLE="/nonexistent/ca.pem", AWS_PROFILE="hostile", AWS_DEFAULT_PROFILE="hostile",
                   HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
                   http_proxy="http://127.0.0.1:9", ALL_PROXY="http://127.0.0.1:9",
                   AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:9/", AWS_CONTAINER_AUTHORIZATION_TOKEN="x",
                   AWS_ACCESS_KEY_ID="AKIAHOSTILEHOSTILE12", AWS_SECRET_ACCESS_KEY="h" * 40)
    world.add_key()
    assert world.cli("start", env=hostile).returncode == 0
    before = len(world.sts.calls)
    unlocked = world.cli("unlock", "production", "--code", world.code(), env=hostile)
    assert unlocked.returncode == 0, unlocked.stderr + world.log()
    calls = world.sts.calls[before:]
    assert [call.action for call in calls] == ["GetSessionToken", "AssumeRole"]
    assert {call.host for call in calls} == {f"127.0.0.1:{world.sts.port}"}
    assert calls[0].access_key_id == world.key_id


def test_a_flood_of_bad_tokens_leaves_valid_clients_served_and_the_log_short(world: World) -> None:
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    pid = world.daemon_pid()
    rss_before = rss_kib(pid)
    good = world.token("production").encode()
    request = (f"GET /v1/credentials/production HTTP/1.1\r\nHost: 127.0.0.1:{world.port}\r\n"
               "Authorization: {token}\r\n\r\n")
    bad_answers: list[bytes] = []
    good_statuses: list[bytes] = []

    def flood(connections: int, per_connection: int) -> None:
        for _ in range(connections):
            with socket.create_connection(("127.0.0.1", world.port), timeout=10) as connection:
                stream = connection.makefile("rb")
                for index in range(per_connection):
                    connection.sendall(request.format(token=f"bad-{index}").encode())
                    status = stream.readline()
                    length = 0
                    while (line := stream.readline()) not in (b"\r\n", b""):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    stream.read(length)
                    bad_answers.append(status)

    def valid_client() -> None:
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", world.port), timeout=10) as connection:
                connection.sendall(request.format(token=good.decode()).encode().replace(
                    b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
                good_statuses.append(connection.recv(20))

    threads = [threading.Thread(target=flood, args=(10, 100)) for _ in range(4)]
    threads.append(threading.Thread(target=valid_client))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(bad_answers) == 4000
    assert all(status.startswith(b"HTTP/1.1 403") for status in bad_answers)
    assert all(status.startswith(b"HTTP/1.1 200") for status in good_statuses)
    assert len(good_statuses) == 20
    refusal_lines = [line for line in world.log().splitlines() if "bad-" in line or "refused" in line]
    assert len(refusal_lines) <= 2
    assert rss_kib(pid) - rss_before < 10_000


def rss_kib(pid: int | None) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def test_the_daemon_never_reads_the_long_term_key(world: World) -> None:
    """The key stays in the keyring and the CLI: the daemon's log and environment never see it."""
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    pid = world.daemon_pid()
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert world.secret.encode() not in environ
    assert world.key_id not in world.log()
    assert BIN.exists()


# -- why a bare `Host: 127.0.0.1` admits no web page ------------------------------------------------------------------

BROWSER_PAGE = b"""<!doctype html><script>
(async () => {
  const report = {};
  // A page may try to set Host itself, with fetch and with XMLHttpRequest.
  try { await fetch("/fetch", {headers: {"Host": "127.0.0.1"}}); report.fetch = "sent"; }
  catch (error) { report.fetch = String(error); }
  try {
    const request = new XMLHttpRequest();
    request.open("GET", "/xhr", false);
    request.setRequestHeader("Host", "127.0.0.1");
    request.send();
    report.xhr = "sent";
  } catch (error) { report.xhr = String(error); }
  // The browser's own URL parser: the ports whose URL has no port in its host (so Host would be bare).
  report.bare = [];
  for (let port = 1; port < 65536; port++) {
    if (!new URL(`http://127.0.0.1:${port}/`).host.includes(":")) report.bare.push(port);
  }
  await fetch("/report", {method: "POST", body: JSON.stringify(report)});
})();
</script>"""


class Recorder:
    """A loopback HTTP server that serves BROWSER_PAGE and records each request's path, Host headers and body."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.requests: list[tuple[str, list[bytes], bytes]] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        with contextlib.suppress(OSError):  # closed at the end of the test
            while True:
                connection, _ = self.listener.accept()
                # A thread each: a browser opens connections ahead of need and may send nothing on them.
                threading.Thread(target=self.answer, args=(connection,), daemon=True).start()

    def answer(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.settimeout(30)
            self.record(connection)

    def record(self, connection: socket.socket) -> None:
        received = b""
        while b"\r\n\r\n" not in received and (chunk := connection.recv(65536)):
            received += chunk
        if not received:
            return  # a connection opened ahead of need, then closed
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = [line.partition(b":") for line in lines[1:]]
        length = next((int(value) for name, _, value in headers if name.lower() == b"content-length"), 0)
        while len(body) < length and (chunk := connection.recv(65536)):
            body += chunk
        self.requests.append((lines[0].split(b" ")[1].decode(), [value.strip() for name, _, value in headers
                                                                  if name.lower() == b"host"], body))
        page = BROWSER_PAGE if lines[0].startswith(b"GET /page ") else b""
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                           b"Content-Length: " + str(len(page)).encode() + b"\r\n\r\n" + page)

    def report(self) -> dict[str, object] | None:
        return next((json.loads(body) for path, _, body in self.requests if path == "/report"), None)


def test_a_browser_never_sends_a_bare_host_to_our_port_so_accepting_one_admits_no_web_page(
        world: World, tmp_path: Path) -> None:
    """The endpoint accepts ``Host: 127.0.0.1`` (the AWS CRT's) besides ``127.0.0.1:<port>``. A real browser, on a
    page reached through a name that resolves to loopback (what DNS rebinding achieves), shows why that admits no web
    page: it writes Host from the URL, with the port unless the port is 80, and ignores a script that sets Host."""
    browser = shutil.which("chromium")
    require(browser is not None, "Chromium, a real browser (Debian package chromium)")
    assert browser is not None
    world.start()
    recorder = Recorder()
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--password-store=basic",
               f"--user-data-dir={tmp_path / 'browser'}", "--host-resolver-rules=MAP rebind.test 127.0.0.1",
               f"http://rebind.test:{recorder.port}/page"]
    # Its own HOME and no session bus: nothing of the test's keyring or D-Bus for the browser to wait on.
    with subprocess.Popen(command, env={"PATH": world.environment["PATH"], "HOME": str(tmp_path)},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as chromium:
        try:
            wait_for(lambda: recorder.report() is not None, 60, "the page's report")
        finally:
            chromium.terminate()
            chromium.wait(15)
            recorder.listener.close()

    report = recorder.report()
    assert report == {"fetch": "sent", "xhr": "sent", "bare": [80]}
    hosts = {host for path, found, _ in recorder.requests if path in ("/page", "/fetch", "/xhr") for host in found}
    assert hosts == {f"rebind.test:{recorder.port}".encode()}  # one Host each, with the port: never 127.0.0.1
    # The Host such a page sends, and the browser's only bare form, to our port: both refused.
    assert status_of_host(world, f"rebind.test:{world.port}".encode()) == 403
    assert world.port != 80  # so the only Host a browser writes without a port cannot be for this endpoint
    assert status_of_host(world, b"127.0.0.1") == 423  # what the CRT sends gets past the Host check


def status_of_host(world: World, host: bytes) -> int:
    with socket.create_connection(("127.0.0.1", world.port), timeout=5) as connection:
        connection.sendall(b"GET /v1/credentials/production HTTP/1.1\r\nHost: " + host + b"\r\nAuthorization: "
                           + world.token_file("production").read_bytes() + b"\r\nConnection: close\r\n\r\n")
        return int(connection.recv(100).split(b" ", 2)[1])
