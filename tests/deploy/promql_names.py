"""The metric names a PromQL expression reads, for the check that /metrics exposes every series the rules use.

A scanner rather than a parser: the expressions it reads have passed `promtool check rules`, so it only has
to tell metric names from what else is spelled like one: function and aggregation names (followed by `(`),
keywords, label names (inside `{...}` and the lists of `by`, `without`, `on`, `ignoring`, `group_left`,
`group_right`), strings, numbers and durations (inside `[...]` and after `offset`). A selector of the form
`{__name__="x"}` names `x`. Its own tests are in test_promql_names.py.
"""

from __future__ import annotations

import re

#: Words of PromQL that are not metric names when they stand alone (the set operators, modifiers, literals).
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                      "group_right", "inf", "nan", "start", "end"})
#: Aggregation operators: `sum by (x) (...)` puts the grouping between the name and its `(`.
AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                          "bottomk", "topk", "quantile", "limitk", "limit_ratio"})
#: Keywords followed by a parenthesised list of label names.
LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})

_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9][0-9A-Za-z_.]*(?:[eE][+-]?[0-9]+)?)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*=\s*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)')


def _closing(text: str, start: int, opening: str, closing: str) -> int:
    """The index just past the bracket closing the one at `start` (strings inside are skipped)."""
    depth, i = 0, start
    while i < len(text):
        char = text[i]
        if char in "\"'`":
            string = _STRING.match(text, i)
            if string is None:
                raise ValueError(f"unterminated string at {i} in {text!r}")
            i = string.end()
            continue
        if char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {opening!r} at {start} in {text!r}")


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _grouping_follows(text: str, i: int) -> bool:
    word = _IDENTIFIER.match(text, _skip_space(text, i))
    return word is not None and word.group().lower() in ("by", "without")


def _next_char(text: str, i: int) -> str:
    i = _skip_space(text, i)
    return text[i] if i < len(text) else ""


def metric_names(expr: str) -> set[str]:
    """Every metric name `expr` reads."""
    names: set[str] = set()
    i, depth = 0, 0
    while i < len(expr):
        char = expr[i]
        if char.isspace():
            i += 1
        elif char in "()":
            depth += 1 if char == "(" else -1
            if depth < 0:
                raise ValueError(f"unbalanced ')' at {i} in {expr!r}")
            i += 1
        elif char == "#":
            end = expr.find("\n", i)
            i = len(expr) if end < 0 else end
        elif char in "\"'`":
            string = _STRING.match(expr, i)
            if string is None:
                raise ValueError(f"unterminated string at {i} in {expr!r}")
            i = string.end()
        elif char == "{":
            end = _closing(expr, i, "{", "}")
            for matcher in _NAME_MATCHER.finditer(expr, i, end):
                names.add(matcher.group(1)[1:-1])
            i = end
        elif char == "[":
            i = _closing(expr, i, "[", "]")
        elif char.isdigit() or (char == "." and i + 1 < len(expr) and expr[i + 1].isdigit()):
            number = _NUMBER.match(expr, i)
            i = number.end() if number else i + 1
        elif (word := _IDENTIFIER.match(expr, i)) is not None:
            i = word.end()
            name, following = word.group(), _next_char(expr, word.end())
            if name.lower() in LABEL_LISTS and following == "(":
                i = _closing(expr, expr.index("(", i), "(", ")")
            elif name.lower() in KEYWORDS or following == "(":
                continue  # a keyword, or a function or aggregation called
            elif name.lower() in AGGREGATIONS and _grouping_follows(expr, i):
                continue  # `sum by (...) (...)`: the grouping comes first
            else:
                names.add(name)
        else:
            i += 1
    if depth:
        raise ValueError(f"unbalanced '(' in {expr!r}")
    return names
