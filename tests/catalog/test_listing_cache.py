"""The precompiled listing: used while its files and variables are unchanged, rebuilt after."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from vec_inf_flows.catalog import listing_cache
from vec_inf_flows.catalog.listing_cache import load_listing
from vec_inf_flows.errors import ConfigWarning


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "state"
    monkeypatch.setenv("VEC_INF_FLOWS_HOME", str(home))
    for name in listing_cache._ENV_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def no_shipped_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state-home cache on its own (the shipped listing would answer the default case)."""
    monkeypatch.setattr(listing_cache, "SHIPPED_PATH", tmp_path / "not-shipped.json")


def _cache_files(state_home: Path) -> list[Path]:
    return sorted((state_home / "cache").glob("catalog-*.json"))


def _built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count catalog builds (misses) from here on."""
    calls: list[int] = []
    from vec_inf_flows.catalog import loader

    real = loader.load_catalog

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "load_catalog", counting)
    return calls


@pytest.mark.usefixtures("no_shipped_listing")
def test_second_listing_is_read_back_and_private(
    state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = _built(monkeypatch)
    first = load_listing()
    second = load_listing()
    assert builds == [1]
    assert first == second and len(first.rows) >= 129
    (cache,) = _cache_files(state_home)
    assert cache.stat().st_mode & 0o777 == 0o600
    assert first.configs["Meta-Llama-3.1-8B-Instruct"]["account"] is None  # unset keys kept


def test_a_changed_user_file_or_variable_rebuilds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "models.yaml"
    user.write_text("models:\n  Qwen3-8B:\n    time: '01:00:00'\n")
    monkeypatch.setenv("VEC_INF_CONFIG", str(user))
    builds = _built(monkeypatch)
    assert load_listing().configs["Qwen3-8B"]["time"] == "01:00:00"
    user.write_text("models:\n  Qwen3-8B:\n    time: '02:00:00'\n")
    stamp = time.time() + 5
    os.utime(user, (stamp, stamp))
    assert load_listing().configs["Qwen3-8B"]["time"] == "02:00:00"
    monkeypatch.setenv("VEC_INF_PARTITION", "gpu")
    assert load_listing().configs["Qwen3-8B"]["partition"] == "gpu"
    assert load_listing().configs["Qwen3-8B"]["partition"] == "gpu"
    assert builds == [1, 1, 1]


def test_warnings_are_repeated_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "models.yaml"
    user.write_text("models:\n  Qwen3-8B:\n    flavour: spicy\n")
    monkeypatch.setenv("VEC_INF_CONFIG", str(user))
    with pytest.warns(ConfigWarning, match="unknown key 'flavour' ignored"):
        load_listing()
    with pytest.warns(ConfigWarning, match="unknown key 'flavour' ignored"):
        load_listing()


@pytest.mark.usefixtures("no_shipped_listing")
def test_a_cache_others_may_write_is_ignored(
    state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_listing()
    (cache,) = _cache_files(state_home)
    cache.chmod(0o666)
    builds = _built(monkeypatch)
    load_listing()
    assert builds == [1]
    assert cache.stat().st_mode & 0o777 == 0o600  # rewritten, private again


@pytest.mark.usefixtures("no_shipped_listing")
def test_a_corrupt_cache_is_rebuilt(state_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_listing()
    (cache,) = _cache_files(state_home)
    cache.write_text("{not json")
    cache.chmod(0o600)
    builds = _built(monkeypatch)
    assert len(load_listing().rows) >= 129 and builds == [1]


@pytest.mark.usefixtures("no_shipped_listing")
def test_the_builtin_catalog_is_part_of_the_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtin = tmp_path / "models.yaml"
    builtin.write_text(Path(listing_cache.BUILTIN_PATH).read_text())
    monkeypatch.setattr(listing_cache, "BUILTIN_PATH", str(builtin))
    load_listing()
    builds = _built(monkeypatch)
    stamp = time.time() + 5
    os.utime(builtin, (stamp, stamp))
    load_listing()
    assert builds == [1]


def test_the_shipped_listing_is_a_fresh_build_of_the_builtin_catalog() -> None:
    """Regenerate with ``python -m vec_inf_flows.catalog.listing_cache`` after editing
    models.yaml or the schema."""
    assert listing_cache.SHIPPED_PATH.read_text(encoding="utf-8") == (
        listing_cache.shipped_document()
    )


def test_a_first_listing_with_nothing_set_builds_nothing(
    state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = _built(monkeypatch)
    listing = load_listing()
    assert builds == [] and _cache_files(state_home) == []
    built = listing_cache.build_listing({})[0]
    assert len(listing.rows) >= 129 and listing == built
    # in the same order too: `list MODEL` shows the fields (and a model's env) as they come
    assert json.dumps(listing.configs) == json.dumps(built.configs)
    assert json.dumps(listing.rows) == json.dumps(built.rows)


def test_the_shipped_listing_gives_way_to_any_setting_or_an_edited_builtin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = _built(monkeypatch)
    monkeypatch.setenv("VEC_INF_PARTITION", "gpu")
    assert load_listing().configs["Qwen3-8B"]["partition"] == "gpu"
    monkeypatch.delenv("VEC_INF_PARTITION")
    edited = tmp_path / "models.yaml"
    edited.write_text(Path(listing_cache.BUILTIN_PATH).read_text() + "\n# edited\n")
    monkeypatch.setattr(listing_cache, "BUILTIN_PATH", str(edited))
    load_listing()
    assert builds == [1, 1]
