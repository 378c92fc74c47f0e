"""The DPoP page's client example is `shared/examples/dpop_client.py` verbatim (the end-to-end tests,
services/auth/tests/e2e/test_dpop_end_to_end.py, run that file against the real services)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_dpop_page_shows_the_example_file_verbatim() -> None:
    page = (ROOT / "docs" / "dpop.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    assert blocks == [(ROOT / "shared" / "examples" / "dpop_client.py").read_text()]
