"""JSON texts from clients (RFC 8259): registration requests and client metadata documents.

`json.loads` accepts more than can be stored or safely handled, each of which was a 500:
  * nesting thousands deep raises RecursionError, not a decoding error;
  * `"\\ud800"` escapes an unpaired surrogate (RFC 8259 §8.2: "unpredictable"), which cannot be encoded
    as UTF-8 for the database;
  * `"\\u0000"`, a NUL, which PostgreSQL does not store in text.
Each is refused here as not acceptable JSON, in the one place both readers call.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # client metadata is a flat object of strings and lists; this is generous


class InvalidJson(ValueError):
    """The body is not JSON this server accepts; the message says why (safe to show)."""


def parse_json_text(body: bytes) -> Any:
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidJson("not JSON (UTF-8)") from None
    except RecursionError:
        raise InvalidJson(f"nested more than {MAX_DEPTH} levels deep") from None
    _check(document, 0)
    return document


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidJson(f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, member in value.items():
            _check_text(key)
            _check(member, depth + 1)
    elif isinstance(value, list):
        for member in value:
            _check(member, depth + 1)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise InvalidJson("a string contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJson("a string contains an unpaired surrogate (RFC 8259 §8.2)") from None
