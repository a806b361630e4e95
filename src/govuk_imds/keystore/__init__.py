"""Long-term key pairs in the OS keyring, and nowhere else.

``store`` holds the ``SecretStore`` contract and the keyring-backed store, ``backends`` chooses the backend from
an allowlist, ``timeouts`` keeps every keyring call from hanging. May import ``core``, ``config`` and ``errors``.
"""
