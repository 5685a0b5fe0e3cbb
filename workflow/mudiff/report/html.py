"""The report as one self-contained HTML page: Markdown rendered, figures inlined as data URIs."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; }
th { background: #f3f3f3; }
img { max-width: 100%; }
code { background: #f6f6f6; padding: 0 0.2rem; }
"""


def _inline_images(page: str, base: Path) -> str:
    """Replace each <img src="relative.png"> with the picture's bytes, so the page travels alone."""

    def embed(match: re.Match) -> str:
        path = base / html.unescape(match.group(2))
        if not path.is_file():
            raise FileNotFoundError(f"report figure {path} does not exist")
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'{match.group(1)}"data:image/png;base64,{data}"'

    return re.sub(r'(<img[^>]*?src=)"([^":]+\.png)"', embed, page)


def render_html(text: str, base: str | Path, title: str) -> str:
    """HTML of the report's Markdown `text`; image paths are relative to `base` (report.md's folder)."""
    import markdown

    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n{_inline_images(body, Path(base))}\n</body></html>\n"
    )
