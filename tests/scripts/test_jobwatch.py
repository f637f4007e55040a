"""The job-side watch under the real launcher, with the simulator as the engine.

Lease lapse, a released lease, a hung engine (SIGSTOP) and idleness, timed on the job's own
clock, with nothing but the job directory between the owner and the job.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from script_helpers import wait_for

from vec_inf_flows.lifecycle.lease import LeaseKeeper, LeasePolicy
from vec_inf_flows.scripts import launcher_source
from vec_inf_flows.scripts.jobwatch import activity_signature, is_busy
from vec_inf_flows.scripts.render import watch_source

STEM = "sim.9"


def start_watched(job_dir: Path, watch: dict[str, object]) -> subprocess.Popen[bytes]:
    """The launcher as the job script runs it, with ``jobwatch.py`` and ``watch.json`` beside."""
    job_dir.mkdir(exist_ok=True)
    (job_dir / "launcher.py").write_text(launcher_source())
    (job_dir / "jobwatch.py").write_text(watch_source())
    (job_dir / "watch.json").write_text(json.dumps(watch))
    engine = [sys.executable, "-m", "vec_inf_flows.sim", "serve", "sim-model"]
    engine += ["--port", "{port}", "--sim-startup-delay", "0", "--sim-ttft", "0.001"]
    launcher = [sys.executable, str(job_dir / "launcher.py"), "--job-dir", str(job_dir)]
    launcher += ["--stem", STEM, "--host-name", "127.0.0.1", "--"]
    with open(job_dir / f"{STEM}.err", "ab") as err, open(job_dir / f"{STEM}.out", "ab") as out:
        return subprocess.Popen(
            [*launcher, *engine],
            stdout=out,
            stderr=err,
        )


def port_of(job_dir: Path) -> int:
    wait_for(lambda: (job_dir / f"{STEM}.json").exists())
    return int(json.loads((job_dir / f"{STEM}.json").read_text())["port"])


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def engine_pid(launcher: subprocess.Popen[bytes]) -> int:
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_a_lapsed_lease_stops_the_engine_and_the_job_ends_cleanly(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    keeper = LeaseKeeper()
    job_dir.mkdir()
    keeper.hold(job_dir, LeasePolicy(renew_every=0.5, lapse_after=3))
    launcher = start_watched(job_dir, {"lease": {"lapse_after": 3}, "poll": 0.5})
    try:
        port = port_of(job_dir)
        wait_for(lambda: healthy(port))
        time.sleep(4)  # longer than the lapse: renewals keep it alive
        assert launcher.poll() is None and healthy(port)
        keeper.drop(job_dir)  # the owner "dies": no more renewals
        dropped = time.monotonic()
        assert launcher.wait(timeout=30) == 0  # a clean end, so Slurm says COMPLETED
        # The lapse runs from the last renewal, up to one renewal period before the drop.
        assert 3 - 0.5 <= time.monotonic() - dropped <= 3 + 0.75 + 5  # lapse + one tick + stop
    finally:
        keeper.close()
        launcher.kill()
    stopped = json.loads((job_dir / "stopped.json").read_text())
    assert stopped["cause"] == "lease"
    assert stopped["reason"].startswith("owner stopped renewing at ")
    assert int((job_dir / "engine.exit").read_text()) in (0, -signal.SIGTERM)  # a graceful stop
    assert not healthy(port)
    assert "[vec-inf-watch] stopping the engine" in (job_dir / f"{STEM}.err").read_text()


def test_a_released_lease_is_no_longer_enforced(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    with LeaseKeeper() as keeper:
        keeper.hold(job_dir, LeasePolicy(renew_every=0.5, lapse_after=2))
        launcher = start_watched(job_dir, {"lease": {"lapse_after": 2}, "poll": 0.5})
        try:
            port = port_of(job_dir)
            wait_for(lambda: healthy(port))
            keeper.release(job_dir)
            time.sleep(4)  # twice the lapse, with no renewal
            assert launcher.poll() is None and healthy(port)
            assert not (job_dir / "stopped.json").exists()
        finally:
            launcher.terminate()
            launcher.wait(timeout=15)


def test_a_hung_engine_is_recorded_after_the_grace_and_cleared_when_it_answers(
    tmp_path: Path,
) -> None:
    job_dir = tmp_path / "job"
    launcher = start_watched(job_dir, {"health_grace": 2, "poll": 0.5})
    marker = job_dir / "unresponsive.json"
    engine = None
    try:
        port = port_of(job_dir)
        wait_for(lambda: healthy(port))
        time.sleep(1)  # the watch has seen it healthy
        engine = engine_pid(launcher)
        os.kill(engine, signal.SIGSTOP)
        stopped_at = time.monotonic()
        wait_for(marker.exists, timeout=15)
        # The grace, plus up to two probes that time out (3 s each) and their ticks.
        assert 2 <= time.monotonic() - stopped_at <= 2 + 2 * (3 + 0.5) + 1
        record = json.loads(marker.read_text())
        assert record["grace"] == 2 and record["since"]
        os.kill(engine, signal.SIGCONT)
        wait_for(lambda: not marker.exists(), timeout=15)
        assert launcher.poll() is None  # hung is reported, not killed
    finally:
        if engine is not None:
            os.kill(engine, signal.SIGCONT)
        launcher.terminate()
        launcher.wait(timeout=15)


def test_an_idle_server_stops_and_requests_keep_it_alive(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    launcher = start_watched(job_dir, {"idle_timeout": 3, "poll": 0.5})
    try:
        port = port_of(job_dir)
        wait_for(lambda: healthy(port))
        for _ in range(4):  # a request every 1.5 s for 6 s: twice the idle timeout
            body = json.dumps({"model": "sim-model", "prompt": "hi", "max_tokens": 2}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/completions",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 200
            time.sleep(1.5)
        assert launcher.poll() is None
        assert launcher.wait(timeout=30) == 0
    finally:
        launcher.kill()
    stopped = json.loads((job_dir / "stopped.json").read_text())
    assert stopped["cause"] == "idle" and stopped["reason"].startswith("idle for 0.05 min")


def test_activity_is_read_from_the_engines_own_counters() -> None:
    idle = "\n".join(
        [
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            'vllm:request_success_total{finished_reason="stop",model_name="m"} 3.0',
            'vllm:request_success_total{finished_reason="length",model_name="m"} 2.0',
            'vllm:num_requests_running{model_name="m"} 0.0',
            'vllm:num_requests_waiting{model_name="m"} 0.0',
            'vllm:prompt_tokens_total{model_name="m"} 40.0',
        ]
    )
    signature = activity_signature(idle)
    assert signature is not None and signature[0] == 5.0 and not is_busy(signature)
    busy = idle.replace('running{model_name="m"} 0.0', 'running{model_name="m"} 2.0')
    busy_signature = activity_signature(busy)
    assert busy_signature is not None and is_busy(busy_signature)
    assert activity_signature("python_gc_objects_collected_total 1.0") is None


class Clock:
    """The watch's monotonic clock, moved by hand: the lease rules without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_lease_rule_on_the_jobs_own_clock(tmp_path: Path) -> None:
    from vec_inf_flows.lifecycle.lease import release_lease, write_lease
    from vec_inf_flows.scripts.jobwatch import Watch

    policy = LeasePolicy(renew_every=10, lapse_after=30)
    write_lease(tmp_path, 1, policy, "k")
    clock = Clock()
    watch = Watch(str(tmp_path), {"lease": {"lapse_after": 30}}, lambda: None, clock=clock)
    clock.now += 29
    watch.check()
    assert not watch.stopped.is_set()
    write_lease(tmp_path, 2, policy, "k")  # a renewal: the content changed
    clock.now += 20
    watch.check()
    clock.now += 29
    watch.check()
    assert not watch.stopped.is_set()  # 49 s after launch, 29 s after the renewal
    clock.now += 1
    watch.check()
    assert watch.stopped.is_set()
    reason = json.loads((tmp_path / "stopped.json").read_text())["reason"]
    assert reason.startswith("owner stopped renewing at ") and "lease of 30 s lapsed" in reason

    queued = tmp_path / "released-while-queued"
    queued.mkdir()
    release_lease(queued)
    late = Watch(str(queued), {"lease": {"lapse_after": 30}}, lambda: None, clock=clock)
    clock.now += 3600
    late.check()
    assert not late.stopped.is_set()


def test_the_client_and_the_job_side_name_the_protocol_files_alike() -> None:
    from vec_inf_flows.lifecycle import evidence
    from vec_inf_flows.scripts import jobwatch, nodes

    for name in ("WATCH_FILE", "LEASE_FILE", "STOPPED_FILE", "UNRESPONSIVE_FILE"):
        assert getattr(evidence, name) == getattr(jobwatch, name), name
    # The multi-node supervisor reads the stop record too (a stop on purpose is no node failure).
    assert nodes.STOPPED_FILE == jobwatch.STOPPED_FILE
