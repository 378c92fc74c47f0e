"""The `calculate` tool: arithmetic on an expression, with mistakes reported to the caller as tool errors."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from mcp_tools_server.tools.arithmetic import MAX_EXPRESSION_LENGTH, CalculationError, evaluate, format_number


def calculate(
    expression: Annotated[
        str,
        Field(
            description="e.g. '(1.5 + 2) * -3 ** 2' or '7 // 2'",
            max_length=MAX_EXPRESSION_LENGTH,
        ),
    ],
) -> str:
    """Evaluate an arithmetic expression and return its exact value as text.

    Supports + - * / // % ** with parentheses, unary minus and decimal numbers, with Python's precedence
    (** is right-associative and binds tighter than unary minus: -2**2 is -4). Integers stay exact;
    decimals and / use 28 significant digits, so 0.1 + 0.2 is 0.3. // and % floor like Python.
    Results are limited to 1000 digits, expressions to 1000 characters and 50 levels of nesting."""
    try:
        return format_number(evaluate(expression))
    except CalculationError as error:
        raise ToolError(f"Cannot calculate {expression!r}: {error}") from None
