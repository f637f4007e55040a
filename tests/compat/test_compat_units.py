"""The pure parts of the vec-inf compatibility: JSON shapes, job recognition, log cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vec_inf_flows import jobdir
from vec_inf_flows.compat import shapes
from vec_inf_flows.compat.models import ModelStatus, ModelType
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.jobs import JobPhase, JobRecord
from vec_inf_flows.logcleanup import CleanupFilter, clean_logs, live_job_ids
from vec_inf_flows.origin import JobOrigin, file_id, recognise
from vec_inf_flows.server_status import ServerStatus, StatusResponse

# The keys vec-inf 0.9.0 prints for ``launch --json-mode`` (its params dict; optional ones:
# partition, qos, hf_model, engine_inferred, config). Recorded from a real launch.
VECINF_LAUNCH_KEYS = {
    "model_name", "model_family", "model_variant", "model_type", "gpus_per_node", "num_nodes",
    "cpus_per_task", "mem_per_node", "vocab_size", "time", "resource_type", "exclude",
    "nodelist", "bind", "venv", "log_dir", "model_weights_parent_dir", "engine", "env",
    "engine_args", "account", "work_dir", "gres", "src_dir", "out_file", "err_file",
    "json_file", "slurm_job_id",
}  # fmt: skip


def our_record(tmp_path: Path) -> dict[str, object]:
    job_dir = tmp_path / "logs" / "Qwen3" / "Qwen3-8B.42"
    return {
        "model_name": "Qwen3-8B",
        "model_family": "Qwen3",
        "model_variant": "8B",
        "model_type": "LLM",
        "vocab_size": 151936,
        "resources": {
            "time": "01:00:00",
            "num_nodes": 1,
            "gpus_per_node": 2,
            "cpus_per_task": 16,
            "mem_per_node": "64G",
            "partition": "a40",
            "qos": None,
            "account": "lab",
            "resource_type": "a40",
            "exclude": None,
            "nodelist": None,
            "work_dir": None,
        },
        "engine": "vllm",
        "model_path": "/model-weights/Qwen3-8B",
        "log_dir": str(tmp_path / "logs"),
        "engine_args": {"--tensor-parallel-size": 2, "--max-model-len": 40960},
        "venv": "/opt/venvs/vllm",
        "container": None,
        "env": {"HF_HUB_OFFLINE": "1"},
        "secret_env": {"HF_TOKEN": "********"},
        "job_id": "42",
        "slurm_job_id": "42",
        "job_dir": str(job_dir),
        "out_file": str(job_dir / "Qwen3-8B.42.out"),
        "err_file": str(job_dir / "Qwen3-8B.42.err"),
    }


def test_launch_params_carry_every_vecinf_key_with_its_types(tmp_path: Path) -> None:
    params = shapes.launch_params(our_record(tmp_path))
    assert set(params) >= VECINF_LAUNCH_KEYS
    assert params["slurm_job_id"] == "42" and params["gpus_per_node"] == "2"
    assert params["gres"] == "gpu:a40:2" and params["partition"] == "a40"
    assert "qos" not in params  # vec-inf leaves unset optional fields out
    assert params["log_dir"] == str(tmp_path / "logs" / "Qwen3")
    assert params["json_file"].endswith("Qwen3-8B.42/Qwen3-8B.42.json")
    assert params["model_weights_parent_dir"] == "/model-weights"
    assert params["engine_args"]["--tensor-parallel-size"] == 2  # not stringified, as vec-inf
    assert params["env"] == {"HF_HUB_OFFLINE": "1", "HF_TOKEN": "********"}  # still redacted
    json.dumps(params)


def test_a_hub_model_is_named_as_hf_model(tmp_path: Path) -> None:
    record = {**our_record(tmp_path), "model_path": "Qwen/Qwen3-8B"}
    params = shapes.launch_params(record)
    assert params["hf_model"] == "Qwen/Qwen3-8B" and params["model_weights_parent_dir"] == ""


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            StatusResponse("7", "M", ServerStatus.READY, base_url="http://n:1/v1"),
            {"model_name": "M", "model_status": "READY", "base_url": "http://n:1/v1"},
        ),
        (
            StatusResponse("7", "M", ServerStatus.PENDING, pending_reason="Resources"),
            {
                "model_name": "M",
                "model_status": "PENDING",
                "base_url": "UNAVAILABLE",
                "pending_reason": "Resources",
            },
        ),
        (
            StatusResponse("7", "M", ServerStatus.FAILED, failed_reason="CUDA out of memory"),
            {
                "model_name": "M",
                "model_status": "FAILED",
                "base_url": "UNAVAILABLE",
                "failed_reason": "CUDA out of memory",
            },
        ),
    ],
)
def test_status_json_has_vecinf_keys_and_keeps_ours(
    status: StatusResponse, expected: dict[str, str]
) -> None:
    assert shapes.status_fields(status) == expected
    shown = shapes.status_json(status)
    assert {key: shown[key] for key in expected} == expected
    assert shown["job_id"] == "7" and shown["server_status"] == status.server_status.value


def test_status_response_offers_pydantics_read_api() -> None:
    status = StatusResponse.model_validate(
        {"job_id": "1", "model_name": "m", "server_status": "READY"}
    )
    assert status.server_status is ServerStatus.READY and not status.terminal
    assert status.model_dump(mode="json")["server_status"] == "READY"
    assert json.loads(status.model_dump_json())["job_id"] == "1"
    assert status.model_copy(update={"job_dir": "/x"}).job_dir == "/x"
    with pytest.raises(TypeError, match="no field"):
        StatusResponse.model_validate(
            {"job_id": "1", "model_name": "m", "server_status": "READY", "x": 1}
        )


def test_compat_enums_have_vecinfs_members() -> None:
    assert [m.value for m in ModelStatus] == [
        "PENDING", "LAUNCHING", "READY", "FAILED", "SHUTDOWN", "UNAVAILABLE",
    ]  # fmt: skip
    assert ModelType("Text_Embedding") is ModelType.TEXT_EMBEDDING
    assert ModelStatus.READY == ServerStatus.READY == "READY"


def _vecinf_folder(root: Path, family: str, model: str, number: str) -> Path:
    folder = root / family / f"{model}.{number}"
    folder.mkdir(parents=True)
    (folder / f"{model}.{number}.json").write_text(json.dumps({"model_name": model}))
    return folder


def test_recognise_ours_vecinfs_and_unknown(tmp_path: Path) -> None:
    index, roots = tmp_path / "state", [tmp_path / "vec-inf-logs"]
    ours = tmp_path / "logs" / "Qwen3" / "Qwen3-8B.10"
    ours.mkdir(parents=True)
    jobdir.register(index, "10", ours)
    assert recognise("10", None, index, roots).origin is JobOrigin.OURS
    named = JobRecord("11", "Qwen3-8B-vec-inf-0a1b2c3d", JobPhase.RUNNING, "RUNNING")
    assert recognise("11", named, index, roots).origin is JobOrigin.OURS
    folder = _vecinf_folder(roots[0], "Meta-Llama-3.1", "Meta-Llama-3.1-8B-Instruct", "12")
    theirs = JobRecord("12", "Meta-Llama-3.1-8B-Instruct-vec-inf", JobPhase.RUNNING, "RUNNING")
    found = recognise("12", theirs, index, roots)
    assert (found.origin, found.directory, found.stem) == (
        JobOrigin.VEC_INF,
        folder,
        "Meta-Llama-3.1-8B-Instruct.12",
    )
    forgotten = recognise("12", None, index, roots)  # Slurm forgot it: the folder still says
    assert forgotten.origin is JobOrigin.VEC_INF and forgotten.model_name == (
        "Meta-Llama-3.1-8B-Instruct"
    )
    plain = JobRecord("13", "wrap", JobPhase.RUNNING, "RUNNING")
    assert recognise("13", plain, index, roots).origin is JobOrigin.FOREIGN


def test_vecinf_batch_components_use_main_plus_offset_in_file_names(tmp_path: Path) -> None:
    root = tmp_path / "vec-inf-logs"
    batch = root / "BATCH-A-B" / "BATCH-A-B.21"
    batch.mkdir(parents=True)
    (batch / "B-model.21.json").write_text("{}")
    record = JobRecord("20+1", "B-model-vec-inf", JobPhase.RUNNING, "RUNNING")
    found = recognise("20+1", record, tmp_path / "state", [root])
    assert file_id("20+1") == "21" and found.stem == "B-model.21" and found.directory == batch


def _job_folders(root: Path) -> dict[str, Path]:
    made = {}
    for family, name, number in [
        ("Qwen3", "Qwen3-8B", "100"),
        ("Qwen3", "Qwen3-8B", "205"),
        ("Qwen3", "Qwen3-14B", "150"),
        ("Llama", "Llama-8B", "120+1"),
    ]:
        folder = root / family / f"{name}.{number}"
        folder.mkdir(parents=True)
        (folder / "x.out").write_text("log")
        made[number] = folder
    (root / "Qwen3" / "not-a-job").mkdir()
    return made


@pytest.mark.parametrize(
    ("selection", "deleted"),
    [
        (CleanupFilter(model_family="Qwen3"), {"100", "150"}),
        (CleanupFilter(model_name="Qwen3-8B"), {"100"}),
        (CleanupFilter(job_id=150), {"150"}),
        (CleanupFilter(before_job_id=130), {"100", "120+1"}),
        (CleanupFilter(), {"100", "150", "120+1"}),
    ],
)
def test_cleanup_filters_are_vecinfs_and_live_jobs_stay(
    tmp_path: Path, selection: CleanupFilter, deleted: set[str]
) -> None:
    root = tmp_path / "logs"
    made = _job_folders(root)
    live = live_job_ids([JobRecord("205", "x", JobPhase.RUNNING, "RUNNING")])
    dry = clean_logs(root, selection, live, dry_run=True)
    assert {p.name.rsplit(".", 1)[1] for p in dry.matched} == deleted
    assert all(path.exists() for path in made.values())
    result = clean_logs(root, selection, live, dry_run=False)
    assert {p.name.rsplit(".", 1)[1] for p in result.matched} == deleted
    for number, folder in made.items():
        assert folder.exists() == (number not in deleted)
    assert made["205"].exists()  # a live job's folder is never deleted
    if selection == CleanupFilter():
        assert [p.name for p in result.kept] == ["Qwen3-8B.205"]
        assert not (root / "Llama").exists()  # an emptied family folder goes too


def test_cleanup_forgets_deleted_folders_in_our_index(tmp_path: Path) -> None:
    root, index = tmp_path / "logs", tmp_path / "state"
    made = _job_folders(root)
    jobdir.register(index, "100", made["100"])
    jobdir.register(index, "205", made["205"])
    clean_logs(root, CleanupFilter(job_id=100), set(), dry_run=False, index_root=index)
    assert not (index / ".jobs" / "100").is_symlink()
    assert jobdir.lookup(index, "205") == made["205"]


def test_cleanup_of_a_missing_root_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Log directory does not exist"):
        clean_logs(tmp_path / "nope", CleanupFilter(), set(), dry_run=True)
