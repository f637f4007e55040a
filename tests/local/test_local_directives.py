"""Reading a script's #SBATCH header the way sbatch does, and Slurm's filename patterns."""

from __future__ import annotations

import pytest

from vec_inf_flows.backends.local.directives import (
    check_runs_locally,
    expand_filename,
    parse_directives,
)
from vec_inf_flows.errors import ConfigError


def test_rendered_style_header_is_read() -> None:
    text = (
        "#!/bin/bash\n"
        "#SBATCH --job-name=m-vec-inf-1\n"
        "#SBATCH --nodes=1\n"
        "#SBATCH --cpus-per-task=2\n"
        "#SBATCH --output=/logs/fam/m.%j/m.%j.out\n"
        '#SBATCH --error="/logs/with space/m.%j.err"\n'
        "#SBATCH --chdir=/work\n"
    )

    directives = parse_directives(text)

    assert directives.output == "/logs/fam/m.%j/m.%j.out"
    assert directives.error == "/logs/with space/m.%j.err"
    assert (directives.chdir, directives.job_name) == ("/work", "m-vec-inf-1")
    assert (directives.cpus_per_task, directives.min_nodes, directives.components) == (2, 1, 1)


def test_short_options_separate_values_and_comments() -> None:
    text = "#!/bin/bash\n#SBATCH -o out.%j -e err.%j  # where logs go\n#SBATCH -c4 -N 1\n"

    directives = parse_directives(text)

    assert (directives.output, directives.error) == ("out.%j", "err.%j")
    assert (directives.cpus_per_task, directives.min_nodes) == (4, 1)


def test_directives_after_the_first_command_are_ignored() -> None:
    text = "#!/bin/bash\n#SBATCH --nodes=1\n\necho hi\n#SBATCH --nodes=8\n"

    assert parse_directives(text).min_nodes == 1


def test_not_quite_directives_are_not_read() -> None:
    text = "#!/bin/bash\n##SBATCH --nodes=4\n#SBATCHX --nodes=4\n# SBATCH --nodes=4\n"

    assert parse_directives(text).min_nodes == 1


def test_open_mode_append_and_first_hetjob_component_wins() -> None:
    text = "#SBATCH --open-mode=append -o a.out\n#SBATCH hetjob\n#SBATCH -o b.out\n"

    directives = parse_directives(text)

    assert (directives.append, directives.output, directives.components) == (True, "a.out", 2)
    with pytest.raises(ConfigError, match="heterogeneous"):
        check_runs_locally(directives)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("#SBATCH --nodes=two", "--nodes=two is not a node count"),
        ("#SBATCH --cpus-per-task=x", "--cpus-per-task=x is not a number"),
        ('#SBATCH --output="unclosed', "Cannot read the job script line"),
    ],
)
def test_malformed_directives_are_config_errors(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_directives(f"#!/bin/bash\n{line}\n")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("/l/m.%j/m.%j.out", "/l/m.42/m.42.out"),
        ("%x-%u@%N.%A.log", "job-alice@node.42.log"),
        ("100%%.%j", "100%.42"),
        ("%%j", "%j"),
        ("%5j", "00042"),
        ("%a-%t", "%a-%t"),
    ],
)
def test_filename_patterns(pattern: str, expected: str) -> None:
    expanded = expand_filename(pattern, job_id="42", job_name="job", node="node", user="alice")

    assert expanded == expected
