"""The look shared by the plugin's HTML reports (site metrics, training): one stylesheet, one page shell."""
from __future__ import annotations

import html

BASE_CSS = """
body{font-family:"Segoe UI",Helvetica,Arial,sans-serif;color:#222;margin:0 auto;max-width:1150px;
padding:1.5em 2em;line-height:1.45;font-size:15px}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;border-bottom:2px solid #2b6c8f;
padding-bottom:.2em;color:#1d4e69}h3{font-size:1.05em;margin-top:1.4em}
.meta{color:#555;margin-top:0}.note{color:#555;font-size:.92em}
.defs{background:#f3f7fa;border-left:4px solid #2b6c8f;padding:.6em 1em;font-size:.93em}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.88em}
th,td{border:1px solid #cfd8de;padding:.25em .55em;text-align:right;white-space:nowrap}
th{background:#e8eff4;font-weight:600;text-align:center}td.txt,th.txt{text-align:left}
th small{display:block;font-weight:400;color:#666}
"""


def html_document(title: str, body_parts: list[str], extra_css: str = "") -> str:
    """A complete, self-contained HTML page (UTF-8, inline CSS)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{BASE_CSS}{extra_css}</style>\n</head>\n<body>\n"
            + "\n".join(body_parts) + "\n</body>\n</html>\n")
