"""The arithmetic parser: Python's precedence and results, exact integers, and limits that refuse fast."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_tools_server.tools.arithmetic import (
    MAX_EXPRESSION_LENGTH,
    MAX_NESTING,
    CalculationError,
    evaluate,
    format_number,
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("7 ** 8", "5764801"),
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("10 - 4 - 3", "3"),
        ("64 / 4 / 2", "8"),
        ("2 ** 3 ** 2", "512"),
        ("-2 ** 2", "-4"),
        ("(-2) ** 2", "4"),
        ("2 ** -1", "0.5"),
        ("- - 3", "3"),
        ("+-+3", "-3"),
        ("2 * -3", "-6"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),
        ("-7 % 3", "2"),
        ("7 % -3", "-2"),
        ("-7.5 // 2", "-4"),
        ("-7.5 % 2", "0.5"),
        ("0.1 + 0.2", "0.3"),
        (".5 + 5.", "5.5"),
        ("1 / 3", "0.3333333333333333333333333333"),
        ("6 / 3", "2"),
        ("2 ** 0.5", "1.414213562373095048801688724"),
        ("0 ** 0", "1"),
        ("0.0 * -1", "0"),
        ("12345678901234567890 * 98765432109876543210", "1219326311370217952237463801111263526900"),
    ],
)
def test_evaluates_like_python_with_exact_integers_and_decimals(expression: str, expected: str) -> None:
    assert format_number(evaluate(expression)) == expected


def test_integer_results_stay_python_integers() -> None:
    assert evaluate("3 ** 40 + 1") == 3**40 + 1
    assert isinstance(evaluate("7 ** 8"), int)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "division by zero"),
        ("1 // 0", "division by zero"),
        ("1 % 0.0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("(-8) ** 0.5", "the result is not a representable real number"),
        ("", "expression is empty"),
        ("1 +", "expression ends where a number was expected"),
        ("(1 + 2", "expected ')' to close '(' at position 1"),
        ("1 + 2)", "unexpected ')' at position 6"),
        ("2 3", "unexpected '3' at position 3"),
        ("1 + * 2", "expected a number at position 5, found '*'"),
        ("2 ^ 3", "unexpected character '^' at position 3"),
        ("__import__('os')", "unexpected character '_' at position 1"),
        ("1.2.3", "unexpected '.3' at position 4"),
    ],
)
def test_mistakes_come_back_as_clear_messages(expression: str, message: str) -> None:
    with pytest.raises(CalculationError, match="^" + re.escape(message)):
        evaluate(expression)


@pytest.mark.parametrize(
    "expression",
    ["9**9**9", "2 ** 10**9", "1.5 ** 387420489", "1.0000001 ** 99999999999", "10 ** 1000", "10.0 ** 1000"],
)
def test_huge_results_are_refused_before_they_are_computed(expression: str) -> None:
    started = time.perf_counter()
    with pytest.raises(CalculationError, match="result is too large"):
        evaluate(expression)
    assert time.perf_counter() - started < 0.1


def test_tiny_decimal_results_round_to_zero() -> None:
    assert format_number(evaluate("0.5 ** 387420489")) == "0"


@pytest.mark.parametrize(
    "expression",
    [
        "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1),
        "-" * (MAX_NESTING + 1) + "1",
        "2" + "**2" * (MAX_NESTING + 1),
    ],
)
def test_deep_nesting_is_refused(expression: str) -> None:
    with pytest.raises(CalculationError, match="nested too deeply"):
        evaluate(expression)


def test_nesting_up_to_the_limit_is_fine() -> None:
    assert evaluate("(" * MAX_NESTING + "1" + ")" * MAX_NESTING) == 1


def test_long_input_is_refused_but_a_long_flat_chain_within_the_limit_is_not() -> None:
    with pytest.raises(CalculationError, match="too long"):
        evaluate("1" * (MAX_EXPRESSION_LENGTH + 1))
    chain = "+".join(["1"] * (MAX_EXPRESSION_LENGTH // 2))
    assert evaluate(chain) == MAX_EXPRESSION_LENGTH // 2


# Python's own evaluation is the oracle for expressions built from the same grammar. Exponents are
# small literals so that Python itself finishes; integer-only expressions must match exactly.
_integers = st.integers(min_value=0, max_value=999).map(str)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "//", "%"]), children).map(" ".join),
        st.tuples(children, st.integers(0, 3)).map(lambda pair: f"{pair[0]} ** {pair[1]}"),
        children.map(lambda text: f"-{text}"),
        children.map(lambda text: f"({text})"),
    )


_integer_expressions = st.recursive(_integers, _combine, max_leaves=12)


@given(_integer_expressions)
def test_integer_expressions_match_python_exactly(expression: str) -> None:
    try:
        expected = eval(expression, {"__builtins__": {}})  # noqa: S307 - the test oracle, on generated arithmetic
    except ZeroDivisionError:
        with pytest.raises(CalculationError, match="division by zero"):
            evaluate(expression)
        return
    if abs(expected) >= 10**1000:
        with pytest.raises(CalculationError, match="too large"):
            evaluate(expression)
        return
    assert evaluate(expression) == expected


_decimals = st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False)


@given(_decimals, st.lists(st.tuples(st.sampled_from(["+", "-", "*"]), _decimals), max_size=3))
def test_decimal_sums_and_products_are_exact(first: Decimal, steps: list[tuple[str, Decimal]]) -> None:
    # At most four 7-digit operands: every exact result fits in 28 digits, so nothing may be rounded.
    expression = f"({first})" + "".join(f" {operator} ({operand})" for operator, operand in steps)
    oracle = f"F('{first}')" + "".join(f" {operator} F('{operand}')" for operator, operand in steps)
    expected = eval(oracle, {"__builtins__": {}, "F": Fraction})  # noqa: S307 - the test oracle
    assert Fraction(evaluate(expression)) == expected


@given(_decimals, _decimals.filter(lambda divisor: divisor != 0))
def test_division_is_correct_to_28_digits(dividend: Decimal, divisor: Decimal) -> None:
    exact = Fraction(dividend) / Fraction(divisor)
    assert abs(Fraction(evaluate(f"({dividend}) / ({divisor})")) - exact) <= abs(exact) * Fraction(1, 10**27)


def test_decimal_results_are_decimals() -> None:
    assert evaluate("0.1 + 0.2") == Decimal("0.3")
