"""The Prefect UI as a person uses it, driven through a real Chromium: a deployment's run form
(read, filled in, submitted) and an artifact's page (its table read back cell by cell).

Only the UI's older page structure is used: deep links such as
``/deployments/deployment/<id>/run`` and ``/artifacts/artifact/<id>`` open it (``/`` redirects to
the newer ``/v2`` pages, which these helpers never visit). Selectors are the class names that
structure renders (``schema-form-property``, ``p-select``, ``p-table``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, Response

    from vec_inf_flows.presentation import Table

# Without the background-networking flags Chromium's own connections are refused many at a
# time on this machine; a fresh profile per session is the caller's (--user-data-dir).
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = {"width": 1400, "height": 1000}
OPTIONAL = re.compile(r"\s*\(Optional\)$")
_VALIDATE = re.compile(r"/api/ui/schemas/validate$")
_CREATE_RUN = re.compile(r"/api/deployments/[0-9a-f-]{36}/create_flow_run$")

_TO_THE_TOP = """() => {
  document.activeElement?.blur();
  for (const node of document.querySelectorAll('*')) if (node.scrollTop) node.scrollTop = 0;
  window.scrollTo(0, 0);
}"""
# Every rendered form field: its labels from the top-level parameter down, and its description.
_READ_FIELDS = """() => [...document.querySelectorAll('.schema-form-property')].map((field) => {
  const own = (node, part) => node.querySelector(`:scope > .p-label__header ${part}`);
  const path = [];
  for (let node = field; node; node = node.parentElement.closest('.schema-form-property')) {
    path.unshift(own(node, '.schema-form-property__label')?.textContent.trim() ?? '');
  }
  const description = own(field, '.schema-form-property__description')?.innerText ?? '';
  return {path, description};
})"""


def words(text: str) -> str:
    """Text as a page shows it: markdown and HTML collapse runs of white space, and a code span
    (``name``) shows its text without the backticks."""
    return " ".join(text.replace("``", "").split())


@dataclass(frozen=True)
class RenderedTable:
    """A table as read from a page (or as a page must show a ``presentation.Table``)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, table: Table) -> RenderedTable:
        """What the UI must show for ``table``: its columns and cells, white space collapsed."""
        return cls(
            tuple(words(name) for name in table.columns),
            tuple(tuple(words(cell) for cell in row) for row in table.rows),
        )

    def column(self, name: str) -> list[str]:
        assert name in self.columns, f"no column {name!r} in {self.columns}"
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def value(self, key: str) -> str:
        """The second cell of the row whose first cell is ``key`` (a key-value table)."""
        found = [row[1] for row in self.rows if row[0] == key]
        assert len(found) == 1, f"{len(found)} rows {key!r} in {self.rows}"
        return found[0]


@dataclass(frozen=True)
class Blocks:
    """The saved blocks the forms' pickers offer: block names by block type slug."""

    names: dict[str, str]
    ids: dict[str, str]

    @property
    def cluster(self) -> str:
        return self.names["vec-inf-slurm-cluster"]

    @property
    def cluster_id(self) -> str:
        return self.ids["vec-inf-slurm-cluster"]


class PrefectUI:
    """One browser tab on the UI of the Prefect server at ``base_url``."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")

    def open(self, path: str, ready: str) -> None:
        """Go to ``path`` and wait until the element ``ready`` has rendered."""
        self.page.goto(f"{self.base_url}{path}")
        self.page.locator(ready).first.wait_for()

    def run_form(self, deployment_id: str) -> RunForm:
        self.open(f"/deployments/deployment/{deployment_id}/run", ".schema-form-property")
        return RunForm(self.page)

    def artifact_table(self, artifact_id: str) -> RenderedTable:
        """The table on an artifact's page, header and cells as rendered."""
        self.open(f"/artifacts/artifact/{artifact_id}", ".artifact-data-table tbody tr")
        table = self.page.locator(".artifact-data-table table")
        columns = tuple(words(text) for text in table.locator("thead th").all_inner_texts())
        rows = tuple(
            tuple(words(text) for text in row.locator("td").all_inner_texts())
            for row in table.locator("tbody tr").all()
        )
        return RenderedTable(columns, rows)

    def run_state(self, run_id: str) -> str:
        """The state badge of a flow run's page ("Completed" ...)."""
        self.open(f"/runs/flow-run/{run_id}", ".state-badge")
        return words(self.page.locator(".state-badge").first.inner_text())

    def screenshot(
        self, path: Path, width: int = VIEWPORT["width"], height: int = VIEWPORT["height"]
    ) -> Path:
        """A PNG of the top of the page, in a window of that size, for people to look at."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.set_viewport_size({"width": width, "height": height})
        self.page.evaluate(_TO_THE_TOP)
        self.page.screenshot(path=str(path))
        self.page.set_viewport_size(VIEWPORT)
        return path


class RunForm:
    """A deployment's Run form (``/deployments/deployment/<id>/run``).

    A field is named by its labels from the parameter down, e.g. ``("launch_options", "Time")``:
    the parameter's name, then a model field's title.
    """

    def __init__(self, page: Page) -> None:
        self.page = page

    def fields(self) -> dict[tuple[str, ...], str]:
        """Every field the form shows, with the description shown under its label."""
        found: list[dict[str, Any]] = self.page.evaluate(_READ_FIELDS)
        fields = {}
        for field in found:
            path = tuple(OPTIONAL.sub("", label) for label in field["path"])
            if all(path):
                fields[path] = words(field["description"])
        return fields

    def field(self, *path: str) -> Locator:
        scope = self.page.locator("body")
        for label in path:
            own_label = self.page.locator(
                ":scope > .p-label__header .schema-form-property__label",
                has_text=re.compile(rf"^{re.escape(label)}(\s*\(Optional\))?$"),
            )
            scope = scope.locator(".schema-form-property").filter(has=own_label).first
        return scope

    def type_choices(self, *path: str) -> list[str]:
        """The types a field of several types offers (e.g. SlurmCluster, str, None)."""
        buttons = self.field(*path).locator(":scope > .p-label__body > .p-button-group button")
        return [words(text) for text in buttons.all_inner_texts()]

    def choose_type(self, *path: str, type_name: str) -> None:
        group = self.field(*path).locator(":scope > .p-label__body > .p-button-group")
        group.get_by_role("button", name=type_name, exact=True).click()

    def _open_select(self, *path: str) -> None:
        """Open a select and wait for its options. It opens from the keyboard (a synthetic
        click leaves it closed), and only once its options have loaded."""
        control = self.field(*path).locator(".p-select-button__control").first
        option = self.page.get_by_role("option").first
        for _ in range(20):
            control.focus()
            self.page.keyboard.press("ArrowDown")
            try:
                option.wait_for(timeout=1_000)
                return
            except Exception:
                self.page.keyboard.press("Escape")
        raise AssertionError(f"the select of {path} never opened")

    def options(self, *path: str) -> list[str]:
        """What a select (an enum, a block picker) offers; the select is closed again."""
        self._open_select(*path)
        offered = self.page.get_by_role("option").all_inner_texts()
        self.page.keyboard.press("Escape")
        return [words(text) for text in offered]

    def select(self, *path: str, option: str) -> None:
        self._open_select(*path)
        self.page.get_by_role("option", name=option, exact=True).click()

    def fill(self, *path: str, value: str, item: int | None = None) -> None:
        """Type into a text field (or into item ``item`` of a list field)."""
        field = self.field(*path)
        if item is not None:
            field = field.locator(".schema-form-property-array-item").nth(item)
        field.locator("textarea, input").first.fill(value)

    def submit(self, timeout: float = 30.0, attempts: int = 5) -> str:
        """Press Submit and return the id of the flow run the UI created. The UI checks the
        parameters with the server first; if it refuses them, say why. A busy SQLite server
        answers 503 (SQLITE_BUSY: nothing was written) and the UI shows an error without
        trying again, so, as a person would, press Submit again."""
        answers: list[Response] = []

        def record(response: Response) -> None:
            if _VALIDATE.search(response.url) or _CREATE_RUN.search(response.url):
                answers.append(response)

        self.page.on("response", record)
        try:
            for _ in range(attempts):
                created = self._press_submit(answers, timeout)
                if created is not None:
                    return created
                self.page.wait_for_timeout(1_000)
        finally:
            self.page.remove_listener("response", record)
        seen = [f"{answer.status} {answer.url}: {answer.text()[:500]}" for answer in answers]
        raise AssertionError(f"no flow run created in {attempts} attempts: {seen}")

    def _press_submit(self, answers: list[Response], timeout: float) -> str | None:
        """The new run's id, or None if the server was too busy to create it."""
        answers.clear()
        self.page.get_by_role("button", name="Submit", exact=True).click()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for answer in answers:
                if _VALIDATE.search(answer.url) and not answer.json().get("valid", True):
                    raise AssertionError(f"the UI refused the form: {answer.json()}")
                if _CREATE_RUN.search(answer.url) and answer.status == 503:
                    return None
                if _CREATE_RUN.search(answer.url):
                    assert answer.ok, f"no flow run created: {answer.status} {answer.text()}"
                    return str(answer.json()["id"])
            self.page.wait_for_timeout(100)
        raise AssertionError(f"no answer to Submit within {timeout:g} s")


def block_parameters(schema: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Parameters that take a block: name -> (the block class's title, its block type slug)."""
    found = {}
    for name, prop in schema["properties"].items():
        for branch in prop.get("anyOf", [prop]):
            definition = _definition(schema, branch)
            if definition and definition.get("block_type_slug"):
                found[name] = (definition["title"], definition["block_type_slug"])
    return found


def expected_fields(
    schema: dict[str, Any], values: dict[str, Any]
) -> dict[tuple[str, ...], str | None]:
    """The fields a run form must show, with the description each must carry: every
    parameter, and the fields of a model parameter (launch options) whose value is set."""
    expected: dict[tuple[str, ...], str | None] = {}
    for name, prop in schema["properties"].items():
        label = prop.get("title", name)
        expected[(label,)] = prop.get("description")
        if not isinstance(values.get(name), dict):
            continue
        models = [_definition(schema, branch) for branch in prop.get("anyOf", [prop])]
        for model in models:
            if model and not model.get("block_type_slug") and model.get("properties"):
                for field, sub in model["properties"].items():
                    expected[(label, sub.get("title", field))] = sub.get("description")
    return expected


def _definition(schema: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any] | None:
    ref = branch.get("$ref")
    if not isinstance(ref, str):
        return None
    found: dict[str, Any] = schema.get("definitions", {})[ref.rsplit("/", 1)[-1]]
    return found
