"""Importing a function named ``"package.module:function"``: how a deployment's form (JSON only)
names user code, a workload callable or a scorer. Prefect-free, so the workload layer can use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from vec_inf_flows.errors import ConfigError


def import_callable(path: str, what: str) -> Callable[..., Any]:
    """The callable ``path`` names, or ``ConfigError`` saying which ``what`` could not load."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"{what} {path!r} is not of the form 'package.module:function'.")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"Cannot import {what.lower()} {path!r}: {error}.") from None
    if not callable(target):
        raise ConfigError(f"{what} {path!r} is not callable.")
    return target  # type: ignore[no-any-return]
