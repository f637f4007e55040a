"""The one way a CLI command gets its client: the backend ``--backend`` names, passed in (not
written into the environment for whoever builds a client next)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vec_inf_flows.client import VecInfClient


def client_for(args: argparse.Namespace) -> VecInfClient:
    """The client for ``--backend`` (default: ``$VEC_INF_BACKEND``, else detected)."""
    from vec_inf_flows.client import VecInfClient

    return VecInfClient(backend=getattr(args, "backend", None))
