"""Quoting for the two parsers a job script meets: sbatch's ``#SBATCH`` tokenizer and bash.

Values are validated upstream, but this is the last line of defence: anything a user controls
passes through here, so nothing they type can become a second option, a directive or a command.
"""

from __future__ import annotations

import re
import shlex

from vec_inf_flows.errors import ConfigError, quote

# Characters sbatch reads literally without quotes (no spaces, quotes, backslashes or '#').
_SBATCH_PLAIN = re.compile(r"[A-Za-z0-9_.,:/=+@%\[\]-]+")
# sbatch treats a directive line mentioning these words as a het-job separator.
_SBATCH_SEPARATOR_WORDS = ("hetjob", "packjob")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def refuse_control_chars(what: str, value: str) -> None:
    """A newline could start a new directive or command; NUL truncates C strings."""
    if any(char in value for char in ("\n", "\r", "\0")):
        raise ConfigError(f"{what} must not contain a newline or NUL character: {quote(value)}")


def sbatch_value(what: str, value: str) -> str:
    """Quote one ``#SBATCH --key=VALUE`` value for sbatch's own tokenizer.

    sbatch splits directive lines on whitespace, strips single/double quotes, honours
    backslash escapes and treats an unquoted ``#`` as the start of a comment.
    """
    refuse_control_chars(what, value)
    if not value:
        raise ConfigError(f"{what} must not be empty.")
    lowered = value.lower()
    for word in _SBATCH_SEPARATOR_WORDS:
        if word in lowered:
            raise ConfigError(f"{what} must not contain the Slurm keyword {word!r}: {quote(value)}")
    if _SBATCH_PLAIN.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def slurm_filename_literal(text: str) -> str:
    """Escape ``%`` so Slurm's filename patterns (%j, %N ...) only come from us."""
    return text.replace("%", "%%")


def shell_word(value: str) -> str:
    """One bash word that expands to exactly ``value``."""
    if "\0" in value:
        raise ConfigError(f"Value must not contain a NUL character: {quote(value)}")
    return shlex.quote(value)


def env_name(name: str) -> str:
    """Variable names are written unquoted (``export NAME=...``), so they must be identifiers."""
    if not _ENV_NAME.fullmatch(name):
        raise ConfigError(f"Invalid environment variable name {quote(name)}.")
    return name
