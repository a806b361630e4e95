"""The person at the screen: desktop notifications, a GUI prompt for an MFA code, and the D-Bus session bus they
travel on (Linux), or ``osascript`` (macOS).

Both the daemon (a notification when a tool finds an environment locked) and the CLI (the GUI prompt, "touch your
YubiKey") use these, so they live below both. May import ``core`` and ``errors`` only. A missing desktop (no bus, no
display, no notification server) is never an error here: it is reported as "not shown", and the caller goes on.
jeepney is imported inside the functions that use it, so nothing light pays for it.
"""
