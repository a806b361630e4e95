"""The prompt segments ``govuk-imds prompt <shell>`` prints: shell code that lives in ``snippets/`` as plain files
(readable, and loaded as they are by the tests' real shells). Light: ``importlib.resources`` only."""

from __future__ import annotations

from importlib import resources

SNIPPETS = {"bash": "prompt.bash", "zsh": "prompt.zsh", "fish": "prompt.fish", "starship": "starship.toml"}


def snippet(shell: str) -> str:
    return resources.files(__package__).joinpath("snippets", SNIPPETS[shell]).read_text(encoding="utf-8")
