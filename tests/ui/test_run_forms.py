"""The shipped deployments' Run forms, read in a real browser: every parameter is shown with its
description (the launch options' fields too), and every block parameter offers a block picker
listing the saved blocks of its type."""

from __future__ import annotations

import pytest
from deploy_helpers import Deployed
from prefect_ui import Blocks, PrefectUI, block_parameters, expected_fields, words

SHIPPED = ["evaluate/nightly", "serve-and-run/on-demand", "cleanup-orphaned-servers/reaper"]


@pytest.mark.parametrize("name", SHIPPED)
def test_the_run_form_describes_every_parameter(
    deployed: Deployed, ui: PrefectUI, name: str
) -> None:
    deployment = deployed.deployments[name]
    schema = deployment["parameter_openapi_schema"]
    expected = expected_fields(schema, deployment["parameters"])
    assert [path for path, text in expected.items() if not text] == []  # all documented

    shown = ui.run_form(deployment["id"]).fields()

    parameters = {path for path in shown if len(path) == 1}
    assert parameters == {path for path in expected if len(path) == 1}
    assert {path: shown.get(path) for path in expected} == {
        path: words(str(text)) for path, text in expected.items()
    }


@pytest.mark.parametrize("name", SHIPPED)
def test_block_parameters_offer_a_block_picker(
    deployed: Deployed, ui: PrefectUI, blocks: Blocks, name: str
) -> None:
    deployment = deployed.deployments[name]
    pickers = block_parameters(deployment["parameter_openapi_schema"])
    assert "cluster" in pickers  # every shipped flow runs on a cluster block
    form = ui.run_form(deployment["id"])

    for parameter, (block_class, slug) in pickers.items():
        assert block_class in form.type_choices(parameter)
        form.choose_type(parameter, type_name=block_class)
        offered = form.options(parameter)
        assert blocks.names[slug] in offered, f"{parameter}: {offered}"
