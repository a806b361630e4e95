"""Running the daemon under the platform's service manager at login (`govuk-imds service install|uninstall|status`).

``templates`` (the units and the plist), ``host`` (this machine, behind seams), ``base`` (what every manager does),
``systemd``, ``launchd``, ``platform`` (which one applies). Light: no boto3, aiohttp or keyring, and nothing reads
``os.environ`` at import time. The CLI command keeps the user-facing word "service"; the code says "autostart" so
that "service" means only the daemon's ``Service``.
"""
