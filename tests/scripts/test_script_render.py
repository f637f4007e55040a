"""Rendering: every variant is valid bash, directives are complete, ordered and safely quoted."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from script_helpers import make_spec

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.scripts import (
    batch_job_paths,
    launcher_source,
    render_batch_script,
    render_job_script,
    render_secrets_env,
)
from vec_inf_flows.spec import ContainerSpec, LaunchSpec, SlurmResources

JOB_NAME = "SmolLM2-135M-vec-inf-0123abcd"
SECRET = "sk-very-secret-value-123"


def directives(script: str) -> list[tuple[str, str]]:
    """(key, raw value) of every #SBATCH line before the first command, in order."""
    found = []
    for line in script.splitlines()[1:]:
        if not line.startswith("#"):
            break
        if line.startswith("#SBATCH --"):
            key, _, value = line.removeprefix("#SBATCH --").partition("=")
            found.append((key, value))
        elif line == "#SBATCH hetjob":
            found.append(("hetjob", ""))
    return found


def bash_syntax_ok(script: str, tmp_path: Path) -> None:
    path = tmp_path / "check.slurm"
    path.write_text(script)
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def gpu_resources(**overrides: object) -> SlurmResources:
    base = SlurmResources(
        time="1-02:00:00",
        gpus_per_node=2,
        resource_type="l40s",
        partition="gpu",
        qos="normal",
        account="lab",
        exclude="node[1-2]",
        nodelist="node[3-4]",
        work_dir="/scratch/work",
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


VARIANTS: dict[str, LaunchSpec] = {
    "single": make_spec(resources=gpu_resources()),
    "multi-node": make_spec(resources=gpu_resources(num_nodes=3)),
    "container": make_spec(
        container=ContainerSpec("apptainer", "/images/vllm.sif", ("/data:/data",)),
        secret_env=(("VEC_INF_API_KEY", SECRET), ("HF_TOKEN", "hf_secret")),
    ),
    "sglang": make_spec(engine="sglang", secret_env=(("VEC_INF_API_KEY", SECRET),)),
    "sim": make_spec(engine="sim", engine_args=(("--max-model-len", 2048),)),
    "venv": make_spec(venv="/opt/vllm venv", env=(("HF_HUB_OFFLINE", "1"),)),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_is_valid_bash(name: str, tmp_path: Path) -> None:
    script = render_job_script(VARIANTS[name], JOB_NAME)
    assert script.startswith("#!/bin/bash\n#SBATCH ")
    bash_syntax_ok(script, tmp_path)


def test_batch_script_is_valid_bash(tmp_path: Path) -> None:
    specs = [VARIANTS["single"], VARIANTS["sglang"], VARIANTS["sim"]]
    bash_syntax_ok(render_batch_script(specs, "BATCH-x-0123abcd", "BATCH-x"), tmp_path)


def test_single_job_directives_are_complete_and_ordered() -> None:
    script = render_job_script(VARIANTS["single"], JOB_NAME)
    assert directives(script) == [
        ("job-name", JOB_NAME),
        ("partition", "gpu"),
        ("account", "lab"),
        ("qos", "normal"),
        ("time", "1-02:00:00"),
        ("nodes", "1"),
        ("cpus-per-task", "16"),
        ("mem", "64G"),
        ("gres", "gpu:l40s:2"),
        ("exclude", "node[1-2]"),
        ("nodelist", "node[3-4]"),
        ("chdir", "/scratch/work"),
        ("output", "/logs/smollm/SmolLM2-135M.%j/SmolLM2-135M.%j.out"),
        ("error", "/logs/smollm/SmolLM2-135M.%j/SmolLM2-135M.%j.err"),
    ]


def test_gres_forms_and_cpu_only_models() -> None:
    untyped = render_job_script(make_spec(resources=gpu_resources(resource_type=None)), JOB_NAME)
    assert ("gres", "gpu:2") in directives(untyped)
    cpu_only = dict(directives(render_job_script(make_spec(), JOB_NAME)))
    assert "gres" not in cpu_only
    assert "partition" not in cpu_only  # unset values leave no line (and no "None")


def test_multi_node_requests_one_task_per_node_and_runs_the_supervisor() -> None:
    script = render_job_script(VARIANTS["multi-node"], JOB_NAME)
    keys = [key for key, _ in directives(script)]
    assert keys.index("nodes") + 1 == keys.index("ntasks-per-node")
    assert ("ntasks-per-node", "1") in directives(script)
    exec_line = next(line for line in script.splitlines() if line.startswith("exec "))
    assert '"$JOB_DIR/nodes.py" head --mode native --head-node "$HEAD_NODE"' in exec_line
    assert '"$JOB_DIR/launcher.py" --job-dir "$JOB_DIR" --stem "$STEM"' in script
    assert "--distributed-executor-backend mp" in script and "ray" not in script
    ray = render_job_script(replace(VARIANTS["multi-node"], multi_node_mode="ray"), JOB_NAME)
    assert "head --mode ray" in ray and "--distributed-executor-backend ray" in ray
    single = render_job_script(VARIANTS["single"], JOB_NAME)
    assert "ntasks-per-node" not in single and "nodes.py" not in single
    assert "--distributed-executor-backend" not in single


def test_container_multi_node_tells_the_supervisor_the_prefix_length() -> None:
    spec = replace(VARIANTS["container"], resources=SlurmResources(time="01:00:00", num_nodes=2))
    script = render_job_script(spec, JOB_NAME)
    prefix = (
        "apptainer exec --containall --bind /weights/smollm2 --bind /data:/data /images/vllm.sif"
    )
    assert f"    {prefix} \\\n    vllm serve" in script
    assert f"--container-words {len(prefix.split())} \\\n" in script


def test_server_is_started_with_exec_through_the_launcher() -> None:
    script = render_job_script(VARIANTS["single"], JOB_NAME)
    exec_lines = [line for line in script.splitlines() if line.startswith("exec ")]
    assert len(exec_lines) == 1
    assert '"$JOB_DIR/launcher.py" --job-dir "$JOB_DIR" --stem "$STEM"' in exec_lines[0]
    assert "vllm serve /weights/smollm2 --served-model-name SmolLM2-135M" in script
    assert "--host 0.0.0.0 --port '{port}'" in script


def test_values_with_spaces_and_hash_are_quoted_for_sbatch() -> None:
    spec = make_spec(resources=gpu_resources(work_dir='/scratch/my work#1 "x"'))
    found = directives(render_job_script(spec, JOB_NAME))
    assert ("chdir", '"/scratch/my work#1 \\"x\\""') in found


def test_percent_in_user_paths_cannot_become_a_slurm_pattern() -> None:
    spec = make_spec(log_dir="/logs/100%j")
    output = dict(directives(render_job_script(spec, JOB_NAME)))["output"]
    assert output == "/logs/100%%j/smollm/SmolLM2-135M.%j/SmolLM2-135M.%j.out"


@pytest.mark.parametrize(
    "spec",
    [
        make_spec(model_name="evil\n#SBATCH --uid=0"),
        make_spec(log_dir="/logs\nrm -rf /"),
        make_spec(resources=gpu_resources(partition="gpu\n#SBATCH --qos=high")),
        make_spec(resources=gpu_resources(partition="gpu hetjob")),
        make_spec(venv="/opt/venv\ntouch PWNED"),
        make_spec(env=(("BAD NAME", "x"),)),
        make_spec(engine="sglang", resources=gpu_resources(num_nodes=2)),
    ],
)
def test_unsafe_or_unsupported_input_is_refused(spec: LaunchSpec) -> None:
    with pytest.raises(ConfigError):
        render_job_script(spec, JOB_NAME)


def test_secrets_never_appear_in_any_script() -> None:
    for spec in VARIANTS.values():
        assert SECRET not in render_job_script(spec, JOB_NAME)
    secret_specs = [VARIANTS["container"], VARIANTS["sglang"]]
    batch = render_batch_script(secret_specs, "BATCH-x-0123abcd", "BATCH-x")
    assert SECRET not in batch and "hf_secret" not in batch


def test_api_key_handling_per_engine() -> None:
    vllm = render_job_script(VARIANTS["container"], JOB_NAME)
    assert 'export VLLM_API_KEY="$VEC_INF_API_KEY"' in vllm
    assert 'export APPTAINERENV_VLLM_API_KEY="$VLLM_API_KEY"' in vllm
    assert "--api-key" not in vllm
    sglang = render_job_script(VARIANTS["sglang"], JOB_NAME)
    assert '--api-key "${VEC_INF_API_KEY}"' in sglang
    assert "VLLM_API_KEY" not in sglang
    no_key = render_job_script(VARIANTS["single"], JOB_NAME)
    assert "VLLM_API_KEY" not in no_key and "--api-key" not in no_key


def test_container_prefix_binds_weights_and_user_paths() -> None:
    script = render_job_script(VARIANTS["container"], JOB_NAME)
    assert (
        "apptainer exec --containall --bind /weights/smollm2 --bind /data:/data "
        "/images/vllm.sif" in script
    )
    gpu = replace(VARIANTS["container"], resources=gpu_resources())
    assert "apptainer exec --nv --containall" in render_job_script(gpu, JOB_NAME)


def test_sim_engine_runs_the_simulator_module_with_engine_args() -> None:
    script = render_job_script(VARIANTS["sim"], JOB_NAME)
    assert re.search(r"-m vec_inf_flows\.sim serve /weights/smollm2 --served-model-name", script)
    assert "--max-model-len 2048" in script


def test_batch_has_one_resource_group_per_model() -> None:
    first = make_spec(resources=gpu_resources(partition="a40", work_dir="/w"))
    second = make_spec(
        model_name="Qwen-7B",
        model_family="qwen",
        resources=SlurmResources(time="02:00:00", partition="cpu", cpus_per_task=4),
    )
    script = render_batch_script([first, second], "BATCH-x-0123abcd", "BATCH-x")
    found = directives(script)
    split = found.index(("hetjob", ""))
    leader, component = dict(found[:split]), dict(found[split + 1 :])
    assert leader["partition"] == "a40" and leader["chdir"] == "/w"
    assert leader["output"] == "/logs/BATCH-x.%j/BATCH-x.%j.out"
    assert component == {
        "job-name": "BATCH-x-0123abcd",
        "partition": "cpu",
        "time": "02:00:00",
        "nodes": "1",
        "cpus-per-task": "4",
        "mem": "64G",
    }
    assert "srun --het-group=0" in script and "srun --het-group=1" in script
    assert script.rstrip().endswith('exit "$STATUS"')


def test_batch_refuses_multi_node_members_and_empty_lists() -> None:
    with pytest.raises(ConfigError, match="single-node"):
        render_batch_script([VARIANTS["multi-node"]], "B", "B")
    with pytest.raises(ConfigError):
        render_batch_script([], "B", "B")


def test_batch_paths_and_launcher_source() -> None:
    paths = batch_job_paths("/logs", "BATCH-x", "77")
    assert paths.out == Path("/logs/BATCH-x.77/BATCH-x.77.out")
    assert "def main(" in launcher_source()


def test_secrets_file_round_trips_through_bash(tmp_path: Path) -> None:
    value = 'a\'b "c" $(touch PWNED) `x` ;\nline2'
    secrets = tmp_path / ".secrets.env"
    secrets.write_text(render_secrets_env([("HF_TOKEN", value)]))
    result = subprocess.run(
        ["bash", "-c", 'source "$1"; printf %s "$HF_TOKEN"', "bash", str(secrets)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.stdout == value
    assert not (tmp_path / "PWNED").exists()
