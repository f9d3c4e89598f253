"""`lcm_cli.render`, the pure part of what the CLI prints: cells escaped for a terminal, columns measured in the
columns a terminal gives (wide characters two, combining marks none), long cells cut to that width."""

from __future__ import annotations

from lcm_cli import render


def test_control_characters_are_escaped_and_the_rest_kept() -> None:
    assert render.printable("ok é 東京 ☃") == "ok é 東京 ☃"
    assert render.printable("a\x1b[2Jb\x07c\x9bd\x7fe\tf\ng\u2028h") == \
        "a\\x1b[2Jb\\x07c\\x9bd\\x7fe\\x09f\\x0ag\\u2028h"
    assert render.cell("x\x1b]0;t\x07") == "x\\x1b]0;t\\x07"


def test_widths_count_wide_characters_twice_and_combining_marks_not_at_all() -> None:
    decomposed = "e\u0301te\u0301"  # été with combining acute accents
    assert (render.width("東京"), render.width(decomposed), render.width("ab")) == (4, 3, 2)
    table = render.table(["NAME", "N"], [["東京", 1], [decomposed, 22], ["ab", 3]]).splitlines()
    assert table == ["NAME   N", "東京   1", f"{decomposed}   22", "ab     3"]


def test_a_long_wide_cell_is_cut_to_the_columns_it_may_take() -> None:
    cut = render.table(["A", "B"], [["東" * 40, "x"]]).splitlines()[1]
    # 23 wide characters (46 columns) and the ellipsis: a 24th would pass MAX_CELL (48) with the ellipsis.
    assert cut == "東" * 23 + render.ELLIPSIS + "  x"
    assert render.width(cut[: cut.index("x")]) <= render.MAX_CELL + 2
