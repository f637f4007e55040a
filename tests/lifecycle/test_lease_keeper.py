"""LeaseKeeper with real files and its real thread; the lease policy's validation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from vec_inf_flows.lifecycle.evidence import lease_state
from vec_inf_flows.lifecycle.lease import LeaseKeeper, LeasePolicy
from vec_inf_flows.lifecycle.reaper import LeaseState

FAST = LeasePolicy(renew_every=0.1, lapse_after=1)


def counter(directory: Path) -> int:
    return int(json.loads((directory / "lease.json").read_text())["counter"])


def test_renews_every_held_lease_until_released_or_dropped(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    with LeaseKeeper() as keeper:
        keeper.hold(first, FAST)
        keeper.hold(second, FAST)
        assert counter(first) == 1 and lease_state(first) is LeaseState.HELD
        time.sleep(0.6)
        assert counter(first) >= 3 and counter(second) >= 3
        keeper.release(first)
        keeper.drop(second)
        frozen = counter(second)
        time.sleep(0.4)
        assert counter(second) == frozen  # dropped: no more renewals, the lease will lapse
        assert lease_state(first) is LeaseState.RELEASED  # released: a late renewal cannot undo
        assert keeper.held == []


def test_close_stops_renewing(tmp_path: Path) -> None:
    keeper = LeaseKeeper()
    keeper.hold(tmp_path, FAST)
    keeper.close()
    time.sleep(0.3)
    frozen = counter(tmp_path)
    time.sleep(0.3)
    assert counter(tmp_path) == frozen


def test_lease_state_reads_the_job_sides_record(tmp_path: Path) -> None:
    assert lease_state(tmp_path) is LeaseState.NONE
    assert lease_state(None) is LeaseState.NONE
    (tmp_path / "stopped.json").write_text('{"cause": "lease", "reason": "owner stopped"}')
    assert lease_state(tmp_path) is LeaseState.LAPSED


def test_policy_defaults_and_validation() -> None:
    assert (LeasePolicy().renew_every, LeasePolicy().lapse_after) == (60.0, 300.0)
    with pytest.raises(ValidationError, match="at least twice"):
        LeasePolicy(renew_every=60, lapse_after=90)
    with pytest.raises(ValidationError):
        LeasePolicy(renew_every=0)
