"""CloudWatch metric math, as far as scaling alarms use it, one datapoint
at a time: numbers, metric ids, + - * /, comparisons, AND, OR, NOT, and the
functions IF, FILL, MAX, MIN and ABS.

Missing values follow FIELD-NOTES: in arithmetic, comparisons and logic
between two series a missing operand counts as 0 when the other one has a
value, and as missing when neither does; an operation between a series and
a constant applies to the series' values, so a missing value stays missing
(`m > 0` has no datapoint where `m` has none); FILL(m, v) turns a missing
value into v; IF with a missing condition is missing; x / 0 is missing. Whether a datapoint exists
at all (it does only where some metric it reads has one) is the caller's
rule: the same as CloudWatch's, where no input at all gives no datapoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Value = float | None

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?|\.\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>>=|<=|==|!=|>|<|\+|-|\*|/|\(|\)|,))"
)
_KEYWORDS = {"AND", "OR", "NOT"}


class ExpressionError(ValueError):
    pass


@dataclass(frozen=True)
class Node:
    kind: str  # num, id, call, bin, not, neg
    value: object = None
    args: tuple[Node, ...] = ()


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExpressionError(f"cannot read {text[pos:]!r} in {text!r}")
        out.append(m.group(m.lastgroup or ""))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok.upper() != expected):
            raise ExpressionError(f"expected {expected or 'more'} in {self.text!r}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.or_()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()!r} in {self.text!r}")
        return node

    def or_(self) -> Node:
        node = self.and_()
        while (self.peek() or "").upper() == "OR":
            self.take()
            node = Node("bin", "OR", (node, self.and_()))
        return node

    def and_(self) -> Node:
        node = self.not_()
        while (self.peek() or "").upper() == "AND":
            self.take()
            node = Node("bin", "AND", (node, self.not_()))
        return node

    def not_(self) -> Node:
        if (self.peek() or "").upper() == "NOT":
            self.take()
            return Node("not", None, (self.not_(),))
        return self.compare()

    def compare(self) -> Node:
        node = self.sum_()
        while self.peek() in (">", "<", ">=", "<=", "==", "!="):
            op = self.take()
            node = Node("bin", op, (node, self.sum_()))
        return node

    def sum_(self) -> Node:
        node = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = Node("bin", op, (node, self.product()))
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            node = Node("bin", op, (node, self.unary()))
        return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return Node("neg", None, (self.unary(),))
        return self.atom()

    def atom(self) -> Node:
        tok = self.take()
        if tok == "(":
            node = self.or_()
            self.take(")")
            return node
        if re.fullmatch(r"\d+(?:\.\d*)?|\.\d+", tok):
            return Node("num", float(tok))
        if tok.upper() in _KEYWORDS or not re.fullmatch(r"[A-Za-z_]\w*", tok):
            raise ExpressionError(f"unexpected {tok!r} in {self.text!r}")
        if self.peek() == "(":
            self.take("(")
            args = [self.or_()]
            while self.peek() == ",":
                self.take(",")
                args.append(self.or_())
            self.take(")")
            return Node("call", tok.upper(), tuple(args))
        return Node("id", tok)


def parse(text: str) -> Node:
    return _Parser(text).parse()


def names(node: Node) -> set[str]:
    """The ids an expression reads."""
    found = {str(node.value)} if node.kind == "id" else set()
    for arg in node.args:
        found |= names(arg)
    return found


def _both(
    a: Value, b: Value, op: Callable[[float, float], Value], *, constant: bool = False
) -> Value:
    if (a is None and b is None) or (constant and (a is None or b is None)):
        return None
    return op(0.0 if a is None else a, 0.0 if b is None else b)


def constant(node: Node) -> bool:
    """True for an expression that reads no metric."""
    return node.kind == "num" or (node.kind != "id" and all(constant(a) for a in node.args))


def _divide(a: float, b: float) -> Value:
    return None if b == 0 else a / b


_BINARY: dict[str, Callable[[float, float], Value]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
    ">": lambda a, b: float(a > b),
    "<": lambda a, b: float(a < b),
    ">=": lambda a, b: float(a >= b),
    "<=": lambda a, b: float(a <= b),
    "==": lambda a, b: float(a == b),
    "!=": lambda a, b: float(a != b),
    "AND": lambda a, b: float(bool(a) and bool(b)),
    "OR": lambda a, b: float(bool(a) or bool(b)),
}


def evaluate(node: Node, env: Mapping[str, Value]) -> Value:
    if node.kind == "num":
        return float(node.value)  # type: ignore[arg-type]
    if node.kind == "id":
        if node.value not in env:
            raise ExpressionError(f"unknown id {node.value!r}")
        return env[str(node.value)]
    if node.kind == "neg":
        v = evaluate(node.args[0], env)
        return None if v is None else -v
    if node.kind == "not":
        v = evaluate(node.args[0], env)
        return None if v is None else float(not v)
    if node.kind == "bin":
        a, b = (evaluate(arg, env) for arg in node.args)
        return _both(a, b, _BINARY[str(node.value)], constant=any(map(constant, node.args)))
    name, args = str(node.value), node.args
    if name == "FILL":
        v = evaluate(args[0], env)
        return evaluate(args[1], env) if v is None else v
    if name == "IF":
        cond = evaluate(args[0], env)
        if cond is None:
            return None
        return (
            evaluate(args[1] if cond else args[2], env)
            if len(args) == 3
            else (evaluate(args[1], env) if cond else None)
        )
    values = [v for v in (evaluate(arg, env) for arg in args) if v is not None]
    if name == "MAX":
        return max(values) if values else None
    if name == "MIN":
        return min(values) if values else None
    if name == "ABS":
        return abs(values[0]) if values else None
    raise ExpressionError(f"function {name} is not modelled")
