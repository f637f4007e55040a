"""Rendered scripts actually run under bash: hostile values stay inert and arrive intact.

Only the engines and ``srun`` are stubs (they record argv and environment); bash, the job-side
launcher and the job directory are real.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from script_helpers import JOB_ID, NODE, RunScript, StubBin, make_spec, prepare_job_dir

from vec_inf_flows.scripts import render_batch_script, render_job_script, render_secrets_env
from vec_inf_flows.spec import ContainerSpec, SlurmResources

HOSTILE = "x; touch PWNED; $(touch PWNED) `touch PWNED` 'q' \"dq\" \\ end"
SECRET = "sk-secret-$(touch PWNED)-'quoted'"


def assert_nothing_executed(root: Path) -> None:
    assert not list(root.rglob("PWNED*")), "a hostile value was executed"


def test_hostile_values_are_inert_and_reach_the_engine_intact(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    log_dir = tmp_path / "logs $(touch PWNED)"
    venv = tmp_path / "venv `touch PWNED`; x"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text("export VENV_MARK=activated\n")
    spec = make_spec(
        model_name="m$(touch PWNED)'`;",
        model_family="fam ily",
        model_path=f"/weights/{HOSTILE}",
        log_dir=str(log_dir),
        venv=str(venv),
        env=(("USER_VALUE", HOSTILE), ("USER_MULTILINE", "line1\nline2 $(touch PWNED)")),
        engine_args=(
            ("--chat-template", HOSTILE),
            ("--override-generation-config", {"stop": ["$(touch PWNED)", "`x`"]}),
            ("--enforce-eager", True),
        ),
        secret_env=(("VEC_INF_API_KEY", SECRET),),
    )
    job_dir = log_dir / "fam ily" / f"{spec.model_name}.{JOB_ID}"
    prepare_job_dir(job_dir, render_secrets_env(spec.secret_env))

    script = render_job_script(spec, "job")
    result = run_script(script)

    assert result.returncode == 0, result.stderr
    assert_nothing_executed(tmp_path)
    assert SECRET not in script
    [call] = stubs.calls("vllm")
    assert call["argv"][:2] == ["serve", f"/weights/{HOSTILE}"]
    assert call["argv"][2:4] == ["--served-model-name", spec.model_name]
    port = call["argv"][call["argv"].index("--port") + 1]
    assert port.isdigit()
    assert call["argv"][8:] == [
        "--chat-template",
        HOSTILE,
        "--override-generation-config",
        '{"stop": ["$(touch PWNED)", "`x`"]}',
        "--enforce-eager",
    ]
    assert call["env"]["USER_VALUE"] == HOSTILE
    assert call["env"]["USER_MULTILINE"] == "line1\nline2 $(touch PWNED)"
    assert call["env"]["VENV_MARK"] == "activated"
    assert call["env"]["VLLM_API_KEY"] == SECRET
    record = json.loads((job_dir / f"{spec.model_name}.{JOB_ID}.json").read_text())
    assert record["server_address"] == f"http://{NODE}:{port}/v1"
    assert (job_dir / "engine.exit").read_text() == "0\n"


def test_missing_api_key_fails_before_the_engine_starts(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    spec = make_spec(log_dir=str(tmp_path / "logs"), secret_env=(("VEC_INF_API_KEY", "k"),))
    prepare_job_dir(tmp_path / "logs" / "smollm" / f"SmolLM2-135M.{JOB_ID}")  # no secrets file
    result = run_script(render_job_script(spec, "job"))
    assert result.returncode == 1
    assert "VEC_INF_API_KEY is not set" in result.stderr
    assert stubs.calls("vllm") == []


def test_sglang_gets_the_key_as_an_argument_expanded_at_run_time(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    spec = make_spec(
        engine="sglang", log_dir=str(tmp_path / "logs"), secret_env=(("VEC_INF_API_KEY", SECRET),)
    )
    job_dir = tmp_path / "logs" / "smollm" / f"SmolLM2-135M.{JOB_ID}"
    prepare_job_dir(job_dir, render_secrets_env(spec.secret_env))
    result = run_script(render_job_script(spec, "job"))
    assert result.returncode == 0, result.stderr
    [call] = stubs.calls("python3")
    assert call["argv"][:4] == ["-m", "sglang.launch_server", "--model-path", "/weights/smollm2"]
    assert call["argv"][-2:] == ["--api-key", SECRET]
    assert_nothing_executed(tmp_path)


def test_container_mode_passes_secrets_by_environment_not_argv(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    stubs.add("apptainer")
    spec = make_spec(
        log_dir=str(tmp_path / "logs"),
        container=ContainerSpec("apptainer", "/images/v.sif", (f"/data/{HOSTILE}",)),
        secret_env=(("VEC_INF_API_KEY", SECRET), ("HF_TOKEN", "hf-token")),
    )
    job_dir = tmp_path / "logs" / "smollm" / f"SmolLM2-135M.{JOB_ID}"
    prepare_job_dir(job_dir, render_secrets_env(spec.secret_env))
    result = run_script(render_job_script(spec, "job"))
    assert result.returncode == 0, result.stderr
    [call] = stubs.calls("apptainer")
    assert call["argv"][:7] == [
        "exec",
        "--containall",
        "--bind",
        "/weights/smollm2",
        "--bind",
        f"/data/{HOSTILE}",
        "/images/v.sif",
    ]
    assert call["argv"][7:9] == ["vllm", "serve"]
    assert SECRET not in " ".join(call["argv"])
    assert call["env"]["APPTAINERENV_VLLM_API_KEY"] == SECRET
    assert call["env"]["APPTAINERENV_HF_TOKEN"] == "hf-token"
    assert_nothing_executed(tmp_path)


def test_batch_components_run_with_their_own_env_logs_and_job_dirs(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    log_dir = tmp_path / "logs"
    first = make_spec(log_dir=str(log_dir), env=(("USER_WHO", "first $(touch PWNED)"),))
    second = make_spec(
        model_name="Qwen-7B",
        model_family="qwen",
        engine="sglang",
        log_dir=str(log_dir),
        resources=SlurmResources(time="01:00:00", partition="other"),
        env=(("USER_WHO", "second"),),
        engine_args=(("--mem-fraction-static", 0.8),),
    )
    dirs = [
        prepare_job_dir(log_dir / "smollm" / f"SmolLM2-135M.{JOB_ID}+0"),
        prepare_job_dir(log_dir / "qwen" / f"Qwen-7B.{JOB_ID}+1"),
    ]
    script = render_batch_script([first, second], "BATCH-x", "BATCH-x")
    result = run_script(script)

    assert result.returncode == 0, result.stderr
    assert_nothing_executed(tmp_path)
    [vllm] = stubs.calls("vllm")
    [sglang] = stubs.calls("python3")
    assert vllm["env"]["USER_WHO"] == "first $(touch PWNED)"
    assert sglang["env"]["USER_WHO"] == "second"
    assert sglang["argv"][-2:] == ["--mem-fraction-static", "0.8"]
    stems = [f"SmolLM2-135M.{JOB_ID}+0", f"Qwen-7B.{JOB_ID}+1"]
    for job_dir, stem in zip(dirs, stems, strict=True):
        assert "stub" in (job_dir / f"{stem}.out").read_text()  # srun --output went here
        record = json.loads((job_dir / f"{stem}.json").read_text())
        assert record["server_address"].startswith(f"http://{NODE}:")
        assert (job_dir / "engine.exit").read_text() == "0\n"


def test_batch_fails_when_any_server_fails(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    stubs.add("python3", "#!/bin/bash\nexit 3\n")
    log_dir = tmp_path / "logs"
    ok = make_spec(log_dir=str(log_dir))
    failing = replace(ok, model_name="Other", engine="sglang")
    prepare_job_dir(log_dir / "smollm" / f"SmolLM2-135M.{JOB_ID}+0")
    failed_dir = prepare_job_dir(log_dir / "smollm" / f"Other.{JOB_ID}+1")
    result = run_script(render_batch_script([ok, failing], "B", "B"))
    assert result.returncode == 3
    assert (failed_dir / "engine.exit").read_text() == "3\n"
