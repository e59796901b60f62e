"""The ``calculator`` tool: arithmetic on numbers, evaluated over the AST without ``eval``.

``evaluate`` is the pure core (unit-tested table-driven); ``CalculatorTool`` is what the tool
registry offers the model. Every limit refuses with a ``ToolError`` the model can read, and each
is checked before the work it bounds, so no input can make the evaluation slow or huge.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from agent_service.domain.errors import ToolError
from agent_service.domain.messages import ToolSpec

Number = int | float

MAX_EXPRESSION_CHARS = 200
MAX_DEPTH = 30
MAX_OPERATORS = 100
MAX_EXPONENT = 1000
MAX_RESULT_DIGITS = 1000
_LOG10_2 = math.log10(2)
_ALLOWED = "only numbers, + - * / // % ** and parentheses are allowed"

CALCULATOR_SPEC = ToolSpec(
    name="calculator",
    description=(
        "Evaluate an arithmetic expression. Supports numbers, + - * / // % ** and parentheses, "
        "e.g. '12*(3+4)' or '2**0.5'."
    ),
    parameters={
        "type": "object",
        "properties": {
            "expression": {
                "type": "string",
                "description": "The expression to evaluate, at most 200 characters.",
            }
        },
        "required": ["expression"],
        "additionalProperties": False,
    },
)

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}

_NODE_NAMES: dict[type[ast.AST], str] = {
    ast.Name: "names",
    ast.Call: "function calls",
    ast.Attribute: "attributes",
    ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators",
    ast.Lambda: "lambdas",
    ast.Subscript: "subscripts",
}


def evaluate(expression: str) -> Number:
    """The value of ``expression``; raises ``ToolError`` for anything not plain arithmetic.

    Called by ``CalculatorTool.invoke`` and by the unit tests.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    # Checked on the text because redundant parentheses leave no trace in the AST, and before
    # parsing so the parser itself never sees deep nesting.
    if _paren_depth(expression) > MAX_DEPTH:
        raise ToolError(f"expression is nested deeper than {MAX_DEPTH} levels")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ToolError(f"invalid expression ({_ALLOWED})") from None
    operators = sum(isinstance(node, ast.BinOp | ast.UnaryOp) for node in ast.walk(tree))
    if operators > MAX_OPERATORS:
        raise ToolError(f"expression has more than {MAX_OPERATORS} operators")
    return _eval(tree.body, depth=1)


def format_number(value: Number) -> str:
    """How a result is shown to the model: whole numbers without ``.0``, 12 significant digits."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"


class CalculatorTool:
    """The ``calculator`` tool (implements ``agent.ports.Tool``)."""

    @property
    def spec(self) -> ToolSpec:
        return CALCULATOR_SPEC

    async def invoke(self, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> str:
        expression = arguments.get("expression")
        if not isinstance(expression, str):
            raise ToolError("argument 'expression' must be a string")
        return format_number(evaluate(expression))


def _paren_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest


def _eval(node: ast.expr, depth: int) -> Number:
    if depth > MAX_DEPTH:
        raise ToolError(f"expression is nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant):
        # bool is an int subclass and must be refused.
        if isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return _checked(node.value)
        raise ToolError(f"not allowed: constant {node.value!r} ({_ALLOWED})")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        operand = _eval(node.operand, depth + 1)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _eval(node.left, depth + 1)
        right = _eval(node.right, depth + 1)
        return _apply(node.op, left, right)
    what = _NODE_NAMES.get(type(node), f"'{type(node).__name__}' syntax")
    raise ToolError(f"not allowed: {what} ({_ALLOWED})")


def _apply(op: ast.operator, left: Number, right: Number) -> Number:
    if isinstance(op, ast.Pow):
        _check_power(left, right)
    elif isinstance(op, ast.Mult) and _digits(left) + _digits(right) > MAX_RESULT_DIGITS + 1:
        raise ToolError(f"result would have more than {MAX_RESULT_DIGITS} digits")
    try:
        result = _BINARY[type(op)](left, right)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("result is too large") from None
    if isinstance(result, complex):
        raise ToolError("result is not a real number")
    return _checked(result)


def _check_power(base: Number, exponent: Number) -> None:
    """Refuse a power whose result would be huge, before computing it."""
    if isinstance(base, int) and base in (-1, 0, 1):
        return
    if isinstance(base, int) and isinstance(exponent, int):
        if abs(exponent) > MAX_EXPONENT:
            raise ToolError(f"exponent {exponent} is beyond ±{MAX_EXPONENT}")
        # math.log10 takes ints of any size; the result has floor(e * log10|b|) + 1 digits.
        if exponent > 0 and exponent * math.log10(abs(base)) >= MAX_RESULT_DIGITS:
            raise ToolError(f"result would have more than {MAX_RESULT_DIGITS} digits")
    # With a float on either side Python computes in floating point, which costs the same for
    # any size: an overflow raises OverflowError or gives inf, both refused afterwards.


def _checked(value: Number) -> Number:
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("result is too large" if not math.isnan(value) else "result is undefined")
    if isinstance(value, int) and _digits(value) > MAX_RESULT_DIGITS:
        raise ToolError(f"result would have more than {MAX_RESULT_DIGITS} digits")
    return value


def _digits(value: Number) -> int:
    """Decimal digits of an int's magnitude (floats count as one: their size is bounded)."""
    if isinstance(value, float):
        return 1
    bits = abs(value).bit_length()
    # Approximate from the bit length first so a huge int is never converted to text.
    if bits * _LOG10_2 > MAX_RESULT_DIGITS + 2:
        return int(bits * _LOG10_2)
    return len(str(abs(value)))
