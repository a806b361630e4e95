"""`govuk-imds console` end to end: a real daemon, moto behind the STS proxy, the federation emulator judging the
credentials by the proxy's ledger, and a real headless Chromium as ``$BROWSER``.

A browser run takes about two seconds, so one test makes three of them and proves most of the story; ``--print``
and every refusal need no browser.
"""

from __future__ import annotations

import os
import pty
import re
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from govuk_imds.core.clock import rfc3339
from govuk_imds.core.timefmt import local_time
from tests.support.federation_emulator import FederationEmulator
from tests.support.sts_emulator import IssuedCredential, StsProxy
from tests.support.world import ACCOUNTS, BIN, World, one_line, require

WRAPPER = Path(__file__).parent.parent / "support" / "headless-browser"
ROLE = "arn:aws:sts::{account}:assumed-role/govuk-administrators/"


@pytest.fixture(scope="module")
def signin(sts: StsProxy) -> Iterator[FederationEmulator]:
    with FederationEmulator(sts) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def console_world(served: World, signin: FederationEmulator) -> World:
    """A daemon with production and staging unlocked, and the sign-in endpoint pointed at the emulator."""
    served.config_file.write_text(served.config_file.read_text() + f'\n[signin]\nendpoint_url = "{signin.url}"\n')
    return served


def shown(page: str, element: str) -> str:
    found = re.search(f'<p id="{element}">(.*?)</p>', page)
    assert found is not None, page
    return found.group(1).replace("&amp;", "&")


def follow(url: str) -> str:
    """What a browser without JavaScript ends up showing for a GET URL (cookies kept, redirects followed)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with opener.open(url, timeout=10) as answer:
        return str(answer.read().decode())


def console_credential(sts: StsProxy, signin: FederationEmulator) -> IssuedCredential:
    """The credentials the last sign-in token was made from, as the STS emulator issued them."""
    issued = sts.find_issued(signin.token_requests[-1].access_key_id)
    assert issued is not None
    return issued


class ArgvWatcher:
    """Reads every process's argv (``/proc/*/cmdline``, what ``ps`` shows to every user) over and over."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ArgvWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        self.seen.add((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace"))
                    except OSError:
                        continue


def test_the_console_opens_as_the_role_on_the_service_asked_for_signing_out_first(
    console_world: World, signin: FederationEmulator, sts: StsProxy, tmp_path: Path
) -> None:
    require(shutil.which("chromium") is not None, "chromium (apt-get install chromium)")
    world = console_world
    dom, argv_log = tmp_path / "dom.html", tmp_path / "argv.log"
    browser = dict(world.environment, BROWSER=str(WRAPPER), HEADLESS_DOM_OUT=str(dom),
                   HEADLESS_PROFILE=str(tmp_path / "profile"), HEADLESS_ARGV_LOG=str(argv_log))

    # 1. production, on S3: signed out first, then signed in as production's role, where asked.
    before = len(signin.events)
    with ArgvWatcher() as watcher:
        opened = world.cli("console", "production", "--service", "s3", env=browser)
    assert opened.returncode == 0, opened.stderr
    page = dom.read_text()
    assert shown(page, "role-arn").startswith(ROLE.format(account=ACCOUNTS["production"]))
    assert shown(page, "destination") == "https://eu-west-1.console.aws.amazon.com/s3/home?region=eu-west-1"
    assert signin.events[before:] == ["getSigninToken", "logout", "login"]
    token_request = signin.token_requests[-1]
    assert (token_request.method, token_request.session_duration, token_request.status) == ("POST", None, 200)
    credential = console_credential(sts, signin)
    # fresh credentials, assumed with the MFA session and without DurationSeconds (the served ones have 3600)
    assert (credential.action, credential.signed_by, credential.duration_seconds) == (
        "AssumeRole", "GetSessionToken", None)
    assert "govuk-administrators" in opened.stdout and ACCOUNTS["production"] in opened.stdout
    assert f"until {local_time(rfc3339(credential.expiration))}" in opened.stdout

    # The browser was given only the one-shot page's address, never the sign-in: not in its argv, nor anywhere in
    # `ps` while it ran, nor in any output or log.
    [handed] = argv_log.read_text().splitlines()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/[A-Za-z0-9_-]{43}", handed)
    assert any("chromium" in argv and handed in argv for argv in watcher.seen), "the watcher never saw the browser"
    secrets = [signin.signin_tokens[-1], credential.secret_access_key, credential.session_token]
    everything = [*watcher.seen, opened.stdout, opened.stderr, world.log()]
    assert [secret for secret in secrets if any(secret in text for text in everything)] == []
    assert not any("SigninToken" in argv or signin.url in argv for argv in watcher.seen)
    with pytest.raises(urllib.error.URLError):  # the page is gone once served
        urllib.request.urlopen(handed, timeout=5)

    # 2. staging without signing out: the browser is still signed in to production and stays there.
    before = len(signin.events)
    kept = world.cli("console", "staging", "--no-logout", env=browser)
    assert kept.returncode == 0, kept.stderr
    assert signin.events[before:] == ["getSigninToken", "login"]
    assert signin.logins[-1].method == "POST"
    assert signin.logins[-1].requested_arn.startswith(ROLE.format(account=ACCOUNTS["staging"]))
    assert shown(dom.read_text(), "role-arn").startswith(ROLE.format(account=ACCOUNTS["production"]))

    # 3. staging again, signing out first (the default): now it is staging.
    before = len(signin.events)
    switched = world.cli("console", "staging", env=browser)
    assert switched.returncode == 0, switched.stderr
    assert signin.events[before:] == ["getSigninToken", "logout", "login"]
    page = dom.read_text()
    assert shown(page, "role-arn").startswith(ROLE.format(account=ACCOUNTS["staging"]))
    assert shown(page, "destination") == "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"


@pytest.mark.parametrize("name", ["production", "staging"])
def test_print_writes_a_sign_in_url_that_works_to_a_pipe(
    console_world: World, signin: FederationEmulator, sts: StsProxy, name: str
) -> None:
    printed = console_world.cli("console", name, "--print", "--path", "ec2/home#Instances:")
    assert printed.returncode == 0, printed.stderr
    [url] = printed.stdout.splitlines()
    assert url.startswith(f"{signin.url}/oauth?Action=logout&redirect_uri=")
    page = follow(url)
    assert shown(page, "role-arn").startswith(ROLE.format(account=ACCOUNTS[name]))
    assert shown(page, "destination") == "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#Instances:"
    assert ACCOUNTS[name] in printed.stderr and "15 minutes" in printed.stderr
    credential = console_credential(sts, signin)
    assert f"until {local_time(rfc3339(credential.expiration))}" in printed.stderr
    assert signin.signin_tokens[-1] not in console_world.log()


def test_print_without_logout_is_the_login_url_itself(console_world: World, signin: FederationEmulator) -> None:
    printed = console_world.cli("console", "production", "--print", "--no-logout", "--region", "eu-west-2")
    assert printed.returncode == 0, printed.stderr
    url = printed.stdout.strip()
    assert url.startswith(f"{signin.url}/federation?Action=login&Issuer=govuk-imds&Destination=")
    page = follow(url)
    assert shown(page, "destination") == "https://eu-west-2.console.aws.amazon.com/console/home?region=eu-west-2"
    assert signin.events[-2:] == ["getSigninToken", "login"]


def on_a_terminal(world: World, *args: str) -> tuple[int, str, str]:
    """Run the command with its stdout on a pseudo-terminal; return its status, what the terminal showed, stderr."""
    leader, follower = pty.openpty()
    try:
        result = subprocess.run([str(BIN / "govuk-imds"), *args], stdout=follower, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=world.environment, timeout=60, text=True, check=False)
    finally:
        os.close(follower)
    shown = b""
    try:
        while chunk := os.read(leader, 65536):
            shown += chunk
    except OSError:  # EIO: the terminal's other end is closed and everything has been read
        pass
    finally:
        os.close(leader)
    return result.returncode, shown.decode(), result.stderr


def test_print_refuses_a_terminal_unless_asked_twice(
    console_world: World, signin: FederationEmulator, sts: StsProxy
) -> None:
    before, assumed = len(signin.events), sts.count("AssumeRole")
    status, terminal, error = on_a_terminal(console_world, "console", "production", "--print")
    assert status == 2 and terminal == ""
    assert "not written to a terminal unless you add --yes" in error
    assert (len(signin.events), sts.count("AssumeRole")) == (before, assumed)  # refused before anything was made
    status, terminal, error = on_a_terminal(console_world, "console", "production", "--print", "--yes")
    assert status == 0, error
    assert terminal.startswith(f"{signin.url}/oauth?Action=logout")


@pytest.mark.parametrize(
    ("args", "expected", "status"),
    [
        (["console"], "name an environment", 2),
        (["console", "prod"], "unknown environment 'prod'", 2),
        (["console", "production", "--service", "s4"], "unknown console service 's4'; did you mean 's3'?", 2),
        (["console", "production", "--service", "nothing-like-it"], "`govuk-imds console --list-services`", 2),
        (["console", "production", "--path", "//evil.example/x"], "is not a console path", 2),
        (["console", "production", "--path", "../../x"], "is not a console path", 2),
        (["console", "production", "--region", "mars-1"], "'mars-1' is not an AWS region name", 2),
        (["console", "production", "--service", "s3", "--path", "s3/home"], "give --service or --path, not both", 2),
        (["console", "integration", "--print"], "environment 'integration' is locked; run `govuk-imds unlock "
                                                "integration`", 5),
        (["console", "production"], "no browser to open (no $BROWSER and no display); `govuk-imds console "
                                    "production --print` writes the sign-in URL", 10),
    ],
)
def test_bad_input_gets_one_line_and_mints_nothing(
    console_world: World, signin: FederationEmulator, sts: StsProxy, args: list[str], expected: str, status: int
) -> None:
    before, assumed = len(signin.events), sts.count("AssumeRole")
    refused = console_world.cli(*args)
    assert expected in one_line(refused)
    assert refused.returncode == status
    assert (len(signin.events), sts.count("AssumeRole")) == (before, assumed)


def test_list_services_names_what_service_accepts(console_world: World) -> None:
    listed = console_world.cli("console", "--list-services")
    assert listed.returncode == 0
    assert {"s3", "ec2", "iam", "logs", "rds"} <= set(listed.stdout.split())


def test_a_refusing_sign_in_endpoint_reaches_the_user_as_awss_reason(
    console_world: World, signin: FederationEmulator
) -> None:
    signin.refuse_next(400, "Invalid credentials parameter")
    refused = console_world.cli("console", "production", "--print")
    line = one_line(refused)
    assert line == ("govuk-imds: AWS sign-in refused the role credentials (HTTP 400: Invalid credentials parameter)")
    assert refused.returncode == 4
    assert refused.stdout == ""


def test_an_unreachable_sign_in_endpoint_is_one_line(console_world: World, tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = tmp_path / "config.toml"
    config.write_text(re.sub(r'\[signin\]\nendpoint_url = "[^"]*"', f'[signin]\nendpoint_url = "http://127.0.0.1:{port}"',
                             console_world.config_file.read_text()))
    line = one_line(console_world.cli("--config", str(config), "console", "production", "--print"))
    assert f"AWS sign-in at http://127.0.0.1:{port} could not be reached" in line


def test_a_browser_that_cannot_start_is_one_line_with_the_print_alternative(console_world: World) -> None:
    refused = console_world.cli("console", "production", env=dict(console_world.environment, BROWSER="/bin/false"))
    assert one_line(refused) == (
        "govuk-imds: the browser could not be started; `govuk-imds console production --print` writes the sign-in "
        "URL to paste into a browser instead"
    )
    assert refused.returncode == 10


def test_a_session_shorter_than_a_console_session_is_refused_before_assuming_the_role(
    world: World, signin: FederationEmulator
) -> None:
    world.config_file.write_text(world.config_file.read_text()
                                 + f'\n[environments.production]\nsession_duration = "45m"\n'
                                 f'\n[signin]\nendpoint_url = "{signin.url}"\n')
    world.add_key()
    world.start()
    assert world.unlock("production").returncode == 0
    assumed = world.sts.count("AssumeRole")
    refused = world.cli("console", "production", "--print")
    assert "set a session_duration over 1h for production" in one_line(refused)
    assert refused.returncode == 5
    assert world.sts.count("AssumeRole") == assumed
