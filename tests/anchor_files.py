"""vec-inf 0.9.0's own files (its models.yaml, environment.yaml), read from the real package.

They are not copied into this repository: the benchmarks' venv (bench/.venv-anchor) has the
package, else pip downloads the wheel once into ~/.cache/vec-inf-flows-tests.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ANCHOR_VERSION = "0.9.0"
REPO = Path(__file__).resolve().parents[1]
_CACHE = Path.home() / ".cache" / "vec-inf-flows-tests" / f"vec-inf-{ANCHOR_VERSION}"


def anchor_file(relative: str) -> Path:
    """A file of the installed ``vec_inf`` package, e.g. ``config/models.yaml``."""
    for site in sorted((REPO / "bench" / ".venv-anchor" / "lib").glob("python*/site-packages")):
        candidate = site / "vec_inf" / relative
        if candidate.is_file():
            return candidate
    target = _CACHE / "vec_inf" / relative
    if not target.is_file():
        _fetch_wheel()
    return target


def anchor_cli() -> Path:
    """The ``vec-inf`` command of 0.9.0: the benchmarks' venv, else one made in the cache."""
    bench = REPO / "bench" / ".venv-anchor" / "bin" / "vec-inf"
    if bench.exists():
        return bench
    venv = _CACHE.parent / f"venv-anchor-{ANCHOR_VERSION}"
    command = venv / "bin" / "vec-inf"
    if not command.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, f"vec-inf=={ANCHOR_VERSION}"], check=True, timeout=900)
    return command


def _fetch_wheel() -> None:
    _CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            f"vec-inf=={ANCHOR_VERSION}",
            "-d",
            str(_CACHE),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = _CACHE.glob("vec_inf-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist() if name.startswith("vec_inf/")]
        archive.extractall(_CACHE, members)
