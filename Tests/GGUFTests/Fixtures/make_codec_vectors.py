#!/usr/bin/env python3
# Regenerates codec_vectors.json: Q8_0 quantization and Q4_0/Q4_1/Q8_0/F16/BF16 dequantization vectors
# from gguf-py (`pip install gguf numpy`), an implementation independent of tally that states it is
# bit-exact with ggml's reference. Run from the repo root:
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

out = {"format_version": FORMAT_VERSION, "generator": "gguf-py " + importlib.metadata.version("gguf"),
       "q8_0_quantize": cases, "dequantize": dequant}
with open(__file__.replace("make_codec_vectors.py", "codec_vectors.json"), "w") as f:
    json.dump(out, f, indent=1)
print("wrote", len(cases), "quantize cases and", len(dequant), "dequantize cases")
