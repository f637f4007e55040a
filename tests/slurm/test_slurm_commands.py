"""Argument lists: every value is one argv item, whatever it contains."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from vec_inf_flows.backends.slurm.commands import (
    MAX_IDS_PER_CALL,
    SQUEUE_FORMAT,
    SlurmCommands,
    chunks,
    slurm_time,
)
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.jobs import JobId

HOSTILE_NAMES = [
    "a;rm -rf ~",
    "$(touch pwned)",
    "`id`",
    'it\'s "quoted"',
    "two  spaces and\ttab",
    "--partition=evil",
    "x|y",
    "ünïcode-名前",
]

commands = SlurmCommands()


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_job_name_is_one_argv_item(name: str) -> None:
    argv = commands.submit(name, hold=True)
    assert argv == ["sbatch", "--parsable", f"--job-name={name}", "--hold"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_value_reaches_a_real_process_unchanged(name: str, tmp_path: Path) -> None:
    # Run the built argv with a stand-in program: no shell ever interprets the value.
    echo = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]
    argv = commands.queue_mine(name)
    out = subprocess.run(
        [*echo, *argv[1:]], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert json.loads(out.stdout) == argv[1:]
    assert list(tmp_path.iterdir()) == []  # nothing was executed: no file "pwned"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b", ""])
def test_line_breaks_nul_and_empty_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="job name"):
        commands.submit(bad, hold=False)
    with pytest.raises(ConfigError):
        commands.queue_mine(bad)
    with pytest.raises(ConfigError):
        commands.accounting(datetime.now(UTC), job_name=bad)


def test_submit_flags() -> None:
    assert commands.submit("n", hold=False) == ["sbatch", "--parsable", "--job-name=n"]
    assert commands.submit("n", hold=False, test_only=True)[-1] == "--test-only"


def test_squeue_by_ids_is_explicit_about_everything() -> None:
    argv = commands.queue_by_ids([JobId(12), JobId(7, 1)])
    assert argv == [
        "squeue",
        "--noheader",
        "--array",
        "--states=all",
        f"--Format={SQUEUE_FORMAT}",
        "--jobs=12,7+1",
    ]
    assert "--me" not in argv


def test_squeue_mine_and_by_name() -> None:
    assert commands.queue_mine()[-1] == "--me"
    assert commands.queue_mine("m-vec-inf-1")[-2:] == ["--me", "--name=m-vec-inf-1"]


def test_sacct_is_bounded_in_time_and_parsable() -> None:
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    argv = commands.accounting(since, [JobId(5), JobId(6)])
    assert argv[:5] == [
        "sacct",
        "--noheader",
        "--parsable2",
        "--allocations",
        "--starttime=2026-01-02T03:04:05",
    ]
    assert argv[-1] == "--jobs=5,6"
    assert argv[-2].startswith("--format=JobIDRaw,JobID,State,ExitCode,Reason,NodeList")
    assert argv[-2].endswith(",JobName")


def test_slurm_time_converts_to_utc() -> None:
    moment = datetime(2026, 1, 2, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert slurm_time(moment) == "2026-01-02T10:00:00"


def test_cancel_and_release() -> None:
    assert commands.cancel([JobId(3), JobId(4, 1)]) == ["scancel", "3", "4+1"]
    assert commands.release(JobId(9)) == ["scontrol", "release", "9"]


def test_command_paths_are_configurable() -> None:
    custom = SlurmCommands(sbatch="/opt/wrap/sbatch", squeue="/opt/slurm/bin/squeue")
    assert custom.submit("n", hold=True)[0] == "/opt/wrap/sbatch"
    assert custom.queue_mine()[0] == "/opt/slurm/bin/squeue"


def test_many_ids_are_chunked() -> None:
    ids = [JobId(n) for n in range(1, 2 * MAX_IDS_PER_CALL + 2)]
    parts = list(chunks(ids))
    assert [len(part) for part in parts] == [MAX_IDS_PER_CALL, MAX_IDS_PER_CALL, 1]
    assert [job for part in parts for job in part] == ids


def test_empty_id_list_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        commands.queue_by_ids([])
