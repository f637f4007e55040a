"""Create (or update) blocks from YAML documents such as those in this directory.

Usage: python blocks/create_blocks.py blocks/*.yaml
``${NAME}`` in a value is replaced from the environment (secrets stay out of the files); a
``cluster`` given as a string names an already saved SlurmCluster block.
"""

import os
import string
import sys
from pathlib import Path
from typing import Any

import yaml

from vec_inf_flows.blocks import SlurmCluster, VecInfServer

BLOCK_TYPES = {"vec-inf-slurm-cluster": SlurmCluster, "vec-inf-model-server": VecInfServer}


def expand(value: Any) -> Any:
    if isinstance(value, str):
        expanded = string.Template(value).safe_substitute(os.environ)
        return None if expanded.startswith("${") else expanded
    if isinstance(value, dict):
        return {key: expand(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item) for item in value]
    return value


def create(path: Path) -> str:
    document = yaml.safe_load(path.read_text())
    block_class = BLOCK_TYPES[document["block_type"]]
    data = {key: value for key, value in expand(document["data"]).items() if value is not None}
    if isinstance(data.get("cluster"), str):
        data["cluster"] = SlurmCluster.load(data["cluster"])
    block_class(**data).save(document["name"], overwrite=True)
    return f"{document['block_type']}/{document['name']}"


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        print("saved", create(Path(argument)))
