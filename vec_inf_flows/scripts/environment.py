"""The job-side environment: venv, exported variables, secrets, container pass-through.

Every value is a single-quoted literal; secrets are never rendered, only sourced at run time
from the job directory's 0600 ``.secrets.env``, so the script text can be shown and stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from vec_inf_flows.scripts.engine import (
    API_KEY_VARIABLE,
    VLLM_KEY_VARIABLE,
    container_env_names,
    container_env_prefix,
)
from vec_inf_flows.scripts.quoting import env_name, refuse_control_chars, shell_word
from vec_inf_flows.spec import LaunchSpec

SECRETS_FILENAME = ".secrets.env"


def render_secrets_env(secret_env: Sequence[tuple[str, str]]) -> str:
    """The text of ``.secrets.env`` (the client writes it with mode 0600)."""
    lines = [f"export {env_name(name)}={shell_word(value)}" for name, value in secret_env]
    return "".join(line + "\n" for line in lines)


def venv_lines(venv: str | None) -> list[str]:
    """Activate a virtual environment (nothing when there is none)."""
    if not venv:
        return []
    refuse_control_chars("venv", venv)
    # Some activate scripts read unset variables; relax -u just for them.
    activate = shell_word(venv.rstrip("/") + "/bin/activate")
    return ["set +u", f"source {activate}", "set -u"]


def environment_lines(spec: LaunchSpec) -> list[str]:
    """Bash lines setting up the engine's environment; expects ``JOB_DIR`` to be set."""
    lines = venv_lines(spec.venv)
    lines += [f"export {env_name(name)}={shell_word(value)}" for name, value in spec.env]
    secrets = f'"$JOB_DIR/{SECRETS_FILENAME}"'
    lines.append(f"if [[ -f {secrets} ]]; then set -a; source {secrets}; set +a; fi")
    if spec.has_api_key:
        lines += [
            f'if [[ -z "${{{API_KEY_VARIABLE}:-}}" ]]; then',
            f'    echo "vec-inf: {API_KEY_VARIABLE} is not set by $JOB_DIR/{SECRETS_FILENAME}" >&2',
            "    exit 1",
            "fi",
        ]
        if spec.engine in ("vllm", "sim"):
            lines.append(f'export {VLLM_KEY_VARIABLE}="${API_KEY_VARIABLE}"')
    if spec.container is not None:
        prefix = container_env_prefix(spec)
        lines += [
            f'if [[ -n "${{{name}+set}}" ]]; then export {prefix}{name}="${name}"; fi'
            for name in container_env_names(spec)
        ]
    return lines
