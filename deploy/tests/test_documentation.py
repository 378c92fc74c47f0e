"""Documentation that cannot drift from the code (issue 13, finding 7).

The configuration reference is what scripts/configuration_reference.py writes from the settings classes;
every variable any page names is a setting that exists (or one of the few others the page on
configuration lists); the operating guide's audit events are the code's; the README and the site agree on
where the pages are.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel

from mcp_auth_server.settings import AuthSettings, ResourceConfig
from mcp_auth_server.store.audit import EVENT_NAMES, SECURITY_EVENTS
from mcp_tools_server.settings import Settings as McpSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), REPO_ROOT / "README.md", REPO_ROOT / ".env.example"]
SETTING_LIKE = re.compile(r"\b((?:AUTH|MCP|GITHUB|GOOGLE|OIDC)_[A-Z0-9_]*[A-Z0-9])\b")


def load_generator() -> ModuleType:
    path = REPO_ROOT / "scripts" / "configuration_reference.py"
    spec = importlib.util.spec_from_file_location("configuration_reference", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


def test_configuration_reference_is_generated_from_the_settings(generator: ModuleType) -> None:
    page = (DOCS / "configuration.md").read_text()
    assert page == generator.rendered(page), "stale: run `uv run python scripts/configuration_reference.py`"


@pytest.mark.parametrize(
    "settings", [AuthSettings, ResourceConfig, McpSettings], ids=lambda cls: cls.__name__
)
def test_every_setting_is_documented(generator: ModuleType, settings: type[BaseModel]) -> None:
    documented = generator.attribute_docstrings(settings)
    undocumented = sorted(set(settings.model_fields) - set(documented))
    assert not undocumented, f"no docstring under {undocumented}"
    assert all(len(text) > 10 for text in documented.values())


def test_an_undocumented_setting_fails_the_generator(generator: ModuleType) -> None:
    """The failure the previous test relies on, shown once with a field that has no docstring."""

    class Incomplete(AuthSettings):
        auth_new_knob: int = 3

    with pytest.raises(generator.UndocumentedSetting, match="AUTH_NEW_KNOB"):
        generator.table(Incomplete)


def existing_variables(generator: ModuleType) -> set[str]:
    return {
        generator.variable(settings, name)
        for settings in (AuthSettings, McpSettings)
        for name in settings.model_fields
    }


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_every_variable_a_page_names_exists(generator: ModuleType, page: Path) -> None:
    named = set(SETTING_LIKE.findall(page.read_text()))
    unknown = sorted(named - existing_variables(generator))
    assert not unknown, f"{page.name} names settings that do not exist: {unknown}"


def audit_table() -> dict[str, str]:
    """The operating guide's audit-event table: event -> level."""
    section = (DOCS / "operating.md").read_text().split("## Logs and audit events", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z_]+)` \| (INFO|WARNING) \|", section, re.MULTILINE))


def test_the_audit_event_list_is_the_codes() -> None:
    table = audit_table()
    assert sorted(table) == sorted(EVENT_NAMES)
    warnings = {event for event, level in table.items() if level == "WARNING"}
    assert warnings == SECURITY_EVENTS, "WARNING exactly for the security events"


def test_readme_links_every_page_of_the_site() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    nav = (REPO_ROOT / "mkdocs.yml").read_text()
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in readme or page.name == "index.md", f"README does not link {page.name}"
        assert page.name in nav, f"mkdocs.yml's nav lacks {page.name}"
