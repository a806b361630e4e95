"""The daemon: the composition root (``app``), the session service, the credential endpoint, the control socket.

May import ``core``, ``config``, ``aws``, ``control`` and ``errors`` (and ``keystore`` only for MFA sessions). It
never imports the CLI or the feature folders, and never reads a long-term key: that key never enters the daemon.
"""
