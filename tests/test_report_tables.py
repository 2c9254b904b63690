"""Report tables: display formatting and escaping in Markdown and HTML."""

from __future__ import annotations

import pandas as pd

from emscope.report.tables import format_value, html_table, markdown_table, model_label


def test_values_are_formatted_for_reading() -> None:
    assert [format_value(v) for v in (None, float("nan"), 0.123456, True, 7, "x")] == [
        "–",
        "–",
        "0.1235",
        "yes",
        "7",
        "x",
    ]


def test_markdown_table_escapes_pipes_newlines_and_markup() -> None:
    table = markdown_table(pd.DataFrame({"a|b": ["x | y\nz"], "c": ["<i>"]}))
    assert table.splitlines() == [
        "| a\\|b | c |",
        "| --- | --- |",
        "| x \\| y z | &lt;i&gt; |",
    ]


def test_html_table_escapes_headers_and_cells() -> None:
    table = html_table(pd.DataFrame({"<h>": ['"q" & <b>']}))
    assert "<th>&lt;h&gt;</th>" in table
    assert "<td>&quot;q&quot; &amp; &lt;b&gt;</td>" in table


def test_base_model_label_is_marked_once() -> None:
    assert model_label("Qwen2.5-Coder-7B", True) == "Qwen2.5-Coder-7B (base model)"
    assert model_label("base", True) == "base"
    assert model_label("insecure_code", False) == "insecure_code"
