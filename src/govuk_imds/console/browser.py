"""Starting the user's browser on the one-shot page, the way Python's ``webbrowser`` does (``$BROWSER`` first).

``webbrowser`` runs a ``$BROWSER`` command (or xdg-open, gio, a known browser) with the page's address as its
argument and waits for it to exit, which for a browser that was not yet running means until it is closed. So it
runs on a thread of its own, and the command waits only until the page has been fetched. Without ``$BROWSER`` and
without a display, ``webbrowser`` would fall back to a text browser in the terminal, which cannot run the
console: that counts as no browser.
"""

from __future__ import annotations

import sys
import threading
import webbrowser
from collections.abc import Mapping

from ..errors import BrowserUnavailable
from .handoff import Handoff


def has_browser(environ: Mapping[str, str]) -> bool:
    """Whether there is a browser to start: ``$BROWSER``, macOS or Windows, or a graphical display elsewhere."""
    if environ.get("BROWSER"):
        return True
    if sys.platform == "darwin" or sys.platform.startswith("win"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def open_page(handoff: Handoff, no_browser: str) -> None:
    """Start the browser on ``handoff.url`` and return once it has fetched the page; ``BrowserUnavailable`` (with
    ``no_browser``, which says what to do instead) when the browser could not be started or never came."""
    outcome: list[bool] = []

    def start() -> None:
        try:
            outcome.append(webbrowser.open(handoff.url, new=2))
        except webbrowser.Error:
            outcome.append(False)

    threading.Thread(target=start, name="browser", daemon=True).start()
    while not handoff.wait(timeout=0.1):
        if outcome and not outcome[0]:
            raise BrowserUnavailable(f"the browser could not be started; {no_browser}")
        if handoff.expired:
            raise BrowserUnavailable(f"the browser did not open the sign-in page within a minute; {no_browser}")
