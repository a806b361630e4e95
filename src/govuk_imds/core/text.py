"""Text from another program (a dialog's or a command's stderr), made fit for one line of a message: its last
line, printable ASCII only (no escape sequences reach a terminal or a notification), and short."""

from __future__ import annotations


def last_line(text: str, limit: int = 100) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = "".join(character if " " <= character <= "~" else "?" for character in lines[-1])
    return line if len(line) <= limit else line[: limit - 1] + "…"
