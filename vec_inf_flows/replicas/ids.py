"""Group ids (``group-XXXXXXXX``): recognised on every ``status``/``shutdown``/``wait`` call, so
this module stays free of pydantic and of the rest of the package."""

from __future__ import annotations

import os
import re

from vec_inf_flows.errors import ConfigError

_GROUP_ID = re.compile(r"^group-[0-9a-f]{8}$")


def new_group_id() -> str:
    return f"group-{os.urandom(4).hex()}"  # not ``secrets``: it loads hmac, ~10 ms at start-up


def is_group_id(value: str) -> bool:
    return bool(_GROUP_ID.fullmatch(value.strip()))


def check_group_id(value: str) -> str:
    if not is_group_id(value):
        raise ConfigError(f"Invalid group id {value!r}: expected group-XXXXXXXX (8 hex digits).")
    return value.strip()
