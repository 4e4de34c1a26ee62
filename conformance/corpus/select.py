"""Selecting cases: by id, function, dtype and opt-in tag, and with a keyword expression in the manner of
pytest's ``-k``.

An expression combines names with ``and``, ``or``, ``not`` and parentheses; ``not`` binds tighter than ``and``,
which binds tighter than ``or``. A name is any run of characters other than whitespace and parentheses, so
``cross_entropy/NC-mean``, ``ls=0.1`` and ``float16`` are single names. The keywords are lowercase only.

An item is described by its "haystack" strings (its full id, tags, dtype, function, ...); a name matches an item
when it is a case-insensitive substring of any of them. An empty expression matches every item.

    >>> select = compile_expression("cross_entropy and not (float16 or bfloat16)")
    >>> select(["cross_entropy/NCd1-mean", "float32"])
    True
"""
import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

__all__ = ["OPT_IN_TAGS", "SelectionError", "compile_expression", "select_cases"]

_TOKEN = re.compile(r"[()]|[^\s()]+")
MAX_NESTING = 50


class SelectionError(ValueError):
    """A -k expression that cannot be parsed; the message names the column and what would be accepted."""


class _Token(NamedTuple):
    text: str
    column: int  # 1-based


class _Parser:
    """Recursive descent over the tokens of one expression; each ``_parse_*`` method returns a predicate."""

    def __init__(self, expression):
        self.expression = expression
        self.tokens = [_Token(m.group(), m.start() + 1) for m in _TOKEN.finditer(expression)]
        self.position = 0
        self.depth = 0  # parentheses and 'not's open: bounded, so that no expression exhausts the stack

    def _peek(self):
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _error(self, problem, column, detail):
        shown = self.expression if len(self.expression) <= 120 else f"{self.expression[:120]}..."
        return SelectionError(f"{problem} at column {column} in -k expression {shown!r}: {detail}")

    def _unexpected(self, token, expected):
        if token is None:
            return self._error("unexpected end of the expression", len(self.expression) + 1, f"expected {expected}")
        return self._error(f"unexpected {token.text!r}", token.column, f"expected {expected}")

    def parse(self):
        node = self._parse_or()
        token = self._peek()
        if token is not None and token.text == ")":
            raise self._error("unbalanced parenthesis", token.column, "')' has no matching '('")
        if token is not None:
            raise self._unexpected(token, "'and', 'or' or the end of the expression")
        return node

    def _parse_or(self):
        operands = [self._parse_and()]
        while (token := self._peek()) is not None and token.text == "or":
            self.position += 1
            operands.append(self._parse_and())
        return operands[0] if len(operands) == 1 else (lambda haystack: any(op(haystack) for op in operands))

    def _parse_and(self):
        operands = [self._parse_not()]
        while (token := self._peek()) is not None and token.text == "and":
            self.position += 1
            operands.append(self._parse_not())
        return operands[0] if len(operands) == 1 else (lambda haystack: all(op(haystack) for op in operands))

    def _parse_not(self):
        token = self._peek()
        if token is None or token.text in (")", "and", "or"):
            raise self._unexpected(token, "a name, 'not' or '('")
        self.position += 1
        if token.text in ("not", "("):
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self._error("nested too deeply", token.column,
                                  f"at most {MAX_NESTING} parentheses and 'not's may be open at once")
            try:
                return self._parse_nested(token)
            finally:
                self.depth -= 1
        needle = token.text.lower()
        return lambda haystack: any(needle in text for text in haystack)

    def _parse_nested(self, token):
        if token.text == "not":
            operand = self._parse_not()
            return lambda haystack: not operand(haystack)
        if token.text == "(":
            inner = self._parse_or()
            closing = self._peek()
            if closing is None:
                raise self._error("unbalanced parenthesis", token.column,
                                  "'(' is never closed; expected a ')' before the end")
            if closing.text != ")":
                raise self._unexpected(closing, "'and', 'or' or ')'")
            self.position += 1
            return inner


def compile_expression(expression: str) -> Callable[[Iterable[str]], bool]:
    """A predicate over an item's haystack strings that is true when the item satisfies ``expression``.

    Raises SelectionError, naming the column, when the expression does not parse.
    """
    if not isinstance(expression, str):
        raise SelectionError(f"a -k expression must be a string, got {type(expression).__name__}")
    if not expression.strip():
        return lambda haystack: True
    node = _Parser(expression).parse()

    def predicate(haystack: Iterable[str]) -> bool:
        return node([str(text).lower() for text in haystack])

    return predicate


OPT_IN_TAGS = ("large", "slow")  # cases with these tags run only when asked for (--include-tag)


def select_cases(cases, options):
    """(case, dtypes) pairs chosen by the options (ids, functions, dtypes, -k, tags); cases with an opt-in tag
    need --include-tag, or their id given with --id."""
    matches = compile_expression(options.keyword or "")
    chosen = []
    for case in cases:
        if options.ids and case.full_id not in options.ids:
            continue
        if options.functions and case.function not in options.functions:
            continue
        if not options.ids and set(case.tags) & (set(OPT_IN_TAGS) - set(options.include_tags)):
            continue
        dtypes = [d for d in case.dtypes if d in options.dtypes and matches([case.full_id, d, *case.tags])]
        if dtypes:
            chosen.append((case, dtypes))
    return chosen
