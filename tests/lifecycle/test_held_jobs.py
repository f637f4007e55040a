"""A held job a failed launch could neither release nor cancel is recorded, kept with its job
dir, and cancelled by the next command that reaches Slurm."""

from __future__ import annotations

import json
from pathlib import Path

from lifecycle_helpers import MODEL, SIM_FLAGS, cli, one_error_line, shim, slurm_state
from testkit import Sandbox


def test_a_held_job_left_by_a_failed_launch_is_cancelled_by_the_next_command(
    sandbox: Sandbox,
) -> None:
    shims = sandbox.home / "shims"
    shim(shims, "scontrol", "scontrol: error: Access/permission denied")
    broken = shim(shims, "scancel", "scancel: error: Access/permission denied")
    line = one_error_line(cli(sandbox, "launch", MODEL, *SIM_FLAGS, env=broken))
    assert "release" in line and "denied" in line.lower()

    journal = json.loads((sandbox.home / "held-jobs.json").read_text())
    (held,) = journal["jobs"]
    job_id, job_dir = held["job_id"], Path(held["job_dir"])
    assert slurm_state(job_id) == "PENDING"  # held, and still queued ...
    assert job_dir.is_dir() and (job_dir / "launcher.py").exists()  # ... with its job dir
    assert "denied" in held["reason"].lower()

    listing = cli(sandbox, "status", "--json-mode")  # any command that reaches Slurm
    assert listing.returncode == 0, listing.stderr
    assert slurm_state(job_id) in ("", "CANCELLED")
    assert not job_dir.exists()
    assert not (sandbox.home / "held-jobs.json").exists()
    assert job_id not in sandbox.job_ids()
