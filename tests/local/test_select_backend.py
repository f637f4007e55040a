"""Choosing the backend: by name, by $VEC_INF_BACKEND, or by whether Slurm answers."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from vec_inf_flows.backends.local import LocalBackend
from vec_inf_flows.backends.select import backend_name, select_backend, slurm_reachable
from vec_inf_flows.backends.slurm.backend import SlurmBackend
from vec_inf_flows.errors import ConfigError


def _path_with(tmp_path: Path, **commands: str) -> str:
    """A PATH holding only stub commands (bash bodies): the seam is "what is installed"."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in commands.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(bin_dir)


@pytest.fixture(autouse=True)
def _no_backend_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VEC_INF_BACKEND", raising=False)
    monkeypatch.setenv("VEC_INF_FLOWS_HOME", str(tmp_path / "home"))


def test_explicit_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEC_INF_BACKEND", "local")  # an explicit name wins over the variable

    assert isinstance(select_backend("slurm"), SlurmBackend)
    assert isinstance(select_backend("local"), LocalBackend)


def test_environment_variable_decides_when_no_name_or_auto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VEC_INF_BACKEND", "Local")

    assert backend_name() == backend_name("auto") == "local"
    local = select_backend()
    assert isinstance(local, LocalBackend)
    assert local.state_dir.parent.name == "home"


@pytest.mark.parametrize(
    ("name", "env", "message"),
    [
        ("pbs", None, "Unknown backend 'pbs'"),
        (None, "k8s", r"Unknown \$VEC_INF_BACKEND 'k8s'"),
    ],
)
def test_unknown_names_are_config_errors(
    monkeypatch: pytest.MonkeyPatch, name: str | None, env: str | None, message: str
) -> None:
    if env is not None:
        monkeypatch.setenv("VEC_INF_BACKEND", env)

    with pytest.raises(ConfigError, match=message):
        select_backend(name)


def test_auto_without_sbatch_is_local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, sinfo="exit 0"))

    assert isinstance(select_backend(), LocalBackend)


def test_auto_with_an_answering_controller_is_slurm(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, sbatch="exit 0", sinfo="echo debug"))

    assert isinstance(select_backend("auto"), SlurmBackend)


def test_auto_without_config_and_a_controller_that_is_down_is_local(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    down = "echo 'Unable to contact slurm controller' >&2; exit 1"
    monkeypatch.setenv("PATH", _path_with(tmp_path, sbatch="exit 0", sinfo=down))
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "no-such-slurm.conf"))

    assert backend_name() == "local"


def test_auto_with_a_config_file_is_slurm_even_while_the_controller_is_down(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The user should hear "controller unreachable", not get a local job by surprise."""
    down = "echo 'Unable to contact slurm controller' >&2; exit 1"
    monkeypatch.setenv("PATH", _path_with(tmp_path, sbatch="exit 0", sinfo=down))
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=test\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))

    assert backend_name() == "slurm"


def test_a_controller_that_does_not_answer_in_time_is_not_reachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, sbatch="exit 0", sinfo="exec sleep 30"))
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "no-such-slurm.conf"))

    assert slurm_reachable(timeout=0.2) is False
