#!/usr/bin/env python3
# Builds the benchmark corpus (~4 MB): Python standard-library source and its LICENSE (English prose and
# code, present wherever Python is) plus the multilingual golden strings, repeated to size.
# Usage: python3 bench/tokenizer/make_corpus.py [OUT]   (default: tally-tokenizer-corpus.txt in the system temp dir)
import json
import os
import sys
import tempfile
import sysconfig
from pathlib import Path

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.gettempdir(), "tally-tokenizer-corpus.txt"))
HERE = Path(__file__).resolve().parent
stdlib = Path(sysconfig.get_paths()["stdlib"])
parts = []
for name in ["LICENSE.txt", "argparse.py", "json/encoder.py", "textwrap.py", "difflib.py", "typing.py"]:
    path = stdlib / name
    if path.exists():
        parts.append(path.read_text(encoding="utf-8"))
goldens = json.loads((HERE.parents[1] / "Tests/TokenizationTests/Fixtures/goldens.json").read_text(encoding="utf-8"))
parts.append("\n".join(c["text"] for c in goldens["cases"]))
base = "\n".join(parts)
text = base
while len(text.encode("utf-8")) < 4_000_000:
    text += "\n" + base
OUT.write_text(text, encoding="utf-8")
print(f"wrote {OUT}: {len(text.encode('utf-8'))} bytes")
