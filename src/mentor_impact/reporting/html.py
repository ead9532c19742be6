"""A self-contained HTML report: tables and PNG figures embedded, no external resources."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["Report", "Section", "figure_png"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;
color:#1b1b1b;line-height:1.45;padding:0 1em}
h1{border-bottom:2px solid #335;padding-bottom:.3em}h2{margin-top:2em;color:#223}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}
th,td{border:1px solid #ccd;padding:.25em .6em;text-align:right}th{background:#eef}
td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}
.note{font-size:.85em;color:#555}.toc a{margin-right:1em}
"""


def figure_png(fig: Figure, *, dpi: int = 110) -> bytes:
    """Render a matplotlib figure to PNG bytes (and close it).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    dpi : int, default=110
        Resolution.

    Returns
    -------
    bytes
        The PNG file content.
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _mark_suppressed(df: pd.DataFrame) -> pd.DataFrame:
    """Show suppressed counts as ``<min_cell`` (see :mod:`mentor_impact.reporting.disclosure`)."""
    from mentor_impact.reporting.disclosure import SUPPRESSED, is_count_column

    if SUPPRESSED not in df.columns:
        return df
    min_cell = df.attrs.get("min_cell", 5)
    out = df.copy()
    flag = out[SUPPRESSED].to_numpy(dtype=bool)
    if not flag.any():  # nothing suppressed: the flag column adds nothing to the page
        return out.drop(columns=[SUPPRESSED])
    for c in out.columns:
        if is_count_column(str(c)) and pd.api.types.is_numeric_dtype(out[c].dtype):
            col = out[c].astype(object)
            col[flag & out[c].isna().to_numpy()] = f"<{min_cell}"
            out[c] = col
    return out


@dataclass
class Section:
    """One section of the report: a title and an ordered list of blocks.

    Parameters
    ----------
    title : str
        Section heading.
    anchor : str
        HTML id of the section.
    blocks : list
        ``("text", str)``, ``("table", DataFrame, caption)`` or ``("figure", png_bytes,
        caption)`` entries, rendered in order.
    """

    title: str
    anchor: str
    blocks: list[tuple[Any, ...]] = field(default_factory=list)

    def text(self, content: str) -> Section:
        """Append a paragraph (escaped)."""
        self.blocks.append(("text", content))
        return self

    def table(self, df: pd.DataFrame, caption: str = "", *, index: bool = False) -> Section:
        """Append a table."""
        self.blocks.append(("table", df, caption, index))
        return self

    def figure(self, png: bytes, caption: str = "") -> Section:
        """Append a PNG figure (embedded as base64)."""
        self.blocks.append(("figure", png, caption))
        return self


@dataclass
class Report:
    """A report made of sections, rendered to one self-contained HTML file.

    Parameters
    ----------
    title : str
        Report title.
    sections : list of Section
        The sections in order.
    footer : str
        Provenance line (versions, config hash, data fingerprint).
    """

    title: str
    sections: list[Section] = field(default_factory=list)
    footer: str = ""

    def section(self, title: str, anchor: str) -> Section:
        """Add and return a new section."""
        s = Section(title, anchor)
        self.sections.append(s)
        return s

    def to_html(self) -> str:
        """Render the report.

        Returns
        -------
        str
            A complete HTML document with inline CSS and base64 images.
        """
        parts = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
            "<p class='toc'>"
            + "".join(f"<a href='#{s.anchor}'>{html.escape(s.title)}</a>" for s in self.sections)
            + "</p>",
        ]
        for s in self.sections:
            parts.append(f"<section id='{s.anchor}'><h2>{html.escape(s.title)}</h2>")
            for block in s.blocks:
                kind = block[0]
                if kind == "text":
                    parts.append(f"<p>{html.escape(block[1])}</p>")
                elif kind == "table":
                    df, caption, index = _mark_suppressed(block[1]), block[2], block[3]
                    tab = df.to_html(
                        index=index, float_format=lambda x: f"{x:.4g}", na_rep="–",
                        classes="mi-table", border=0,
                    )
                    cap = f"<p class='note'>{html.escape(caption)}</p>" if caption else ""
                    parts.append(f"<div class='table-block'>{tab}{cap}</div>")
                elif kind == "figure":
                    data = base64.b64encode(block[1]).decode("ascii")
                    cap = html.escape(block[2])
                    parts.append(
                        f"<figure><img alt='{cap}' src='data:image/png;base64,{data}'/>"
                        f"<figcaption>{cap}</figcaption></figure>"
                    )
            parts.append("</section>")
        parts.append(f"<hr/><p class='note'>{html.escape(self.footer)}</p>")
        # a browser records how many figures decoded and tables rendered (used by the
        # headless-browser test; harmless elsewhere)
        parts.append(
            "<script>window.addEventListener('load',function(){var im=[].slice.call("
            "document.images);document.body.setAttribute('data-images-loaded',im.filter("
            "function(i){return i.complete&&i.naturalWidth>0;}).length);document.body."
            "setAttribute('data-tables',document.querySelectorAll('table').length);});</script>"
        )
        parts.append("</body></html>")
        return "\n".join(parts)
