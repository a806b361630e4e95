"""Secrets in the OS keyring, and nowhere else: long-term key pairs, and the MFA sessions the daemon keeps.

``selection`` chooses the backend from an allowlist, ``timeouts`` keeps every keyring call from hanging. ``store``
and ``backends`` hold long-term keys (the CLI only); ``sessions`` holds the daemon's MFA sessions, under another
service name, and is the one module here the daemon uses. May import ``core``, ``config`` and ``errors``.
"""
