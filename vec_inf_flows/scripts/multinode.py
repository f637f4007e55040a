"""The multi-node part of a job script: ``exec`` the job-side supervisor (``nodes.py``).

The script stays short; the supervisor, copied into the job directory with its two helper
modules, starts every node's processes, chooses Ray's ports on the node that binds them, and
ends everything together (see ``nodes.py``). It receives the launcher's command exactly as a
single-node job would run it, then the engine command, so what the launcher takes is decided in
one place (``render.py``).
"""

from __future__ import annotations

from pathlib import Path

from vec_inf_flows.scripts.quoting import shell_word
from vec_inf_flows.spec import LaunchSpec

SUPERVISOR_FILENAME = "nodes.py"
# The supervisor and the sibling modules it imports, copied into each multi-node job directory.
SUPERVISOR_FILES = (SUPERVISOR_FILENAME, "nodeports.py", "nodeprocs.py")


def supervisor_sources() -> dict[str, str]:
    here = Path(__file__).parent
    return {name: (here / name).read_text() for name in SUPERVISOR_FILES}


def supervisor_words(spec: LaunchSpec, container_word_count: int) -> list[str]:
    """``nodes.py head ...`` as word groups; the launcher and engine words follow ``--``."""
    words = [shell_word(spec.python), f'"$JOB_DIR/{SUPERVISOR_FILENAME}"', "head"]
    words += ["--mode", shell_word(spec.multi_node_mode), '--head-node "$HEAD_NODE"']
    words += [f"--gpus-per-node {spec.resources.gpus_per_node}"]
    if container_word_count:
        words.append(f"--container-words {container_word_count}")
    return [" ".join(words), "--"]
