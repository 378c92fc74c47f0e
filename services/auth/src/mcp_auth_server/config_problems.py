"""One line naming what is wrong with a configured entry (a resource, a trusted issuer), for start-up
errors and the CLI: the operator sees the field and the rule, not pydantic's report."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError


def first_problem(error: ValidationError, model: type[BaseModel], noun: str) -> str:
    """The first problem with an entry of `model` (`noun`: "a resource"), naming its field:
    `default_scopes: github:repos must ...`."""
    detail = error.errors()[0]
    field = ".".join(str(part) for part in detail["loc"]) or "entry"
    if detail["type"] == "missing":
        return f"{field}: missing"
    if detail["type"] == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return f"{field}: not a field of {noun} (fields: {known})"
    return f"{field}: {str(detail['msg']).removeprefix('Value error, ')}"
