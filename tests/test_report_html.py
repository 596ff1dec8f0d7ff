"""The report's tables: escaped cells, numbers right-aligned, headers that wrap only at underscores."""
from orchestrator.report.html import CSS, Raw, table


def test_a_table_escapes_its_text_and_wraps_headers_only_after_underscores():
    html = table(["n_compare_dims", "<b>"], [[3, "a<b"], [Raw("<i>x</i>"), 0.5]])
    assert "<th>n_<wbr>compare_<wbr>dims</th><th>&lt;b&gt;</th>" in html
    assert '<td class="num">3</td><td>a&lt;b</td>' in html and "<td><i>x</i></td>" in html
    # break-word, not anywhere: a header's narrowest width is its longest piece between underscores,
    # so a column of one-digit values no longer squeezes its name to one letter a line
    assert "th{overflow-wrap:break-word}" in CSS and "anywhere" not in CSS
