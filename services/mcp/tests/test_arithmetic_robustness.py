"""The calculator's parser on hostile input: any text ends in a value or a CalculationError, fast.

test_arithmetic.py checks results against Python for well-formed expressions; this feeds arbitrary
text and token soup (unbalanced parentheses, operator runs, towers of `**`, huge literals), the
input an MCP client can send, and allows nothing else: no other exception, no slow answer.
"""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from mcp_tools_server.tools.arithmetic import CalculationError, evaluate, format_number

SOUP = st.lists(
    st.sampled_from(
        ["0", "1", "9", "99999", ".", "5.", ".5", "+", "-", "*", "/", "//", "%", "**", "(", ")", " "]
    ),
    max_size=40,
).map("".join)
BUDGET = 0.5  # seconds for one evaluation, generous for a loaded CI machine; typical is microseconds


def answers_or_refuses(expression: str) -> None:
    started = time.monotonic()
    try:
        format_number(evaluate(expression))
    except CalculationError as exc:
        message = str(exc)  # a clear message for the person, never empty
        assert message, expression
    assert time.monotonic() - started < BUDGET, expression


@given(st.text(max_size=60))
def test_any_text_is_a_value_or_a_calculation_error(expression: str) -> None:
    answers_or_refuses(expression)


@given(SOUP)
def test_token_soup_is_a_value_or_a_calculation_error_quickly(expression: str) -> None:
    answers_or_refuses(expression)


@given(st.lists(st.integers(min_value=0, max_value=99), min_size=2, max_size=6), st.booleans())
def test_towers_of_powers_are_refused_before_they_are_computed(exponents: list[int], negative: bool) -> None:
    answers_or_refuses(("-" if negative else "") + " ** ".join(map(str, exponents)))
