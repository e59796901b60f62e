"""The calculator: results, formatting, and every limit refusing quickly."""

from __future__ import annotations

import time

import pytest

from agent_service.agent.tools.calculator import CalculatorTool, evaluate, format_number
from agent_service.domain.errors import ToolError


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("12*(3+4)", "84"),
        ("2+3*4", "14"),
        ("(2+3)*4", "20"),
        ("2**3**2", "512"),
        ("-2**2", "-4"),
        ("(-2)**2", "4"),
        ("-7", "-7"),
        ("+5 - -3", "8"),
        ("1/3", "0.333333333333"),
        ("0.1+0.2", "0.3"),
        ("10/4", "2.5"),
        ("84.0", "84"),
        ("6/3", "2"),
        ("-7//2", "-4"),
        ("7.5//2", "3"),
        ("-7%3", "2"),
        ("7.5%2", "1.5"),
        ("2**-2", "0.25"),
        ("2**0.5", "1.41421356237"),
        ("1e-7", "1e-07"),
        ("1e20", "1e+20"),
        ("10**999", "1" + "0" * 999),
        ("(-1)**(10**10)", "1"),
        ("  3 + 4  ", "7"),
    ],
)
def test_evaluates(expression: str, expected: str) -> None:
    assert format_number(evaluate(expression)) == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("2**10**10", "exponent"),
        ("9**9**9", "exponent"),
        ("10**100000", "exponent"),
        ("10**1000", "1000 digits"),
        ("7**1200", "exponent"),
        ("99**600", "1000 digits"),
        ("(10**500)*(10**500)", "1000 digits"),
        ("(10**999)*10", "1000 digits"),
        ("10**999+9*10**999", "1000 digits"),
        ("1" * 201, "longer than 200"),
        ("1+" * 100 + "1", "longer than 200"),
        ("(" * 100 + "1" + ")" * 100, "longer than 200"),
        ("(" * 40 + "1" + ")" * 40, "nested deeper"),
        ("1+(" * 31 + "1" + ")" * 31, "nested deeper"),
        ("-" * 150 + "1", "more than 100 operators"),
        ("__import__('os')", "function calls"),
        ("abs(-1)", "function calls"),
        ("x", "names"),
        ("(1).real", "attributes"),
        ("'a'*3", "constant"),
        ("lambda: 1", "lambdas"),
        ("1 < 2", "comparisons"),
        ("1 and 2", "boolean operators"),
        ("True + 1", "constant"),
        ("1j", "constant"),
        ("[1, 2]", "List"),
        ("1 if 1 else 2", "IfExp"),
        ("1 << 3", "BinOp"),
        ("~1", "UnaryOp"),
        ("1/0", "division by zero"),
        ("1//0", "division by zero"),
        ("1%0", "division by zero"),
        ("1.0/0.0", "division by zero"),
        ("0**-1", "division by zero"),
        ("1e308*10", "too large"),
        ("2.0**10000", "too large"),
        ("1.5**(10**100)", "too large"),
        ("(-8)**(1/3)", "not a real number"),
        ("1 +", "invalid expression"),
        ("", "invalid expression"),
        ("1\x00", "invalid expression"),
    ],
)
def test_refuses_quickly(expression: str, reason: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ToolError, match=reason):
        evaluate(expression)
    assert time.perf_counter() - started < 0.5


async def test_tool_invokes_with_expression_argument() -> None:
    tool = CalculatorTool()
    assert tool.spec.name == "calculator"
    assert tool.spec.parameters["required"] == ["expression"]
    assert await tool.invoke({"expression": "12*(3+4)"}) == "84"


@pytest.mark.parametrize("arguments", [{}, {"expression": 12}, {"expr": "1+1"}])
async def test_tool_refuses_missing_or_non_string_expression(arguments: dict[str, object]) -> None:
    with pytest.raises(ToolError, match="expression"):
        await CalculatorTool().invoke(arguments)
