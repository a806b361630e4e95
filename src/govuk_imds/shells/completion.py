"""Tab completion for bash, zsh and fish, written from the CLI's own parser so it never falls behind it.

``command_tree`` reads an ``argparse`` parser into plain data: each command's subcommands, options and positional
words, and what each value completes to. The three renderers turn that data into one script per shell. Every script
runs the same small algorithm (walk the words typed so far to find the command, then offer its subcommands, its
options, an option's values or its positional words), so the shells behave alike.

Commands, options and fixed choices are written into the script; environment and source-profile names change with
the AWS config, so the script asks ``govuk-imds __complete environments|source-profiles`` for them (a light path:
no SDK, no server, no keyring). Pure: text in, text out.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

#: What a word completes to.
ENVIRONMENTS = "environments"
SOURCE_PROFILES = "source-profiles"
FILES = "files"
COMMANDS = "commands"
TEXT = "text"  # free text: nothing to offer
DYNAMIC = (ENVIRONMENTS, SOURCE_PROFILES)
#: The hidden command the scripts call for names that live in the AWS config.
NAMES_COMMAND = "__complete"
#: What a positional argument completes to, by the name the CLI gives it (its ``dest``).
_POSITIONAL_KINDS = {
    "environment": ENVIRONMENTS,
    "environments": ENVIRONMENTS,
    "source_profile": SOURCE_PROFILES,
    "source_profiles": SOURCE_PROFILES,
    "argv": COMMANDS,
}
#: Options whose value is a file.
_FILE_OPTIONS = {"config", "credentials_file"}
_ATTRIBUTE = "completes_to"
_SAFE_WORD = re.compile(r"[A-Za-z0-9@%+=,./_-]+")


def completes_to(action: argparse.Action, kind: str | Callable[[], Sequence[str]]) -> argparse.Action:
    """Say what an argument's words complete to when its name does not say it: a kind, or a function giving the
    choices (called only when a script is written, so the CLI's start-up does not pay for it)."""
    setattr(action, _ATTRIBUTE, kind)
    return action


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    help: str
    value: str | tuple[str, ...] | None  # None: a flag that takes no value; a tuple: fixed choices


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # () for govuk-imds itself, ("service", "install") for a subcommand
    summary: str
    options: tuple[Option, ...]
    positionals: tuple[str | tuple[str, ...], ...]  # what each positional word completes to; the last repeats
    subcommands: tuple[Command, ...]


def command_tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), summary: str = "") -> Command:
    options: list[Option] = []
    positionals: list[str | tuple[str, ...]] = []
    subcommands: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if name.startswith("_") or summaries.get(name) == argparse.SUPPRESS:
                    continue  # hidden commands are not offered
                subcommands.append(command_tree(sub, (*path, name), summaries.get(name, "")))
        elif action.option_strings:
            help_text = "" if action.help in (None, argparse.SUPPRESS) else str(action.help)
            options.append(Option(tuple(action.option_strings), help_text, _value_kind(action)))
        else:
            kind = _positional_kind(action)
            positionals.append(kind)
            if action.nargs == argparse.REMAINDER and kind == COMMANDS:
                positionals.append(FILES)  # the command's own arguments
    return Command(path, summary, tuple(options), tuple(positionals), tuple(subcommands))


def _explicit(action: argparse.Action) -> str | tuple[str, ...] | None:
    explicit = getattr(action, _ATTRIBUTE, None)
    if callable(explicit):
        return tuple(str(choice) for choice in explicit())
    return explicit if isinstance(explicit, str) else None


def _value_kind(action: argparse.Action) -> str | tuple[str, ...] | None:
    if action.nargs == 0:
        return None
    explicit = _explicit(action)
    if explicit is not None:
        return explicit
    if action.choices is not None:
        return tuple(str(choice) for choice in action.choices)
    return FILES if action.dest in _FILE_OPTIONS else TEXT


def _positional_kind(action: argparse.Action) -> str | tuple[str, ...]:
    explicit = _explicit(action)
    if explicit is not None:
        return explicit
    if action.choices is not None:
        return tuple(str(choice) for choice in action.choices)
    return _POSITIONAL_KINDS.get(action.dest, TEXT)


def walk(command: Command) -> Iterator[Command]:
    yield command
    for sub in command.subcommands:
        yield from walk(sub)


# -- rendering ------------------------------------------------------------------------------------------------------


def _key(path: tuple[str, ...]) -> str:
    return " ".join(path)


def _kind_word(kind: str | tuple[str, ...]) -> str:
    """A kind as one shell word: ``environments``, ``files``, or ``choices:sh,bash,zsh,fish``."""
    if isinstance(kind, tuple):
        for choice in kind:
            if not _SAFE_WORD.fullmatch(choice):
                raise ValueError(f"a choice the scripts cannot carry safely: {choice!r}")
        return "choices:" + ",".join(kind)
    return kind


def _single_quoted(text: str) -> str:
    """A POSIX single-quoted word (bash, zsh)."""
    return "'" + text.replace("'", "'\\''") + "'"


def _fish_quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _valued(command: Command) -> Iterable[tuple[str, str]]:
    """``(flag, kind word)`` for every option of ``command`` that takes a value."""
    for option in command.options:
        if option.value is not None:
            for flag in option.flags:
                yield flag, _kind_word(option.value)


@dataclass(frozen=True)
class _Syntax:
    """How one shell writes the data the common algorithm reads."""

    template: str
    spec: str  # one command: {key} {subcommands} {options} {positionals}
    value: str  # one option that takes a value: {key} {kind}
    quote: Callable[[str], str]
    words: Callable[[Sequence[tuple[str, str]]], str]  # (word, description) pairs as the shell's list


def _render(tree: Command, syntax: _Syntax, program: str) -> str:
    specs = []
    values = []
    for command in walk(tree):
        subcommands = [(sub.path[-1], sub.summary) for sub in command.subcommands]
        flags = [(flag, option.help) for option in command.options for flag in option.flags]
        specs.append(syntax.spec.format(
            key=syntax.quote(_key(command.path)),
            subcommands=syntax.words(subcommands),
            options=syntax.words(flags),
            positionals=" ".join(_kind_word(kind) for kind in command.positionals),
        ))
        values += [syntax.value.format(key=syntax.quote(f"{_key(command.path)}|{flag}"), kind=kind)
                   for flag, kind in _valued(command)]
    return syntax.template.format(program=program, names=NAMES_COMMAND, specs="\n".join(specs),
                                  values="\n".join(values))


def bash_script(tree: Command, program: str = "govuk-imds") -> str:
    return _render(tree, _BASH, program)


def zsh_script(tree: Command, program: str = "govuk-imds") -> str:
    return _render(tree, _ZSH, program)


def fish_script(tree: Command, program: str = "govuk-imds") -> str:
    return _render(tree, _FISH, program)


RENDERERS = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}


BASH_TEMPLATE = r"""# bash completion for {program}. Load it from ~/.bashrc:  eval "$({program} completion bash)"
# Written by `{program} completion bash` from the command's own parser; environment and source-profile names are
# read from your AWS config when you press TAB.

_govuk_imds_spec() {{  # $1: the command typed so far; sets subcommands, opts, positionals
    case $1 in
{specs}
        *) subcommands=; opts=; positionals= ;;
    esac
}}

_govuk_imds_value() {{  # $1: the command, $2: an option; sets kind to what its value completes to (empty: no value)
    case "$1|$2" in
{values}
        *) kind= ;;
    esac
}}

_govuk_imds_offer() {{  # $1: a kind of word; fills COMPREPLY with the candidates that start with $cur
    local IFS=$'\n' names
    case $1 in
        environments|source-profiles)
            names=$("${{COMP_WORDS[0]}}" {names} "$1" 2>/dev/null)
            COMPREPLY=($(compgen -W "$names" -- "$cur")) ;;
        files) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
        commands) COMPREPLY=($(compgen -c -- "$cur")) ;;
        choices:*) local choices=${{1#choices:}}; COMPREPLY=($(compgen -W "${{choices//,/$'\n'}}" -- "$cur")) ;;
        *) COMPREPLY=() ;;
    esac
}}

_govuk_imds() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
    local cmdpath= subcommands opts positionals kind word i n=0 dashdash=
    _govuk_imds_spec ""
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${{COMP_WORDS[i]}}
        if [ -n "$dashdash" ]; then n=$((n + 1)); continue; fi
        case $word in
            --) dashdash=1; continue ;;
            -*) _govuk_imds_value "$cmdpath" "$word"; [ -n "$kind" ] && i=$((i + 1)); continue ;;
        esac
        if [ "$n" = 0 ] && [[ " $subcommands " == *" $word "* ]]; then
            cmdpath=${{cmdpath:+$cmdpath }}$word; _govuk_imds_spec "$cmdpath"; continue
        fi
        n=$((n + 1))
    done
    if [ -z "$dashdash" ] && [[ $prev == -* ]]; then
        _govuk_imds_value "$cmdpath" "$prev"
        if [ -n "$kind" ]; then _govuk_imds_offer "$kind"; return; fi
    fi
    if [ -z "$dashdash" ] && [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); return; fi
    if [ -n "$subcommands" ] && [ "$n" = 0 ]; then COMPREPLY=($(compgen -W "$subcommands" -- "$cur")); return; fi
    local -a kinds=($positionals)
    [ ${{#kinds[@]}} -gt 0 ] || return 0
    [ "$n" -lt ${{#kinds[@]}} ] || n=$((${{#kinds[@]}} - 1))
    _govuk_imds_offer "${{kinds[n]}}"
}}

complete -F _govuk_imds {program}
"""


ZSH_TEMPLATE = r"""#compdef {program}
# zsh completion for {program}. Load it from ~/.zshrc, after compinit:  eval "$({program} completion zsh)"
# (or save it as _{program} in a directory of your $fpath). Written by `{program} completion zsh` from the
# command's own parser; environment and source-profile names are read from your AWS config when you press TAB.

_govuk_imds_spec() {{  # $1: the command typed so far; sets subcommands, opts, positionals
    case $1 in
{specs}
        (*) subcommands=(); opts=(); positionals=() ;;
    esac
}}

_govuk_imds_value() {{  # $1: the command, $2: an option; sets kind to what its value completes to (empty: no value)
    case "$1|$2" in
{values}
        (*) kind= ;;
    esac
}}

_govuk_imds_offer() {{  # $1: a kind of word
    case $1 in
        (environments|source-profiles) compadd -- ${{(f)"$(${{~words[1]}} {names} $1 2>/dev/null)"}} ;;
        (files) _files ;;
        (commands) _command_names -e ;;
        (choices:*) compadd -- ${{(s:,:)${{1#choices:}}}} ;;
    esac
}}

_govuk_imds() {{
    local cmdpath= kind= word cur=${{words[CURRENT]}} prev=${{words[CURRENT-1]}}
    local -a subcommands opts positionals
    integer i n=0 dashdash=0
    _govuk_imds_spec ''
    for (( i = 2; i < CURRENT; i++ )); do
        word=${{words[i]}}
        if (( dashdash )); then (( n++ )); continue; fi
        case $word in
            (--) dashdash=1; continue ;;
            (-*) _govuk_imds_value "$cmdpath" "$word"; [[ -n $kind ]] && (( i++ )); continue ;;
        esac
        if (( n == 0 )) && (( ${{subcommands[(I)${{(b)word}}:*]}} )); then
            cmdpath=${{cmdpath:+$cmdpath }}$word; _govuk_imds_spec "$cmdpath"; continue
        fi
        (( n++ ))
    done
    if (( ! dashdash )) && [[ $prev == -* ]]; then
        _govuk_imds_value "$cmdpath" "$prev"
        if [[ -n $kind ]]; then _govuk_imds_offer "$kind"; return; fi
    fi
    if (( ! dashdash )) && [[ $cur == -* ]]; then _describe -t options option opts; return; fi
    if (( ${{#subcommands}} )) && (( n == 0 )); then _describe -t commands command subcommands; return; fi
    (( ${{#positionals}} )) || return 1
    (( n < ${{#positionals}} )) || n=$(( ${{#positionals}} - 1 ))
    _govuk_imds_offer "${{positionals[n + 1]}}"
}}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _govuk_imds "$@"
else
    compdef _govuk_imds {program}
fi
"""


FISH_TEMPLATE = r"""# fish completion for {program}. Load it from ~/.config/fish/config.fish:
#     {program} completion fish | source
# (or save it as ~/.config/fish/completions/{program}.fish). Written by `{program} completion fish` from the
# command's own parser; environment and source-profile names are read from your AWS config when you press TAB.

function __govuk_imds_spec --argument-names cmdpath
    switch $cmdpath
{specs}
        case '*'
            set -g __govuk_imds_subcommands
            set -g __govuk_imds_options
            set -g __govuk_imds_positionals
    end
end

function __govuk_imds_value --argument-names cmdpath option
    switch "$cmdpath|$option"
{values}
    end
end

function __govuk_imds_offer --argument-names kind cur program
    switch $kind
        case environments source-profiles
            $program {names} $kind 2>/dev/null
        case files
            __fish_complete_path $cur
        case commands
            __fish_complete_command $cur
        case 'choices:*'
            string split , -- (string replace choices: '' -- $kind)
    end
end

function __govuk_imds_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmdpath ''
    set -l n 0
    set -l dashdash 0
    set -l skip 0
    __govuk_imds_spec ''
    for word in $tokens[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if test $dashdash = 1
            set n (math $n + 1)
            continue
        end
        switch $word
            case --
                set dashdash 1
                continue
            case '-*'
                test -n "$(__govuk_imds_value "$cmdpath" $word)"; and set skip 1
                continue
        end
        set -l names (string replace -r '\t.*' '' -- $__govuk_imds_subcommands)
        if test $n = 0; and contains -- $word $names
            set cmdpath (string trim -- "$cmdpath $word")
            __govuk_imds_spec $cmdpath
            continue
        end
        set n (math $n + 1)
    end
    if test $skip = 1
        __govuk_imds_offer (__govuk_imds_value "$cmdpath" $tokens[-1]) $cur $tokens[1]
        return
    end
    if test $dashdash = 0; and string match -q -- '-*' $cur
        string join \n -- $__govuk_imds_options
        return
    end
    if test (count $__govuk_imds_subcommands) -gt 0; and test $n = 0
        string join \n -- $__govuk_imds_subcommands
        return
    end
    set -l kinds $__govuk_imds_positionals
    test (count $kinds) -gt 0; or return
    set -l index (math "min($n + 1, $(count $kinds))")
    __govuk_imds_offer $kinds[$index] $cur $tokens[1]
end

complete -c {program} -f -a '(__govuk_imds_complete)'
"""


_BASH = _Syntax(
    BASH_TEMPLATE,
    spec="        {key}) subcommands={subcommands}; opts={options}; positionals='{positionals}' ;;",
    value="        {key}) kind={kind} ;;",
    quote=_single_quoted,
    words=lambda pairs: _single_quoted(" ".join(word for word, _ in pairs)),  # bash shows no descriptions
)
_ZSH = _Syntax(
    ZSH_TEMPLATE,
    spec="        ({key}) subcommands=({subcommands}); opts=({options}); positionals=({positionals}) ;;",
    value="        ({key}) kind={kind} ;;",
    quote=_single_quoted,
    words=lambda pairs: " ".join(_single_quoted(f"{word}:{_one_line(about)}") for word, about in pairs),
)
_FISH = _Syntax(
    FISH_TEMPLATE,
    spec=("        case {key}\n"
          "            set -g __govuk_imds_subcommands {subcommands}\n"
          "            set -g __govuk_imds_options {options}\n"
          "            set -g __govuk_imds_positionals {positionals}"),
    value="        case {key}\n            echo {kind}",
    quote=_fish_quoted,
    words=lambda pairs: " ".join(_fish_quoted(f"{word}\t{_one_line(about)}") for word, about in pairs),
)
