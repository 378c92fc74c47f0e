"""Writes the settings tables of docs/configuration.md from the settings classes, so the page cannot drift.

Each table lists a settings class's fields as environment variables (or, for the fields of an
AUTH_RESOURCES entry, as JSON fields), with the field's docstring as its meaning and its default. Run it
after adding or changing a setting; deploy/tests/test_documentation.py fails while the page differs from
what this writes, or while a field has no docstring.

    uv run python scripts/configuration_reference.py          # rewrite the generated sections
    uv run python scripts/configuration_reference.py --check  # exit 1 if they are stale
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from mcp_auth_server.oauth.trusted_issuers import TrustedIssuerConfig, WorkloadRule
from mcp_auth_server.settings import AuthSettings, ResourceConfig
from mcp_tools_server.settings import Settings as McpSettings

PAGE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
# Section name in the page's markers -> the class whose fields it lists.
SECTIONS: dict[str, type[BaseModel]] = {
    "auth": AuthSettings,
    "resource": ResourceConfig,
    "trusted_issuer": TrustedIssuerConfig,
    "workload_rule": WorkloadRule,
    "mcp": McpSettings,
}
MARKERS = re.compile(
    r"(<!-- generated: (?P<name>\w+) \(scripts/configuration_reference\.py\) -->\n)(?P<body>.*?)"
    r"(<!-- end generated: (?P=name) -->)",
    re.DOTALL,
)


class UndocumentedSetting(Exception):
    pass


def attribute_docstrings(settings: type[BaseModel]) -> dict[str, str]:
    """Field name -> the docstring written under it in the class body, whitespace collapsed."""
    body = ast.parse(textwrap.dedent(inspect.getsource(settings))).body[0]
    assert isinstance(body, ast.ClassDef)
    docs = {}
    for statement, following in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


def variable(settings: type[BaseSettings], field: str) -> str:
    prefix = str(settings.model_config.get("env_prefix", ""))
    return (prefix + field).upper()


def setting_name(model: type[BaseModel], field: str) -> str:
    """An environment variable for a settings class; the JSON field's own name for any other model."""
    return variable(model, field) if issubclass(model, BaseSettings) else field


def default(value: Any) -> str:
    if value is PydanticUndefined:
        return "required"
    if value is None or value == "":
        return "unset"
    if value == [] or value == {}:
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def table(settings: type[BaseModel]) -> str:
    docs = attribute_docstrings(settings)
    missing = [setting_name(settings, name) for name in settings.model_fields if name not in docs]
    if missing:
        raise UndocumentedSetting(
            f"{settings.__name__}: no docstring under {', '.join(missing)}; write what it means there"
        )
    heading = "variable" if issubclass(settings, BaseSettings) else "field"
    rows = [f"| {heading} | meaning | default |", "| --- | --- | --- |"]
    for name, field in settings.model_fields.items():
        meaning = docs[name].replace("|", "\\|")
        value = field.get_default(call_default_factory=True)
        rows.append(f"| `{setting_name(settings, name)}` | {meaning} | {default(value)} |")
    return "\n".join(rows) + "\n"


def rendered(page: str) -> str:
    """The page with every generated section rewritten; every section in SECTIONS must be present."""
    seen = set()

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in SECTIONS:
            raise UndocumentedSetting(f"docs/configuration.md: unknown generated section {name!r}")
        seen.add(name)
        return f"{match[1]}{table(SECTIONS[name])}{match[4]}"

    result = MARKERS.sub(replace, page)
    if seen != set(SECTIONS):
        raise UndocumentedSetting(f"docs/configuration.md lacks the sections {sorted(set(SECTIONS) - seen)}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale; write nothing")
    args = parser.parse_args(argv)
    current = PAGE.read_text()
    expected = rendered(current)
    if args.check:
        if current != expected:
            print("docs/configuration.md is stale: run scripts/configuration_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(expected)
    return 0


if __name__ == "__main__":
    sys.exit(main())
