"""Package names that load on first use.

The CLI's quick commands (``list``, ``status``) import a package for one small name and must not
pay for what its siblings need (YAML, pydantic, Prefect); a package lists where each public name
lives and hands this module-level ``__getattr__`` (PEP 562) the map.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A ``__getattr__`` for PACKAGE that imports ``homes[name]`` the first time NAME is asked."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(home), name)

    return __getattr__
