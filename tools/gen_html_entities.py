#!/usr/bin/env python3
"""Write src/encoders/assets/html5_entities.tsv: the HTML5 named character references
(the WHATWG table, as shipped in Python's html.entities.html5), one per line:
`name<TAB>code points in hex, space-separated`. Names include the legacy forms without a
trailing semicolon (e.g. `amp` and `amp;`), exactly as html.unescape knows them.

Usage: python tools/gen_html_entities.py   (from the repository root; deterministic)
"""
import html.entities
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "encoders" / "assets" / "html5_entities.tsv"
lines = [
    f"{name}\t{' '.join(f'{ord(c):X}' for c in value)}"
    for name, value in sorted(html.entities.html5.items())
]
OUT.write_text("\n".join(lines) + "\n")
print(f"wrote {len(lines)} entities to {OUT} (Python {sys.version.split()[0]})")
