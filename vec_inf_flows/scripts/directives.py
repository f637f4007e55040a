"""``#SBATCH`` directive lines: one job's (or one het-job component's) resource request."""

from __future__ import annotations

from vec_inf_flows.scripts.quoting import sbatch_value, slurm_filename_literal
from vec_inf_flows.spec import LaunchSpec, SlurmResources


def directive(key: str, value: str | int) -> str:
    return f"#SBATCH --{key}={sbatch_value(f'--{key}', str(value))}"


def gres(resources: SlurmResources) -> str | None:
    count = resources.gpus_per_node
    if count <= 0:
        return None
    if resources.resource_type:
        return f"gpu:{resources.resource_type}:{count}"
    return f"gpu:{count}"


def resource_directives(resources: SlurmResources, job_name: str) -> list[str]:
    """Lines in a fixed order, so rendered scripts diff cleanly between launches."""
    items: list[tuple[str, str | int | None]] = [
        ("job-name", job_name),
        ("partition", resources.partition),
        ("account", resources.account),
        ("qos", resources.qos),
        ("time", resources.time),
        ("nodes", resources.num_nodes),
        ("ntasks-per-node", 1 if resources.num_nodes > 1 else None),
        ("cpus-per-task", resources.cpus_per_task),
        ("mem", resources.mem_per_node),
        ("gres", gres(resources)),
        ("exclude", resources.exclude),
        ("nodelist", resources.nodelist),
    ]
    return [directive(key, value) for key, value in items if value is not None and value != ""]


def job_log_pattern(spec: LaunchSpec, suffix: str) -> str:
    """``<log_dir>/<family>/<model>.%j/<model>.%j.<suffix>``; user text cannot add patterns."""
    model = slurm_filename_literal(spec.model_name)
    family = slurm_filename_literal(spec.model_family)
    log_dir = slurm_filename_literal(spec.log_dir.rstrip("/") or "/")
    return f"{log_dir}/{family}/{model}.%j/{model}.%j.{suffix}"


def log_directives(out_pattern: str, err_pattern: str) -> list[str]:
    return [directive("output", out_pattern), directive("error", err_pattern)]


def chdir_directive(resources: SlurmResources) -> list[str]:
    return [directive("chdir", resources.work_dir)] if resources.work_dir else []
