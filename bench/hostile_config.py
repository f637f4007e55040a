"""A YAML alias bomb in ``VEC_INF_CONFIG``: time and peak memory until it is refused.

The bomb is the classic "billion laughs" (a few lines of nested anchors that expand to 9**9
strings); targets: refused in under 1 s and 100 MB. Each run is a fresh ``vec-inf-flows list``
process; its peak resident set comes from the kernel (``wait4`` -> ``ru_maxrss``). The baseline,
interleaved run by run, is the same command with an honest config file of the same length.
The anchor is not run on the bomb: vec-inf expands it (gigabytes, minutes) on a shared machine.

    .venv/bin/python bench/hostile_config.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Samples, bench_environment, ensure_ours, load_average, ms, print_table, ratio


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    lines += ["models:", "  bomb:", f"    env: *a{levels - 1}"]
    return "\n".join(lines) + "\n"


def honest_file(length: int) -> str:
    text = "models:\n  Qwen3-8B:\n    time: '01:00:00'\n"
    return text + "# padding\n" * max(0, (length - len(text)) // 10)


def run(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS in MB, exit code and the last stderr line of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    tail = (err.strip().splitlines() or [""])[-1]
    return seconds, usage.ru_maxrss / 1024, process.returncode, tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ours = str(ensure_ours())
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as work:
        bomb, honest = Path(work, "bomb.yaml"), Path(work, "honest.yaml")
        bomb.write_text(billion_laughs())
        honest.write_text(honest_file(len(bomb.read_text())))
        base = bench_environment(Path(work, "home"))
        cases = {"alias bomb": bomb, "honest file": honest}
        wall = {name: Samples() for name in cases}
        peak: dict[str, list[float]] = {name: [] for name in cases}
        last: dict[str, str] = {}
        print(f"load average before: {load_average()}; {args.runs} runs each, interleaved")
        for index in range(args.runs + 1):
            order = list(cases) if index % 2 == 0 else list(reversed(cases))
            for name in order:
                # A fresh state home: the honest file's listing is built every time, as the
                # bomb's would be (it never gets that far).
                env = {**base, "VEC_INF_CONFIG": str(cases[name])}
                env["VEC_INF_FLOWS_HOME"] = str(Path(work, f"state-{name}-{index}"))
                seconds, rss, code, tail = run([ours, "list", "--json-mode"], env)
                if index == 0:
                    continue  # warm-up
                wall[name].values.append(seconds)
                peak[name].append(rss)
                last[name] = f"exit {code}: {tail}" if code else "exit 0"
    rows = [
        [name, ms(wall[name].median), ms(max(wall[name].values)), f"{max(peak[name]):.1f}",
         last[name][:90]]
        for name in cases
    ]  # fmt: skip
    print_table(["config file", "median ms", "max ms", "peak MB (max)", "outcome"], rows)
    bomb_vs_honest = ratio(wall["alias bomb"].median, wall["honest file"].median)
    print(f"\nbomb / honest file, median wall: {bomb_vs_honest} ({len(billion_laughs())} bytes)")
    seconds, peak_mb = refusal_in_process()
    print(
        f"in-process, parse to refusal: {seconds * 1000:.2f} ms, {peak_mb:.2f} MB allocated at peak"
    )
    return 0


def refusal_in_process() -> tuple[float, float]:
    """The refusal itself, without the process start: time and tracemalloc's peak."""
    import tracemalloc

    from vec_inf_flows.catalog.yaml_load import parse_yaml
    from vec_inf_flows.errors import ConfigError

    text = billion_laughs()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        parse_yaml(text, "bomb.yaml")
    except ConfigError:
        pass
    else:
        raise SystemExit("the alias bomb was not refused")
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return seconds, peak


if __name__ == "__main__":
    sys.exit(main())
