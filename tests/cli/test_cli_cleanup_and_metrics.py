"""``cleanup`` (vec-inf's log cleanup) and ``metrics`` before READY, through the CLI, on the
local cluster with the simulator."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from testkit import Sandbox

MODEL = "SmolLM2-135M-Instruct"


def _old_folder(logs: Path, family: str, name: str, job_id: int) -> Path:
    folder = logs / family / f"{name}.{job_id}"
    folder.mkdir(parents=True)
    (folder / f"{name}.{job_id}.out").write_text("old log\n")
    return folder


def test_cleanup_keeps_live_jobs_and_speaks_like_vecinf(sandbox: Sandbox) -> None:
    live = sandbox.client.launch(MODEL, engine="sim", time="00:05:00")
    old = _old_folder(sandbox.logs, "SmolLM2", MODEL, 3)
    other = _old_folder(sandbox.logs, "Other", "Other-1B", 4)
    dry = sandbox.cli("cleanup", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "Dry run: 2 directories would be deleted:",
        f"  - {other}",
        f"  - {old}",
        "Kept 1 folder(s) of jobs still running:",
        f"  - {live.job_dir}",
    ]
    family = sandbox.cli("cleanup", "--model-family", "Other")
    assert family.stdout.splitlines()[0] == "Deleted 1 log directory(ies)."
    assert not other.exists() and old.exists()
    everything = sandbox.cli("cleanup", "--json-mode")
    assert json.loads(everything.stdout) == {
        "dry_run": False,
        "deleted": [str(old)],
        "kept_running": [live.job_dir],
    }
    assert sandbox.client.status(live.job_id).model_name == MODEL  # its folder is intact
    none = sandbox.cli("cleanup", "--before-job-id", "2")
    assert none.stdout.splitlines()[0] == "No matching log directories were deleted."
    missing = sandbox.cli("cleanup", "--log-dir", str(sandbox.logs / "nope"))
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"Error: Log directory does not exist: {sandbox.logs / 'nope'}"


def test_metrics_before_ready_polls_and_says_why(sandbox: Sandbox) -> None:
    launched = sandbox.client.launch(
        MODEL, engine="sim", time="00:05:00", vllm_args="--sim-startup-delay=4"
    )
    once = sandbox.cli("metrics", launched.job_id, "--once")
    assert once.returncode == 1 and len(once.stderr.strip().splitlines()) == 1
    assert "no metrics until the server is READY" in once.stderr
    follow = sandbox.start_cli(
        "metrics", launched.job_id, "--json-mode", "--interval", "0.5", stderr=subprocess.PIPE
    )
    frames = []
    try:
        deadline = time.monotonic() + 90
        assert follow.stdout is not None
        for line in follow.stdout:
            frames.append(json.loads(line))
            if frames[-1]["model_status"] == "READY" or time.monotonic() > deadline:
                break
    finally:
        follow.terminate()
        follow.wait(timeout=30)
    waiting, ready = frames[0], frames[-1]
    assert waiting["model_status"] in ("PENDING", "LAUNCHING") and waiting["metrics"] is None
    assert "no metrics until the server is READY" in waiting["detail"]
    assert ready["model_status"] == "READY" and ready["metrics"]["requests_running"] == 0.0
    sandbox.client.shutdown(launched.job_id)
    deadline = time.monotonic() + 60
    while launched.job_id in sandbox.squeue_ids():
        assert time.monotonic() < deadline
        time.sleep(0.5)
    ended = sandbox.cli("metrics", launched.job_id)
    assert ended.returncode == 1 and "is SHUTDOWN" in ended.stderr and "no metrics" in ended.stderr
