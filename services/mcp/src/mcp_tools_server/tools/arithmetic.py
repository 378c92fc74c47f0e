"""Evaluates untrusted arithmetic text safely: a real tokenizer and parser with limits, never `eval`.

Grammar (Python's precedence and associativity, restricted to numbers):

    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/" | "//" | "%") unary)*
    unary      := ("+" | "-") unary | power
    power      := atom ("**" unary)?          # right-associative, binds tighter than unary minus
    atom       := NUMBER | "(" expression ")"
    NUMBER     := digits ["." digits*] | "." digits

So `-2**2` is -4, `2**-1` is 0.5 and `2**3**2` is 512, as in Python.

Numbers: integer literals and the results of `+ - * // % **` on integers stay exact Python integers.
Anything involving a decimal literal, `/` or a negative exponent is a `decimal.Decimal` with 28
significant digits, so `0.1 + 0.2` is exactly 0.3 rather than a binary float's 0.30000000000000004.
`//` and `%` floor like Python's (the remainder takes the divisor's sign) for both kinds.

Limits keep a hostile expression from costing more than a few milliseconds: its length, its nesting,
and every result's size (under 10**1000). `**` on integers is refused *before* it is computed when
the result would be too large, which is what makes `9**9**9` fail fast instead of running for hours.

The parser turns the text into postfix order; evaluation is then a loop over a stack, so a long
chain like `1+1+...+1` never recurses.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

Number: TypeAlias = int | Decimal

MAX_EXPRESSION_LENGTH = 1000
MAX_NESTING = 50
MAX_RESULT_DIGITS = 1000

_INT_LIMIT = 10**MAX_RESULT_DIGITS
# 2**_INT_LIMIT_BITS >= 10**MAX_RESULT_DIGITS: a power whose lower bound passes this is refused unseen.
_INT_LIMIT_BITS = _INT_LIMIT.bit_length()

# Decimal arithmetic with the same magnitude limit as integers; these three conditions raise
# instead of quietly producing NaN or Infinity.
_DECIMAL = decimal.Context(
    prec=28,
    Emax=MAX_RESULT_DIGITS - 1,
    Emin=-(MAX_RESULT_DIGITS - 1),
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

_TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d*)?|\.\d+)|(?P<operator>\*\*|//|[-+*/%()]))")


class CalculationError(ValueError):
    """The expression is malformed, too costly, or has no value (division by zero, ...)."""


@dataclass(frozen=True)
class _Token:
    text: str
    position: int  # 1-based column, for messages a person can act on

    @property
    def is_number(self) -> bool:
        return self.text[0].isdigit() or self.text[0] == "."


_END = _Token("end of expression", 0)


def evaluate(expression: str) -> Number:
    """The value of `expression`; raises `CalculationError` with a message meant for the caller."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise CalculationError(
            f"expression is too long ({len(expression)} characters; the limit is {MAX_EXPRESSION_LENGTH})"
        )
    return _run(_Parser(expression).parse())


def format_number(value: Number) -> str:
    """Plain notation without exponent or trailing zeros: `2.50` -> `2.5`, `1E+3` -> `1000`."""
    if isinstance(value, int):
        return str(value)
    if value == 0:  # also turns Decimal's "-0" into "0"
        return "0"
    return format(value.normalize(_DECIMAL), "f")


def _tokenize(expression: str) -> Iterator[_Token]:
    position = 0
    stripped_end = len(expression.rstrip())
    while position < stripped_end:
        match = _TOKEN.match(expression, position)
        if match is None:
            column = len(expression) - len(expression[position:].lstrip()) + 1
            raise CalculationError(f"unexpected character {expression[column - 1]!r} at position {column}")
        text = match.group("number") or match.group("operator")
        yield _Token(text, match.start(match.lastgroup or 0) + 1)
        position = match.end()


class _Parser:
    """Recursive descent over the grammar above, emitting tokens in postfix order."""

    def __init__(self, expression: str) -> None:
        self._tokens = list(_tokenize(expression))
        self._index = 0
        self._depth = 0
        # Postfix program: numbers and binary operators as written, "neg"/"pos" for unary signs.
        self.program: list[Number | str] = []

    def parse(self) -> list[Number | str]:
        if not self._tokens:
            raise CalculationError("expression is empty")
        self._expression()
        if self._peek() is not _END:
            token = self._peek()
            raise CalculationError(f"unexpected {token.text!r} at position {token.position}")
        return self.program

    def _peek(self) -> _Token:
        return self._tokens[self._index] if self._index < len(self._tokens) else _END

    def _take(self) -> _Token:
        token = self._peek()
        self._index += 1
        return token

    @contextmanager
    def _nested(self) -> Iterator[None]:
        """Every recursive step goes through here, so depth is bounded before Python's stack is."""
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise CalculationError(f"expression is nested too deeply (the limit is {MAX_NESTING} levels)")
        yield
        self._depth -= 1

    def _expression(self) -> None:
        self._term()
        while self._peek().text in ("+", "-"):
            operator = self._take().text
            self._term()
            self.program.append(operator)

    def _term(self) -> None:
        self._unary()
        while self._peek().text in ("*", "/", "//", "%"):
            operator = self._take().text
            self._unary()
            self.program.append(operator)

    def _unary(self) -> None:
        if self._peek().text in ("+", "-"):
            sign = self._take().text
            with self._nested():
                self._unary()
            self.program.append("neg" if sign == "-" else "pos")
        else:
            self._power()

    def _power(self) -> None:
        self._atom()
        if self._peek().text == "**":
            self._take()
            with self._nested():
                self._unary()
            self.program.append("**")

    def _atom(self) -> None:
        token = self._take()
        if token.is_number:
            self.program.append(_literal(token.text))
        elif token.text == "(":
            with self._nested():
                self._expression()
            closing = self._take()
            if closing.text != ")":
                where = "" if closing is _END else f" at position {closing.position}"
                raise CalculationError(f"expected ')' to close '(' at position {token.position}{where}")
        elif token is _END:
            raise CalculationError("expression ends where a number was expected")
        else:
            raise CalculationError(f"expected a number at position {token.position}, found {token.text!r}")


def _literal(text: str) -> Number:
    if "." in text:
        return _decimal(lambda: _DECIMAL.create_decimal(text))
    return _checked(int(text))


def _run(program: list[Number | str]) -> Number:
    stack: list[Number] = []
    for step in program:
        if not isinstance(step, str):
            stack.append(step)
        elif step in ("neg", "pos"):
            stack.append(_negate(stack.pop()) if step == "neg" else stack.pop())
        else:
            right = stack.pop()
            stack.append(_BINARY[step](stack.pop(), right))
    return stack.pop()


def _checked(value: int) -> int:
    if abs(value) >= _INT_LIMIT:
        raise CalculationError(f"result is too large (the limit is {MAX_RESULT_DIGITS} digits)")
    return value


def _decimal(compute: Callable[[], Decimal]) -> Decimal:
    """Runs a Decimal operation, turning its trapped conditions into messages."""
    try:
        return compute()
    except decimal.DivisionByZero:
        raise CalculationError("division by zero") from None
    except decimal.Overflow:
        raise CalculationError(f"result is too large (the limit is {MAX_RESULT_DIGITS} digits)") from None
    except decimal.InvalidOperation:
        # Reached by a negative number to a fractional power, or a quotient too long for 28 digits.
        raise CalculationError("the result is not a representable real number") from None


def _negate(value: Number) -> Number:
    return -value if isinstance(value, int) else _DECIMAL.minus(value)


def _add(left: Number, right: Number) -> Number:
    if isinstance(left, int) and isinstance(right, int):
        return _checked(left + right)
    return _decimal(lambda: _DECIMAL.add(left, right))


def _subtract(left: Number, right: Number) -> Number:
    if isinstance(left, int) and isinstance(right, int):
        return _checked(left - right)
    return _decimal(lambda: _DECIMAL.subtract(left, right))


def _multiply(left: Number, right: Number) -> Number:
    if isinstance(left, int) and isinstance(right, int):
        return _checked(left * right)
    return _decimal(lambda: _DECIMAL.multiply(left, right))


def _divide(left: Number, right: Number) -> Number:
    if right == 0:
        raise CalculationError("division by zero")
    return _decimal(lambda: _DECIMAL.divide(left, right))


def _floor_divide(left: Number, right: Number) -> Number:
    return _floor_divmod(left, right)[0]


def _modulo(left: Number, right: Number) -> Number:
    return _floor_divmod(left, right)[1]


def _floor_divmod(left: Number, right: Number) -> tuple[Number, Number]:
    if right == 0:
        raise CalculationError("division by zero")
    if isinstance(left, int) and isinstance(right, int):
        return divmod(left, right)
    # Decimal's own `//` and `%` truncate toward zero; Python (and we) floor toward negative infinity.
    quotient, remainder = _decimal(lambda: _DECIMAL.divide_int(left, right)), _DECIMAL.remainder(left, right)
    if remainder != 0 and (remainder < 0) != (right < 0):
        return _DECIMAL.subtract(quotient, 1), _DECIMAL.add(remainder, right)
    return quotient, remainder


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
        # |base| >= 2 makes the result at least 2**(exponent * (bits - 1)): refuse before computing it.
        if abs(base) >= 2 and exponent * (abs(base).bit_length() - 1) > _INT_LIMIT_BITS:
            raise CalculationError(f"result is too large (the limit is {MAX_RESULT_DIGITS} digits)")
        return _checked(base**exponent)
    if exponent == 0:
        return Decimal(1)  # Decimal calls 0**0 undefined; Python (and we) say 1
    if base == 0 and exponent < 0:
        raise CalculationError("division by zero (0 raised to a negative power)")  # Decimal says Infinity
    return _decimal(lambda: _DECIMAL.power(base, exponent))


_BINARY: dict[str, Callable[[Number, Number], Number]] = {
    "+": _add,
    "-": _subtract,
    "*": _multiply,
    "/": _divide,
    "//": _floor_divide,
    "%": _modulo,
    "**": _power,
}
