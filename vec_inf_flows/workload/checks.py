"""Checks on a run's files made before anything is launched.

A typo in a dataset path or an unwritable output found after the server became READY costs a
queue wait and a model load per attempt on GPUs; found here, it costs a stat and a few lines read.
"""

from __future__ import annotations

import os
from itertools import islice
from pathlib import Path

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.workload.reader import read_items

PEEK = 5  # records read to tell a request file from something else
# The run fills in the served model's name; the check only needs one to judge the records.
_ANY_MODEL = {"model": "served-model"}


def check_dataset(path: str | Path) -> Path:
    """The dataset exists, is readable, and at least one of its first records is a request.

    A single bad line is the workload's business (it gets an error record); a file none of
    whose first records parse is the wrong file, or the wrong format.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise ConfigError(f"Dataset {path} does not exist.")
    if not os.access(source, os.R_OK):
        raise ConfigError(f"Dataset {path} is not readable.")
    try:
        items = list(islice(read_items(source, defaults=_ANY_MODEL), PEEK))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Dataset {path} cannot be read: {error}") from None
    if not items:
        raise ConfigError(f"Dataset {path} has no records.")
    if all(item.request is None for item in items):
        raise ConfigError(
            f"Dataset {path} holds no valid request in its first {len(items)} records "
            f"({items[0].problem})."
        )
    return source


def check_work(dataset: object, workload: object, output: object) -> None:
    """What a run is asked to do must make sense: one of a dataset and a workload callable, and
    an output file only to hold a dataset's results."""
    if dataset is not None and workload is not None:
        raise ConfigError("Give either a dataset or a workload, not both.")
    if output is not None and dataset is None:
        raise ConfigError("An output file needs a dataset (--input) to fill it.")


def check_output_file(path: str | Path, *, make_directory: bool = False) -> None:
    """The results file can be written: its directory exists (or, with ``make_directory``, can
    be made) and is writable."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise ConfigError(f"Cannot write {path}: it is a directory.")
    if target.exists():
        if not os.access(target, os.W_OK):
            raise ConfigError(f"Cannot write {path}: the file is not writable.")
        return
    if make_directory:
        check_output_dir(target.parent)
        return
    if not target.resolve().parent.is_dir():
        raise ConfigError(f"Cannot write {path}: its directory does not exist.")
    _check_writable_dir(target.resolve().parent, str(path))


def check_output_dir(path: str | Path) -> None:
    """Result files can be created in the directory, which is made when missing."""
    directory = Path(path).expanduser().resolve()
    existing = next(
        (candidate for candidate in (directory, *directory.parents) if candidate.exists()),
        Path("/"),
    )
    if not existing.is_dir():
        raise ConfigError(f"Cannot write to {path}: {existing} is not a directory.")
    _check_writable_dir(existing, str(path))


def _check_writable_dir(directory: Path, what: str) -> None:
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"Cannot write {what}: {directory} is not writable.")
