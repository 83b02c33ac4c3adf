#!/usr/bin/env python3
# Writes smollm2-vocab.gguf: every tokenizer.* key of a SmolLM2 GGUF, general.architecture, no tensors.
# Regenerate: python3 Tests/TokenizationTests/Fixtures/make_vocab_fixture.py [SOURCE.gguf]
#   SOURCE defaults to $TALLY_MODEL, else models/SmolLM2-135M-Instruct-Q8_0.gguf. Needs `pip install gguf`.
# Fixture format version 1 (bump FORMAT_VERSION when the set of keys written changes).
import os
import sys
from pathlib import Path

import gguf

FORMAT_VERSION = 1
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
OUT = HERE / "smollm2-vocab.gguf"


def field_value(field):
    """Decodes a gguf-py ReaderField into (python value, GGUFValueType, element type or None)."""
    vtype = field.types[0]
    if vtype == gguf.GGUFValueType.ARRAY:
        etype = field.types[1]
        if etype == gguf.GGUFValueType.STRING:
            vals = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        else:
            vals = [field.parts[i][0].item() for i in field.data]
        return vals, vtype, etype
    if vtype == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8"), vtype, None
    return field.parts[field.data[0]][0].item(), vtype, None


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "TALLY_MODEL", str(REPO / "models" / "SmolLM2-135M-Instruct-Q8_0.gguf"))
    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(str(OUT), arch="llama")
    writer.add_string("tally.fixture_format_version", str(FORMAT_VERSION))
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        value, vtype, etype = field_value(field)
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, value, vtype, sub_type=etype)
        else:
            writer.add_key_value(name, value, vtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes) from {src}")


if __name__ == "__main__":
    main()
