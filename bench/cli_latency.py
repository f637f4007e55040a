"""CLI start-up latency: ``vec-inf-flows`` against the anchor ``vec-inf`` 0.9.0.

Every command runs as a fresh process, as a user types it. Runs are interleaved pairwise
(anchor, ours / ours, anchor, alternating who goes first) so both see the same machine load;
the ratio ours/anchor of medians is the figure to read, absolute times move with the load.
Ours answers ``list`` from a precompiled listing: the built-in catalog's ships in the package,
one with the user's config files is built on first use (and again after any change); the last
two rows time a first call in a fresh state home, without and with a config file
(``VEC_INF_CONFIG``: the guide's custom-model example; the anchor reads the same file).
``status`` is timed in status_scaling.py (it needs servers on the cluster).

    .venv/bin/python bench/cli_latency.py [--runs 10] [--model Meta-Llama-3.1-8B-Instruct] [--json]

The anchor is installed into bench/.venv-anchor on first use (pip, vec-inf==0.9.0).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _common import (
    Run,
    Samples,
    bench_environment,
    ensure_anchor,
    ensure_ours,
    load_average,
    ms,
    print_table,
    ratio,
    timed_run,
)

DEFAULT_MODEL = "Meta-Llama-3.1-8B-Instruct"  # in both catalogs


FIRST = "list, first call"  # ours from an empty state home: the shipped listing
FIRST_WITH_CONFIG = "list, first call with VEC_INF_CONFIG"  # ours builds the listing
COLD = (FIRST, FIRST_WITH_CONFIG)
GUIDE_CONFIG = Path(__file__).parents[1] / "tests" / "fixtures" / "guide" / "my-model-config.yaml"


def command_cases(model: str, config: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """(label, arguments, variables both tools get on top of the bench environment)."""
    return [
        ("--help", ["--help"], {}),
        ("list", ["list"], {}),
        (f"list {model}", ["list", model], {}),
        ("list --json-mode", ["list", "--json-mode"], {}),
        (f"list {model} --json-mode", ["list", model, "--json-mode"], {}),
        (FIRST, ["list"], {}),
        (FIRST_WITH_CONFIG, ["list"], {"VEC_INF_CONFIG": str(config)}),
    ]


def user_config(home: Path) -> Path:
    """The guide's custom-model file, its weights placeholder pointing into ``home``."""
    path = home / "my-model-config.yaml"
    path.write_text(GUIDE_CONFIG.read_text().replace("WEIGHTS_DIR", str(home / "weights")))
    return path


def _cold(env: dict[str, str], home: Path, run: str) -> dict[str, str]:
    """A state home of its own for one run: nothing precompiled there yet."""
    return {**env, "VEC_INF_FLOWS_HOME": str(home / f"cold-{run}")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command and tool")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a model in both catalogs")
    parser.add_argument("--json", action="store_true", help="also print the raw samples as JSON")
    args = parser.parse_args()

    tools = {"anchor": str(ensure_anchor()), "ours": str(ensure_ours())}
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as home:
        cases = command_cases(args.model, user_config(Path(home)))
        results: dict[str, dict[str, Samples]] = {label: {} for label, _, _ in cases}
        interpreter = Samples()
        print(f"load average before: {load_average()}; {args.runs} runs per command and tool")
        for label, argv, variables in cases:
            env = bench_environment(Path(home), variables)
            for name, executable in tools.items():  # warm the page cache; not counted
                _check(timed_run([executable, *argv], env), name, label)
            samples = {name: Samples() for name in tools}
            for index in range(args.runs):
                order = list(tools) if index % 2 == 0 else list(reversed(tools))
                for name in order:
                    cold = label in COLD and name == "ours"
                    where = _cold(env, Path(home), f"{label}-{index}") if cold else env
                    run = timed_run([tools[name], *argv], where)
                    _check(run, name, label)
                    samples[name].add(run)
            results[label] = samples
            interpreter.add(timed_run([sys.executable, "-c", "pass"], env))
        print(f"load average after:  {load_average()}\n")

    rows = []
    for label, samples in results.items():
        anchor, ours = samples["anchor"], samples["ours"]
        rows.append(
            [
                label,
                ms(anchor.median),
                ms(anchor.minimum),
                ms(ours.median),
                ms(ours.minimum),
                ratio(ours.median, anchor.median),
                ratio(ours.minimum, anchor.minimum),
            ]
        )
    rows.append(["python -c pass", "", "", ms(interpreter.median), ms(interpreter.minimum), "", ""])
    headers = [
        "command (ms)",
        "anchor med",
        "anchor min",
        "ours med",
        "ours min",
        "ours/anchor med",
        "ours/anchor min",
    ]
    print_table(headers, rows)
    if args.json:
        raw = {
            label: {name: s.values for name, s in samples.items()}
            for label, samples in results.items()
        }
        print(json.dumps(raw, indent=1))
    return 0


def _check(run: Run, tool: str, label: str) -> None:
    """A failing command would time its error path, not its work: stop and say so."""
    if run.returncode != 0:
        tail = (run.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise SystemExit(f"{tool} `{label}` exited {run.returncode}: {tail}")


if __name__ == "__main__":
    sys.exit(main())
