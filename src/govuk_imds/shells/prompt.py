"""The prompt segments ``govuk-imds prompt <shell>`` prints: shell code that lives in ``snippets/`` as plain files
(readable, and loaded as they are by the tests' real shells). Light: ``importlib.resources`` only."""

from __future__ import annotations

SNIPPETS = {"bash": "prompt.bash", "zsh": "prompt.zsh", "fish": "prompt.fish", "starship": "starship.toml"}


def snippet(shell: str) -> str:
    from importlib import resources  # here: every command imports this module (6 ms), only `prompt` reads a file

    return resources.files(__package__).joinpath("snippets", SNIPPETS[shell]).read_text(encoding="utf-8")
