"""The HTML report builder, rendered in a real (headless) browser."""

import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from _browser import SKIP_WITHOUT_BROWSER, dump_dom

from mentor_impact.reporting.disclosure import suppress_counts
from mentor_impact.reporting.html import Report, figure_png


def _report():
    r = Report("Test <report>")
    s = r.section("Tables", "t")
    s.table(suppress_counts(pd.DataFrame({"group": ["a", "b"], "n": [120, 3]})), "counts")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    s.figure(figure_png(fig), "a line")
    s.text("x < y & z")
    return r


def test_html_is_self_contained_and_escaped():
    html = _report().to_html()
    assert "Test &lt;report&gt;" in html
    assert "x &lt; y &amp; z" in html
    assert "data:image/png;base64," in html
    assert "&lt;5" in html or "<5" in html  # suppressed count marked
    assert not re.search(r"(src|href)=['\"]https?://", html)


@pytest.mark.browser
@SKIP_WITHOUT_BROWSER
def test_report_renders_in_headless_chromium(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(_report().to_html(), encoding="utf-8")
    dom = dump_dom(page)
    assert 'data-images-loaded="1"' in dom
    assert 'data-tables="1"' in dom
