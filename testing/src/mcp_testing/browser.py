"""A minimal browser for flow tests: keeps cookies, follows redirects across hosts, submits forms.

It reads real HTML forms (stdlib HTMLParser), so a test that approves a consent page does so
through the same form a person would, with whatever hidden fields and cookies the page set.
It stops before fetching any URL under `stop_at` (the client's redirect URI) and hands it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, list[str]] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(
                Form(action=values.get("action", ""), method=values.get("method", "get").lower())
            )
        elif self.forms and tag == "input" and "name" in values:
            self.forms[-1].fields[values["name"]] = values.get("value", "")
        elif self.forms and tag == "button" and "name" in values:
            self.forms[-1].buttons.setdefault(values["name"], []).append(values.get("value", ""))


@dataclass
class Page:
    url: str
    status_code: int
    text: str
    headers: httpx.Headers

    def forms(self) -> list[Form]:
        parser = _FormParser()
        parser.feed(self.text)
        return parser.forms


@dataclass
class Arrival:
    """The browser was sent to the client's redirect URI (not fetched)."""

    url: str


class Browser:
    def __init__(self, client: httpx.AsyncClient, stop_at: list[str], max_redirects: int = 10) -> None:
        self.client = client
        self.stop_at = stop_at
        self.max_redirects = max_redirects

    async def open(self, url: str) -> Page | Arrival:
        return await self._follow(self.client.build_request("GET", url))

    async def submit(self, page: Page, data: dict[str, str], form_index: int = 0) -> Page | Arrival:
        """Submit a form of `page` with its own fields plus `data` (e.g. the button pressed)."""
        form = page.forms()[form_index]
        action = urljoin(page.url, form.action or page.url)
        fields = {**form.fields, **data}
        if form.method == "post":
            return await self._follow(self.client.build_request("POST", action, data=fields))
        return await self._follow(self.client.build_request("GET", action, params=fields))

    async def _follow(self, request: httpx.Request) -> Page | Arrival:
        for _ in range(self.max_redirects):
            if any(str(request.url).startswith(prefix) for prefix in self.stop_at):
                return Arrival(str(request.url))
            response = await self.client.send(request, follow_redirects=False)
            if response.status_code not in (301, 302, 303, 307, 308):
                return Page(str(response.url), response.status_code, response.text, response.headers)
            location = urljoin(str(response.url), response.headers["location"])
            request = self.client.build_request("GET", location)
        raise AssertionError("too many redirects")
