"""The one exception tree of govuk-imds.

Every failure a person can cause or meet is a ``GovukImdsError`` whose ``str()`` is a single line that says what
happened and what to type next. The CLI catches the root once and prints that line; the web layer maps a few of
them to HTTP answers. Nothing here knows about HTTP, sockets or boto3.

    GovukImdsError
    ├── ConfigError                 a config file or profile is wrong (names file, profile and key)
    │   └── UnknownEnvironment      no such environment in the AWS config
    ├── InvalidInput                something typed or piped in has the wrong shape (MFA code, key pair)
    │   └── CodeSourceFailed        no usable MFA code from mfa_process, stdin or a prompt (names the source, the fix)
    │       └── PromptCancelled     the person cancelled the prompt (or let it time out)
    ├── KeyStoreError               the OS keyring
    │   ├── KeyringUnavailable      no usable secure backend, locked, or not answering
    │   │   └── KeyringTimeout      a keyring call did not return in time (it may still be running)
    │   └── NoKeyStored             no key pair for that source profile
    ├── StsError                    AWS STS said no, or could not be reached
    │   ├── MfaCodeRefused          wrong or already-used MFA code
    │   ├── LongTermKeyRejected     the stored key pair is not valid
    │   ├── SessionRejected         the MFA session can no longer assume the role (fatal: lock)
    │   │   └── MfaSessionEnded     STS no longer accepts the MFA session itself (expired or invalid)
    │   ├── StsUnavailable          transient: throttled, 5xx, timeout, unreachable, garbage
    │   ├── IamError                IAM said no (key import and rotation)
    │   │   ├── IamUnavailable      IAM unreachable or 5xx; ``maybe_done`` says whether it may have acted
    │   │   └── AccessKeyLimit      the user already has the two keys AWS allows
    │   └── SigninRefused           AWS's federation (console sign-in) endpoint said no or could not be reached
    ├── EnvironmentLocked           no MFA session for the environment
    ├── SessionEndsTooSoon          a console session would outlast the environment's MFA session
    ├── CredentialsUnavailable      unlocked, but nothing valid to serve right now
    ├── DaemonError                 the daemon process itself
    │   ├── DaemonNotRunning
    │   ├── AlreadyRunning
    │   ├── PortInUse
    │   ├── UnsafeRuntimeDir        runtime dir or file with the wrong owner, mode or type
    │   ├── InheritedSocketRefused  a socket-activated listener not on 127.0.0.1:<port>
    │   ├── ForeignListener         the endpoint's port is held by someone else: no token is sent there
    │   └── ServiceManagerError     systemctl or launchctl said no
    ├── ControlError                the control channel answered with an error (with the daemon's exit code)
    ├── KeyOperationError           a key command stopped; the message gives the state of keyring, file and AWS
    ├── UnknownEnvironmentToken     credential-process for an environment with no token file
    ├── CredentialProcessRefused    credential-process got an error answer from the daemon
    ├── BrowserUnavailable          no browser to open the console in, or it never fetched the sign-in page
    ├── NotConfirmed                an environment with `confirm = true` was not confirmed (or no terminal to ask)
    └── CommandNotFound             `exec` could not run the command (exit 127)
"""

from __future__ import annotations


class GovukImdsError(Exception):
    """Root of every error govuk-imds raises on purpose. ``str()`` is one line for a person."""

    exit_code = 1


class ConfigError(GovukImdsError):
    exit_code = 2


class UnknownEnvironment(ConfigError):
    def __init__(self, name: str, known: list[str], prefix: str) -> None:
        self.name = name
        hint = f"known: {', '.join(known)}" if known else "none is defined yet"
        super().__init__(
            f"unknown environment {name!r} ({hint}); add a [profile {prefix}{name}] with role_arn, "
            "mfa_serial and source_profile to your AWS config"
        )


class InvalidInput(GovukImdsError):
    exit_code = 2


class KeyStoreError(GovukImdsError):
    exit_code = 3


class KeyringUnavailable(KeyStoreError):
    pass


class KeyringTimeout(KeyringUnavailable):
    """The keyring call did not return in time (it may still be running, in its daemon thread)."""


class NoKeyStored(KeyStoreError):
    def __init__(self, source_profile: str) -> None:
        self.source_profile = source_profile
        super().__init__(
            f"no access key is stored for source profile {source_profile!r}; run `govuk-imds add {source_profile}`"
        )


class StsError(GovukImdsError):
    exit_code = 4


class MfaCodeRefused(StsError):
    pass


class LongTermKeyRejected(StsError):
    pass


class SessionRejected(StsError):
    """The MFA session can no longer be used (AccessDenied, ExpiredToken, ...): lock, do not retry."""


class MfaSessionEnded(SessionRejected):
    """STS refuses the MFA session itself (ExpiredToken, InvalidClientTokenId): no environment can use it again."""


class StsUnavailable(StsError):
    """A transient failure: worth retrying with backoff."""


class EnvironmentLocked(GovukImdsError):
    exit_code = 5

    def __init__(self, name: str, reason: str | None = None) -> None:
        self.name = name
        why = f" ({reason})" if reason else ""
        super().__init__(f"environment {name!r} is locked{why}; run `govuk-imds unlock {name}`")


class SessionEndsTooSoon(GovukImdsError):
    """A console session lasts as long as its credentials (one hour) and must not outlast the MFA session."""

    exit_code = 5


class CredentialsUnavailable(GovukImdsError):
    exit_code = 6


class DaemonError(GovukImdsError):
    exit_code = 7


class DaemonNotRunning(DaemonError):
    def __init__(self) -> None:
        super().__init__("the govuk-imds daemon is not running; run `govuk-imds start`")


class AlreadyRunning(DaemonError):
    def __init__(self, pid: object) -> None:
        super().__init__(f"govuk-imds is already running (pid {pid}); `govuk-imds stop` stops it")


class PortInUse(DaemonError):
    def __init__(self, port: int) -> None:
        self.port = port
        super().__init__(
            f"port {port} on 127.0.0.1 is already in use by another program; stop it, "
            "or set `port = <other>` in your govuk-imds config.toml"
        )


class UnsafeRuntimeDir(DaemonError):
    pass


class ControlError(GovukImdsError):
    """The daemon answered with an error. ``code`` names the daemon's error class (``EnvironmentLocked``...) and the
    exit status is the one that error has, so a command relaying the daemon's refusal exits as if it were its own."""

    exit_code = 8

    def __init__(self, message: str, *, code: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        if exit_code is not None:
            self.exit_code = exit_code


class InheritedSocketRefused(DaemonError):
    """The service manager passed a socket the daemon must not serve on."""


class ForeignListener(DaemonError):
    """The endpoint's port is held by something that is not the user's own daemon; the token was not sent."""

    def __init__(self, port: int, owner: int | None) -> None:
        self.port = port
        self.owner = owner
        holder = (
            f"held by a process of another user (uid {owner})"
            if owner is not None
            else "not held by your govuk-imds daemon"
        )
        super().__init__(
            f"127.0.0.1:{port} is {holder}, so the token was not sent; stop that program, or set `port = <other>` in "
            "your govuk-imds config.toml, then run `govuk-imds start`"
        )


class ServiceManagerError(DaemonError):
    """systemctl or launchctl said no, or this platform has no supported service manager."""


class IamError(StsError):
    """AWS IAM said no (AccessDenied, NoSuchEntity, LimitExceeded, ...)."""


class IamUnavailable(IamError):
    """IAM could not be reached or answered with a server error.

    ``maybe_done`` is true when the request may have been carried out anyway (the answer was lost or was a 5xx),
    false when it certainly was not (no connection, or throttled before it ran).
    """

    def __init__(self, message: str, *, maybe_done: bool) -> None:
        super().__init__(message)
        self.maybe_done = maybe_done


class AccessKeyLimit(IamError):
    """The user already has the two access keys AWS allows."""


class SigninRefused(StsError):
    """AWS's federation endpoint refused to make a sign-in token, or could not be reached."""


class KeyOperationError(GovukImdsError):
    """A key command stopped. The message says what state the keyring, the file and AWS are in."""

    exit_code = 9


class UnknownEnvironmentToken(GovukImdsError):
    exit_code = 2


class CredentialProcessRefused(GovukImdsError):
    exit_code = 5


class BrowserUnavailable(GovukImdsError):
    exit_code = 10


class CodeSourceFailed(InvalidInput):
    """A source of MFA codes gave none that can be used: ``mfa_process`` failed, hung or printed something that is
    not six digits, stdin held no code, or there is nowhere left to ask. The message names the source and the fix,
    and never holds a code."""


class PromptCancelled(CodeSourceFailed):
    """The person cancelled the prompt for a code (a GUI dialog), or did not answer it in time."""


class NotConfirmed(GovukImdsError):
    """A command for an environment with ``confirm = true`` was declined, or could not ask (no terminal)."""

    exit_code = 11


class CommandNotFound(GovukImdsError):
    exit_code = 127
