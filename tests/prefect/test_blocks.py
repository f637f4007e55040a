"""Blocks: Prefect's standard suite, save/load round trips, how launch options merge, and a
typo refused by the block form."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import (  # type: ignore[attr-defined]
    BlockStandardTestSuite,
)
from pydantic import SecretStr, ValidationError

from vec_inf_flows.blocks import SlurmCluster, VecInfServer
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.tasks import load_cluster, load_server

pytestmark = pytest.mark.prefect


@pytest.mark.parametrize("block", [SlurmCluster, VecInfServer])
class TestBlockStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:
        return block

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        # The upstream check downloads the logo; these blocks ship none, so check the slug.
        assert block.get_block_type_slug().startswith("vec-inf-")


def test_server_block_round_trips_secret_and_nested_cluster() -> None:
    cluster = SlurmCluster(
        backend="local",
        options=LaunchOptions(account="lab", partition="debug", log_dir="/scratch/logs"),
    )
    VecInfServer(
        model_name="SmolLM2-135M-Instruct",
        options=LaunchOptions(time="00:10:00", engine="sim", vllm_args={"--max-model-len": 2048}),
        api_key=SecretStr("s3cret"),
        cluster=cluster,
    ).save("smol-test", overwrite=True)

    loaded = load_server("smol-test")
    generic = Block.load("vec-inf-model-server/smol-test")  # by slug, without the class

    assert loaded is not None and loaded.api_key is not None
    assert loaded.api_key.get_secret_value() == "s3cret"
    assert loaded.cluster is not None and loaded.cluster.options.account == "lab"
    assert loaded.cluster.backend == "local"
    assert loaded.options.time == "00:10:00"
    assert isinstance(generic, VecInfServer)


def test_launch_options_merge_cluster_then_server_then_call() -> None:
    cluster = SlurmCluster(
        options=LaunchOptions(
            account="lab",
            partition="debug",
            time="01:00:00",
            cpus_per_task=2,
            env={"HF_HUB_OFFLINE": "1", "SHARED": "cluster"},
            vllm_args="--max-model-len=4096,--max-num-seqs=8",
        )
    )
    server = VecInfServer(
        model_name="m",
        options=LaunchOptions(
            partition="gpu", env={"SHARED": "server"}, vllm_args={"--max-num-seqs": 48}
        ),
        api_key=SecretStr("k"),
    )

    merged = server.launch_options(cluster, {"time": "00:05:00", "qos": "fast"})

    assert merged.set_values() == {
        "account": "lab",
        "partition": "gpu",
        "time": "00:05:00",
        "qos": "fast",
        "cpus_per_task": 2,
        "vllm_args": {"--max-model-len": 4096, "--max-num-seqs": 48},  # merged per flag
        "env": {"HF_HUB_OFFLINE": "1", "SHARED": "server"},  # merged per variable
    }


def test_a_typo_in_a_cluster_block_is_refused_by_the_form() -> None:
    with pytest.raises(ValidationError, match="partitoin"):
        SlurmCluster.model_validate({"options": {"partitoin": "debug"}})
    with pytest.raises(ValidationError, match="backend"):
        SlurmCluster.model_validate({"backend": "k8s"})


def test_a_cluster_block_gives_the_client_for_its_backend(tmp_path: Path) -> None:
    client = SlurmCluster.model_validate({"backend": "local"}).get_client()
    assert client.backend.name == "local"
    SlurmCluster(backend="local").save("local-test", overwrite=True)
    loaded = load_cluster("local-test")
    assert loaded is not None and loaded.name == "local-test"


def test_block_documents_in_the_repository_can_be_created(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks_dir = Path(__file__).resolve().parents[2] / "blocks"
    spec = importlib.util.spec_from_file_location("create_blocks", blocks_dir / "create_blocks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("VEC_INF_API_KEY", "from-env")

    module.create(blocks_dir / "slurm-cluster.default.yaml")
    module.create(blocks_dir / "model-server.smollm2.yaml")

    server = load_server("smollm2")
    assert server is not None and server.cluster is not None
    assert server.cluster.options.partition == "a40"
    assert server.api_key is not None and server.api_key.get_secret_value() == "from-env"
    assert server.launch_options().vllm_args == {"--max-model-len": 2048, "--max-num-seqs": 64}


def test_a_crash_hook_finds_the_cluster_in_any_form_the_api_stores_it() -> None:
    from vec_inf_flows.tasks.ownership import cluster_from_parameters

    saved_id = SlurmCluster(backend="local").save("hook-test", overwrite=True)
    unsaved = SlurmCluster.model_validate({"backend": "local"})
    forms = [
        {"cluster": "hook-test"},  # a name (deployments, the CLI)
        {"cluster": {"$ref": {"block_document_id": str(saved_id)}}},  # picked in the UI
        {"cluster": unsaved.model_dump(mode="json")},  # an object passed to an in-process run
    ]
    for parameters in forms:
        found = cluster_from_parameters(parameters)
        assert found is not None and found.backend == "local", parameters
    assert cluster_from_parameters({}) is None
