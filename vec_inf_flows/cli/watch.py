"""``launch``'s server-watch options: the lease ``--wait`` holds, idle timeout, health grace."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from vec_inf_flows.client import VecInfClient
from vec_inf_flows.errors import ConfigError, ServerError
from vec_inf_flows.models import StatusResponse


def launch_controls(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``VecInfClient.launch`` (refusing bad values in one line)."""
    from pydantic import ValidationError

    from vec_inf_flows.lifecycle.lease import DEFAULT_LAPSE_AFTER, DEFAULT_RENEW_EVERY, LeasePolicy

    leased = args.lease_renew is not None or args.lease_lapse is not None
    if leased and not args.wait:
        raise ConfigError(
            "--lease-renew / --lease-lapse only apply with --wait: a plain launch holds no "
            "lease (use --idle-timeout to stop an unused server)."
        )
    if args.idle_timeout is not None and args.idle_timeout <= 0:
        raise ConfigError(
            f"--idle-timeout must be a positive number of minutes, got {args.idle_timeout:g}."
        )
    if args.health_grace <= 0:
        raise ConfigError(f"--health-grace must be positive, got {args.health_grace:g}.")
    lease = None
    if args.wait:
        try:
            lease = LeasePolicy(
                renew_every=args.lease_renew or DEFAULT_RENEW_EVERY,
                lapse_after=args.lease_lapse or DEFAULT_LAPSE_AFTER,
            )
        except ValidationError as error:
            raise ConfigError(
                f"--lease-lapse / --lease-renew: {error.errors()[0]['msg']}"
            ) from None
    return {
        "lease": lease,
        "idle_timeout": args.idle_timeout * 60 if args.idle_timeout is not None else None,
        "health_grace": args.health_grace,
    }


def wait_holding_lease(
    client: VecInfClient, job_id: str, lapse_after: float, wait: Callable[[], StatusResponse]
) -> StatusResponse:
    """Wait while the client renews the lease; once READY, hand the server over to its time
    limit (vec-inf's behaviour). If the wait ends any other way (timeout, FAILED, Ctrl-C, a
    kill) nobody renews the lease and the job stops by itself once it lapses."""
    try:
        ready = wait()
    except ServerError as error:
        raise ServerError(
            f"{error} Nobody renews its lease now: the job stops by itself within "
            f"{lapse_after:g} s."
        ) from None
    client.release_lease(job_id)
    return ready
