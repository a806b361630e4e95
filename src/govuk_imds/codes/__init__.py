"""Where MFA codes come from, in order: ``--code``, stdin when it is not a terminal, the configured command
(``mfa_process``, e.g. ``ykman oath accounts code --single gds-users``), then a prompt (the terminal, or a GUI
dialog). ``unlock``, ``rotate-key`` and unlocking on demand (``exec``, ``env``, ``shell``, ``console``) use them.

May import ``core``, ``config``, ``desktop`` and ``errors``. No code ever goes into argv, a log or an error message:
the messages describe what a source printed, never repeat it.
"""
