"""A real headless Chromium (Debian's package, driven by Playwright) for tests of the pages people see.

Playwright's own browser download cannot work here, and is never run: the tests launch
/usr/bin/chromium (or $CHROMIUM). Without it the tests are skipped on a developer's machine,
and fail under CI (`CI` set), where `.ci/run` installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

# The flags that keep Chromium quiet on a machine with no network but loopback.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if os.path.exists(path):
        return path
    message = f"Chromium not found at {path} (apt-get install chromium, or set CHROMIUM)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the browser tests")
    pytest.skip(message)


@pytest_asyncio.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
