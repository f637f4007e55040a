"""The job-side launcher with real child processes, real ports and real signals."""

from __future__ import annotations

import ast
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from script_helpers import wait_for

from vec_inf_flows.scripts import launcher_source

STEM = "model.77"

# A tiny engine: serves HTTP on the port it is given. In "steal" mode its first run loses the
# port race for real: a second socket grabs the port first, so its own bind fails (Errno 98).
ENGINE = """
import http.server, os, signal, socket, sys
port, marker_dir, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def record(signum, frame):
    open(os.path.join(marker_dir, "got-%d" % signum), "w").close()
signal.signal(signal.SIGUSR1, record)
if mode == "steal-always" or (mode == "steal-once" and not os.path.exists(
        os.path.join(marker_dir, "stolen"))):
    open(os.path.join(marker_dir, "stolen"), "w").close()
    thief = socket.socket(); thief.bind(("", port)); thief.listen()
    socket.socket().bind(("", port))
server = http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
print("serving on", port, flush=True)
server.serve_forever()
"""


def start_launcher(job_dir: Path, *command: str) -> subprocess.Popen[bytes]:
    """Run the launcher as Slurm would: stdout/stderr are the job's .out/.err files."""
    job_dir.mkdir(exist_ok=True)
    launcher = job_dir / "launcher.py"
    launcher.write_text(launcher_source())
    with (
        open(job_dir / f"{STEM}.out", "ab") as out,
        open(job_dir / f"{STEM}.err", "ab") as err,
    ):
        return subprocess.Popen(
            [
                sys.executable,
                str(launcher),
                "--job-dir",
                str(job_dir),
                "--stem",
                STEM,
                "--host-name",
                "127.0.0.1",
                "--",
                *command,
            ],
            stdout=out,
            stderr=err,
        )


def engine_command(tmp_path: Path, mode: str = "normal") -> list[str]:
    script = tmp_path / "engine.py"
    script.write_text(ENGINE)
    return [sys.executable, str(script), "{port}", str(tmp_path), mode]


def read_record(job_dir: Path) -> dict[str, object]:
    """The job's JSON, or {} before the launcher has written it."""
    path = job_dir / f"{STEM}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    assert isinstance(data, dict)
    return data


def serving(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_records_address_serves_forwards_signals_and_writes_exit(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (job_dir / f"{STEM}.json").write_text(json.dumps({"model_name": "m", "slurm_job_id": "77"}))
    launcher = start_launcher(job_dir, *engine_command(tmp_path))
    try:
        wait_for(lambda: "server_address" in read_record(job_dir))
        record = read_record(job_dir)
        assert record["model_name"] == "m" and record["slurm_job_id"] == "77"  # kept
        assert record["launcher_pid"] == launcher.pid
        assert record["server_address"] == f"http://127.0.0.1:{record['port']}/v1"
        url = f"http://127.0.0.1:{record['port']}/"
        wait_for(lambda: serving(url))
        assert [p.name for p in job_dir.iterdir() if p.name.endswith(".tmp")] == []

        launcher.send_signal(signal.SIGUSR1)  # forwarded; the engine keeps running
        wait_for(lambda: (tmp_path / f"got-{int(signal.SIGUSR1)}").exists())
        assert launcher.poll() is None

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=15) == -signal.SIGTERM  # leaves the way the engine did
    finally:
        launcher.kill()
    assert (job_dir / "engine.exit").read_text() == f"{-signal.SIGTERM}\n"
    assert not serving(url)  # the engine went with it: no orphan


def test_exit_code_is_recorded_and_returned(tmp_path: Path) -> None:
    launcher = start_launcher(tmp_path / "job", sys.executable, "-c", "raise SystemExit(3)")
    assert launcher.wait(timeout=15) == 3
    assert (tmp_path / "job" / "engine.exit").read_text() == "3\n"
    assert read_record(tmp_path / "job")["launch_attempt"] == 1  # no retry for other failures


def test_an_engine_killed_outright_is_reported_as_that_signal(tmp_path: Path) -> None:
    suicide = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    launcher = start_launcher(tmp_path / "job", sys.executable, "-c", suicide)
    assert launcher.wait(timeout=15) == -signal.SIGKILL
    assert (tmp_path / "job" / "engine.exit").read_text() == f"{-signal.SIGKILL}\n"


def test_retries_on_a_new_port_when_the_port_was_taken(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    launcher = start_launcher(job_dir, *engine_command(tmp_path, "steal-once"))
    try:
        wait_for(lambda: read_record(job_dir).get("launch_attempt") == 2)
        record = read_record(job_dir)
        wait_for(lambda: serving(f"http://127.0.0.1:{record['port']}/"))
        err = (job_dir / f"{STEM}.err").read_text()
        assert "Address already in use" in err
        assert "retrying on a new port" in err
    finally:
        launcher.terminate()
        launcher.wait(timeout=15)


def test_gives_up_after_three_lost_races(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    launcher = start_launcher(job_dir, *engine_command(tmp_path, "steal-always"))
    assert launcher.wait(timeout=30) == 1
    assert read_record(job_dir)["launch_attempt"] == 3
    assert (job_dir / "engine.exit").read_text() == "1\n"


def test_missing_engine_is_reported_as_127(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    launcher = start_launcher(job_dir, str(tmp_path / "no-such-engine"), "--port", "{port}")
    assert launcher.wait(timeout=15) == 127
    assert (job_dir / "engine.exit").read_text() == "127\n"
    assert "cannot start the engine" in (job_dir / f"{STEM}.err").read_text()


def test_free_port_mode_prints_a_bindable_port(tmp_path: Path) -> None:
    launcher = tmp_path / "launcher.py"
    launcher.write_text(launcher_source())
    result = subprocess.run(
        [sys.executable, str(launcher), "--free-port"], capture_output=True, text=True, check=True
    )
    assert 0 < int(result.stdout) < 65536


def test_launcher_parses_as_python_3_8() -> None:
    """It runs on compute nodes with whatever Python they have."""
    ast.parse(launcher_source(), feature_version=(3, 8))
    imported: set[str] = set()
    for node in ast.walk(ast.parse(launcher_source())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
