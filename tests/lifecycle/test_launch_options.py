"""Bad lease, idle and health options are refused in one line before anything is submitted."""

from __future__ import annotations

import pytest
from lifecycle_helpers import MODEL, SIM_FLAGS, cli, one_error_line
from testkit import Sandbox


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--lease-lapse", "600"], "only apply with --wait"),
        (["--wait", "--lease-renew", "60", "--lease-lapse", "90"], "at least twice"),
        (["--idle-timeout", "0"], "--idle-timeout must be a positive"),
        (["--health-grace", "-1"], "--health-grace must be positive"),
    ],
)
def test_bad_watch_options_are_one_line(sandbox: Sandbox, flags: list[str], words: str) -> None:
    line = one_error_line(cli(sandbox, "launch", MODEL, *SIM_FLAGS, *flags))
    assert words in line
    assert sandbox.job_ids() == []
