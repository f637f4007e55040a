"""Prefect blocks: the cluster and server settings users edit in the UI and load by name.

This module is the package's ``prefect.collections`` entry point, which Prefect imports when its
server starts and whenever ``Block.load`` meets an unknown slug. It therefore imports only
pydantic and ``prefect.blocks.core``: nothing from the Slurm or server layers.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect.blocks.core import Block
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr

_DOCS_URL = HttpUrl("https://github.com/VectorInstitute/vector-inference")

EngineName = Literal["vllm", "sglang", "sim"]


class LaunchOverrides(BaseModel):
    """Launch options a flow or block may override; ``None`` keeps the model's catalog value.

    JSON-able on purpose: it is a flow parameter (the UI renders it as a form) and a block field.
    """

    model_config = ConfigDict(extra="forbid")

    model_family: str | None = Field(
        default=None, description="Model family (also the log sub-directory)."
    )
    model_variant: str | None = Field(default=None, description="Model variant.")
    partition: str | None = Field(default=None, description="Slurm partition.")
    qos: str | None = Field(default=None, description="Slurm quality of service.")
    account: str | None = Field(default=None, description="Slurm account charged for the job.")
    time: str | None = Field(default=None, description="Slurm time limit, HH:MM:SS or D-HH:MM:SS.")
    num_nodes: int | None = Field(default=None, ge=1, description="Nodes per server.")
    multi_node_mode: Literal["native", "ray"] | None = Field(
        default=None,
        description="Several nodes: vLLM's own multi-node executor (native) or a Ray cluster.",
    )
    gpus_per_node: int | None = Field(default=None, ge=0, description="GPUs on each node.")
    cpus_per_task: int | None = Field(default=None, ge=1, description="CPUs for the server.")
    mem_per_node: str | None = Field(default=None, description="Memory per node, e.g. 64G.")
    resource_type: str | None = Field(default=None, description="GPU type for --gres.")
    exclude: str | None = Field(default=None, description="Nodes the job must avoid.")
    nodelist: str | None = Field(default=None, description="Nodes the job must use.")
    work_dir: str | None = Field(default=None, description="Working directory of the job.")
    log_dir: str | None = Field(default=None, description="Root of the job log tree.")
    venv: str | None = Field(default=None, description="Virtual environment to activate.")
    model_weights_parent_dir: str | None = Field(
        default=None, description="Directory that holds the model weights."
    )
    engine: EngineName | None = Field(default=None, description="Inference engine.")
    vllm_args: str | dict[str, Any] | None = Field(
        default=None,
        description="Engine arguments: a comma list (--max-model-len=4096,--max-num-seqs=8) "
        "or a mapping of flag to value.",
    )
    sglang_args: str | dict[str, Any] | None = Field(
        default=None, description="SGLang arguments, in the same forms as vllm_args."
    )
    bind: str | None = Field(default=None, description="Extra container bind mounts.")
    container_image: str | None = Field(default=None, description="Container image to run.")
    hf_model: str | None = Field(
        default=None, description="Hugging Face model id to serve instead of local weights."
    )
    python: str | None = Field(
        default=None, description="Python interpreter that runs the job-side launcher."
    )
    env: str | dict[str, str] | None = Field(
        default=None,
        description="Environment variables exported in the job: a mapping, or 'K=V,K2=V2' as "
        "the CLI's --env takes it.",
    )

    def as_kwargs(self) -> dict[str, Any]:
        """The non-empty overrides, in the keyword form ``VecInfClient.launch`` accepts."""
        return self.model_dump(exclude_none=True)


class SlurmCluster(Block):
    """A Slurm cluster this package launches servers on, and the defaults for its jobs.

    Example:
        ```python
        from vec_inf_flows.blocks import SlurmCluster

        cluster = SlurmCluster.load("BLOCK_NAME")
        ```
    """

    _block_type_name = "vec-inf Slurm Cluster"
    _block_type_slug = "vec-inf-slurm-cluster"
    _description = "Slurm account, partition, QoS, log directory and job defaults for vec-inf."
    _documentation_url = _DOCS_URL

    account: str | None = Field(default=None, description="Slurm account charged for jobs.")
    partition: str | None = Field(default=None, description="Default Slurm partition.")
    qos: str | None = Field(default=None, description="Default Slurm quality of service.")
    log_dir: str | None = Field(
        default=None, description="Root of the job log tree, on a file system the nodes share."
    )
    default_time: str | None = Field(
        default=None, description="Default Slurm time limit for server jobs, HH:MM:SS."
    )
    default_resources: dict[str, Any] = Field(
        default_factory=dict,
        description="Default launch options for every job, e.g. cpus_per_task or mem_per_node.",
    )
    job_env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables exported in every job."
    )
    access: Literal["local"] = Field(
        default="local", description="How Slurm is reached: local commands on this host."
    )

    def launch_defaults(self) -> dict[str, Any]:
        """The launch keywords this cluster contributes; explicit overrides win over them."""
        merged: dict[str, Any] = dict(self.default_resources)
        for key, value in (
            ("account", self.account),
            ("partition", self.partition),
            ("qos", self.qos),
            ("log_dir", self.log_dir),
            ("time", self.default_time),
        ):
            if value is not None:
                merged[key] = value
        if self.job_env:
            merged["env"] = dict(self.job_env)
        return merged


class VecInfServer(Block):
    """One model server to launch: the model, its launch overrides, engine arguments and API key.

    Example:
        ```python
        from vec_inf_flows.blocks import VecInfServer

        server = VecInfServer.load("BLOCK_NAME")
        ```
    """

    _block_type_name = "vec-inf Model Server"
    _block_type_slug = "vec-inf-model-server"
    _description = "A model served by vec-inf on Slurm: model name, overrides and engine args."
    _documentation_url = _DOCS_URL

    model_name: str = Field(description="Model name from the catalog or the user's model file.")
    overrides: LaunchOverrides = Field(
        default_factory=LaunchOverrides, description="Launch options that replace the defaults."
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Engine flags and values, e.g. {'--max-model-len': 4096}.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key the server requires from its clients."
    )
    cluster: SlurmCluster | None = Field(
        default=None, description="Cluster to launch on; the flow's cluster block otherwise."
    )
