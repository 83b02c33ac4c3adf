#!/usr/bin/env python3
# Regenerates codec_vectors.json: Q8_0 quantization and dequantization vectors of every type tally reads
# (F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, Q2_K..Q6_K) from gguf-py (`pip install gguf==0.19.0
# numpy`), an implementation independent of tally that states it is bit-exact with ggml's reference.
# Run from the repo root:
#     python3 Tests/GGUFTests/Fixtures/make_codec_vectors.py
# Floats are stored as uint32 bit patterns so nothing is lost in JSON.
import importlib.metadata
import json
import numpy as np
import gguf
from gguf.quants import quantize, dequantize
from gguf import GGMLQuantizationType as T

FORMAT_VERSION = 1
rng = np.random.default_rng(20261123)


def bits(a):
    return [int(v) for v in np.asarray(a, dtype=np.float32).view(np.uint32)]


def q8_case(name, x):
    x = np.asarray(x, dtype=np.float32)
    assert x.size % 32 == 0
    return {"name": name, "x": bits(x), "q8_0": quantize(x.reshape(1, -1), T.Q8_0).tobytes().hex()}


cases = []
cases.append(q8_case("normal", rng.standard_normal(32 * 8)))
# Exact ties: amax 127 gives d = 1 and id = 1, so x = k + 0.5 sits exactly between two integers.
cases.append(q8_case("ties", [127.0] + [k + 0.5 for k in range(-16, 15)] + [-127.0] + [-(k + 0.5) for k in range(31)]))
# Ties after scaling by a non-trivial id (amax 63.5 -> d = 0.5, id = 2).
cases.append(q8_case("scaled ties", [63.5] + [k * 0.25 for k in range(-15, 16)]))
cases.append(q8_case("zeros", np.zeros(64)))
cases.append(q8_case("one nonzero", [0.0] * 31 + [1e-3] + [-2.0] + [0.0] * 31))
cases.append(q8_case("tiny", rng.standard_normal(64) * 1e-30))
cases.append(q8_case("near f16 subnormal scale", rng.standard_normal(64) * 1e-5))
cases.append(q8_case("huge", rng.standard_normal(64) * 1e30))
cases.append(q8_case("beyond f16 range", rng.standard_normal(32) * 1e6))
cases.append(q8_case("mixed magnitudes", np.concatenate([rng.standard_normal(32) * 10.0 ** e for e in range(-6, 7, 3)])))
cases.append(q8_case("uniform", rng.uniform(-1, 1, 32 * 4)))

dequant = []
for qtype in (T.Q4_0, T.Q4_1, T.Q8_0, T.F16, T.BF16):
    x = rng.standard_normal(32 * 4).astype(np.float32)
    raw = quantize(x.reshape(1, -1), qtype)
    dequant.append({
        "type": qtype.name,
        "bytes": raw.tobytes().hex(),
        "f32": bits(dequantize(raw, qtype).reshape(-1)),
    })


def dequant_case(qtype, raw):
    raw = np.asarray(raw, dtype=np.uint8).reshape(1, -1)
    return {"type": qtype.name, "bytes": raw.tobytes().hex(), "f32": bits(dequantize(raw, qtype).reshape(-1))}


def finite_f16(count):
    """Random finite f16 bit patterns: every exponent but inf/NaN's, subnormals and zero included."""
    h = rng.integers(0, 1 << 16, size=count, dtype=np.uint16)
    return np.where((h & 0x7C00) == 0x7C00, h & 0x83FF, h).astype(np.uint16)


def realistic_f16(count):
    """Scales as a quantizer writes them: small positive magnitudes."""
    return (np.abs(rng.standard_normal(count)) * 0.02).astype(np.float16).view(np.uint16)


def random_blocks(qtype, count, f16_offsets, scales):
    """`count` blocks of random bytes whose f16 fields (at f16_offsets in each block) are `scales(n)`."""
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(count, type_size), dtype=np.uint8)
    for offset in f16_offsets:
        blocks[:, offset:offset + 2] = scales(count).view(np.uint8).reshape(count, 2)
    return blocks


# The f16 fields of each new type's block: d, and m or dmin where it has one.
F16_FIELDS = {T.Q5_0: [0], T.Q5_1: [0, 2], T.IQ4_NL: [0],
              T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}
# Q5_0 and Q5_1 gguf-py can quantize: data quantized from random normals, as a file holds it.
for qtype in (T.Q5_0, T.Q5_1):
    x = rng.standard_normal(32 * 4).astype(np.float32)
    dequant.append(dequant_case(qtype, quantize(x.reshape(1, -1), qtype)))
# Random payloads: 3 blocks with realistic scales, 3 with any finite f16 scales (for the 32-element types,
# 8 of each); negative d, dmin and m and subnormal scales included.
for qtype, fields in F16_FIELDS.items():
    count = 3 if gguf.GGML_QUANT_SIZES[qtype][0] == 256 else 8
    dequant.append(dequant_case(qtype, random_blocks(qtype, count, fields, realistic_f16)))
    dequant.append(dequant_case(qtype, random_blocks(qtype, count, fields, finite_f16)))

out = {"format_version": FORMAT_VERSION, "generator": "gguf-py " + importlib.metadata.version("gguf"),
       "q8_0_quantize": cases, "dequantize": dequant}
with open(__file__.replace("make_codec_vectors.py", "codec_vectors.json"), "w") as f:
    json.dump(out, f, indent=1)
print("wrote", len(cases), "quantize cases and", len(dequant), "dequantize cases")
