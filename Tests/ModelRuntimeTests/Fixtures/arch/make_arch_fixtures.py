#!/usr/bin/env python3
# Float32 references for tally's forward pass, one per architecture: tiny random-weight models built and run by
# Hugging Face transformers on CPU torch, written as F32 GGUF files the way llama.cpp's convert_hf_to_gguf.py
# would write them. ModelRuntimeTests load each .gguf, feed the token ids in its .json, and compare logits.
# Regenerate from the repo root with the pinned versions the committed files came from (README.md has the steps):
#   pip install torch==2.13.0+cpu transformers==5.25.0 gguf==0.19.0 numpy==2.4.6
#   nice -n 19 python3 Tests/ModelRuntimeTests/Fixtures/arch/make_arch_fixtures.py [--convert-check LLAMA_CPP_DIR]
# Bump FORMAT_VERSION when the files' layout or meaning changes; commit the .gguf, .logits.f32 and .json of a
# fixture together (the .json holds the sha256 of the other two).
#
# Per fixture NAME, written beside this script:
#   NAME.gguf        the model, every tensor F32, tensor names / metadata keys / Q-K row order as convert emits
#   NAME.logits.f32  transformers' float32 logits for NAME.json's token_ids, little-endian float32 [positions, vocab]
#   NAME.json        token ids, shapes, GGUF keys and tensor shapes, transformers config, seeds, versions,
#                    sha256s, "stats" (how far the reference itself is from float64) and "sensitivity" (how far
#                    plausible implementation mistakes move the logits)
#
# Weights: torch.manual_seed(seed), then transformers' own _init_weights from the config: every Linear and
# Embedding ~ N(0, initializer_range), RMSNorm weights = 1, biases = 0. Left like that the model is degenerate
# for testing: with the library default initializer_range 0.02 every activation is tiny, attention is nearly
# uniform and logits are nearly flat, and norm weights of 1 and biases of 0 make a runtime that skips them look
# correct. So (numbers in INIT below):
#   - initializer_range = 1/sqrt(hidden_size), so a projection of a unit-RMS vector has unit-RMS outputs;
#   - q_proj and k_proj weights are then multiplied by QK_GAIN, so attention is far from uniform and its pattern
#     (hence RoPE, the causal mask and GQA) visibly shapes the output;
#   - every RMSNorm weight (attn/ffn/final norms, Qwen3's q_norm/k_norm) is redrawn ~ U(0.5, 1.5) and every
#     bias (Qwen2's q/k/v) ~ N(0, BIAS_STD), from a second seeded generator (seed + 1); Qwen3's q_norm/k_norm
#     weights are then also multiplied by QK_GAIN, since its per-head RMSNorm undoes the projections' gain.
# The .json "stats" record what came out (logit spread, attention entropy, top-2 margins).
#
# GGUF writing mirrors the vendored llama.cpp converter (llama-cpp-python 0.3.36 sdist, vendor/llama.cpp/:
# conversion/base.py TextModel.set_gguf_parameters, conversion/llama.py LlamaModel, conversion/qwen.py):
#   names    gguf.get_tensor_name_map(arch, n_layers).get_name(hf_name), the table convert uses
#   Q/K      LlamaModel.permute for llama and smollm3 (undo_permute = True there): within each head, rows are
#            reordered from HF's half-split order [x0..x(d/2-1), y0..y(d/2-1)] to interleaved [x0,y0,x1,y1,...], so
#            llama.cpp's NORMAL RoPE (adjacent pairs) equals HF's rotate_half; qwen2/qwen3 are not permuted and
#            llama.cpp uses NEOX RoPE (pairs (j, j + d/2)) there
#   rope_freqs  LlamaModel.generate_extra_tensors for rope_type llama3, computed with the same float32 steps
#   keys     only those convert writes for that architecture (qwen2/qwen3 get no vocab_size or
#            rope.dimension_count; key_length/value_length only when the HF config has head_dim)
#   tied     a tied model has no output.weight (HF's checkpoint has no lm_head.weight to convert)
# Tokenizer section (convert would copy the real one; these fixtures need none): tokenizer.ggml.model "gpt2"
# with the real pre-tokenizer name of the family, 256 tokens = GPT-2's byte-to-unicode character of byte b at id
# b, all NORMAL, bos = eos = 0, add_bos_token false, and one merge that can never fire (llama.cpp's and tally's
# gpt2 loaders require the merges key; gguf-py refuses an empty array): "ĠĠ ĠĠ" needs the symbol "ĠĠ", which no
# merge builds. So any text encodes to one token per UTF-8 byte under every pre-tokenizer.
#
# Checks after the GGUF is written and before the logits and .json are (main() fails otherwise):
#   - the GGUF reads back with gguf.GGUFReader; every key and value, every tensor's name, ne-shape (checked
#     against the shapes llama.cpp's load_arch_tensors asks for, written out independently in expected_tensors),
#     type F32, and bytes are as intended;
#   - round trip: the GGUF's tensors, un-permuted, loaded into a fresh transformers model give bit-identical logits;
#   - RoPE: llama.cpp's rotation (NORMAL on permuted rows, or NEOX), with theta_j = pos * base^(-2j/d) /
#     rope_freqs[j], applied to random q equals transformers' apply_rotary_pos_emb (to 1e-4), for every fixture;
#   - with --convert-check LLAMA_CPP_DIR: that tree's converter, run on the saved HF checkpoint with only its
#     set_vocab replaced, writes a byte-identical file (recorded as checks.byte_identical_to_convert_hf_to_gguf).
# Nothing here re-implements the forward pass: the reference is transformers' own.
import copy
import hashlib
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers
import gguf

FORMAT_VERSION = 1
HERE = Path(__file__).resolve().parent
POSITIONS = 128
VOCAB = 256
CONTEXT = 512
TOKEN_SEED = 0x7A11

INIT = {
    "initializer_range": "1/sqrt(hidden_size)",
    "qk_gain": 2.0,
    "norm_weight_uniform": [0.5, 1.5],
    "bias_std": 0.5,
}
QK_GAIN = INIT["qk_gain"]
BIAS_STD = INIT["bias_std"]

LLAMA3_ROPE = {
    # Llama 3.2's rope_theta / factor / low / high; original_max_position_embeddings shrunk from 8192 to 256 so that,
    # with head_dim 16, the 8 frequencies fall in all three llama3 bands within 128 positions: j = 0, 1 unscaled
    # (wavelength < 256/4), j = 2 smoothed, j = 3..7 divided by factor (wavelength > 256).
    "rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0, "original_max_position_embeddings": 256,
}

# One entry per fixture. `permute_qk` and `rope` are what llama.cpp does for that architecture (llama-model.cpp
# llama_model_rope_type: LLAMA and SMOLLM3 -> NORM, QWEN2 and QWEN3 -> NEOX); `pre` is the tokenizer.ggml.pre
# convert_hf_to_gguf.py gives the family's real tokenizer.
FIXTURES = [
    {
        # Llama 3.x: GQA, llama3 RoPE scaling exported as rope_freqs, separate output.weight.
        "name": "llama3", "arch": gguf.MODEL_ARCH.LLAMA, "config_class": "LlamaConfig", "seed": 0x5101,
        "permute_qk": True, "rope": "normal", "pre": "llama-bpe",
        "config": dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                       intermediate_size=96, rms_norm_eps=1e-5, tie_word_embeddings=False,
                       rope_parameters=LLAMA3_ROPE),
    },
    {
        # Llama 3.2 1B style: as llama3 but tie_word_embeddings, so no output.weight: logits = token_embd . x.
        # Narrower residual (32) than heads * head_dim (64) to keep the file small; llama.cpp reads head_dim from
        # llama.attention.key_length, which convert writes because LlamaConfig always carries head_dim.
        "name": "llama3-tied", "arch": gguf.MODEL_ARCH.LLAMA, "config_class": "LlamaConfig", "seed": 0x5102,
        "permute_qk": True, "rope": "normal", "pre": "llama-bpe",
        "config": dict(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                       num_hidden_layers=2, intermediate_size=64, rms_norm_eps=1e-5, tie_word_embeddings=True,
                       rope_parameters=LLAMA3_ROPE),
    },
    {
        # Qwen2.5: bias on q, k and v (not on o), NEOX RoPE without Q/K permutation, theta 1e6, eps 1e-6, tied.
        # intermediate 96 is not a power of two (Qwen2.5-0.5B: 4864).
        "name": "qwen2", "arch": gguf.MODEL_ARCH.QWEN2, "config_class": "Qwen2Config", "seed": 0x5103,
        "permute_qk": False, "rope": "neox", "pre": "qwen2",
        "config": dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                       intermediate_size=96, rms_norm_eps=1e-6, tie_word_embeddings=True,
                       rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
    },
    {
        # Qwen3: RMSNorm over head_dim on every q head and k head (own weights, shared by all heads of a layer)
        # after the projection and before RoPE; no biases; head_dim explicit and heads * head_dim (64) != hidden
        # (32), as in Qwen3-0.6B (1024 vs 16 * 128); NEOX RoPE, theta 1e6, eps 1e-6. Untied, as Qwen3-8B.
        "name": "qwen3", "arch": gguf.MODEL_ARCH.QWEN3, "config_class": "Qwen3Config", "seed": 0x5104,
        "permute_qk": False, "rope": "neox", "pre": "qwen2",
        "config": dict(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                       num_hidden_layers=2, intermediate_size=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
                       attention_bias=False, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
    },
    {
        # SmolLM3: the llama graph except that every 4th layer (il % 4 == 3) applies no RoPE at all (NoPE).
        # llama.cpp hard-codes that step (smollm3.cpp: n_no_rope_layer_step = 4; no GGUF key), so the HF config
        # must use the default no_rope_layer_interval 4 and no explicit no_rope_layers; 4 layers reach one NoPE
        # layer. Q/K permuted and NORMAL RoPE as llama; no rope_freqs (SmolLM3 has no llama3 scaling and
        # llama.cpp's smollm3 graph passes none); tied; theta 2e6 (transformers' SmolLM3Config default); eps 1e-6.
        # head_dim is passed explicitly here to keep heads * head_dim (64) != hidden (32) small, so convert
        # writes key_length/value_length (SmolLM3-3B's own config has no head_dim and its GGUF no key_length).
        "name": "smollm3", "arch": gguf.MODEL_ARCH.SMOLLM3, "config_class": "SmolLM3Config", "seed": 0x5105,
        "permute_qk": True, "rope": "normal", "pre": "llama-bpe",
        "config": dict(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                       num_hidden_layers=4, intermediate_size=64, rms_norm_eps=1e-6, tie_word_embeddings=True,
                       rope_parameters={"rope_type": "default", "rope_theta": 2000000.0}),
    },
]


def bytes_to_unicode():
    """GPT-2's byte -> printable character table (byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHARS = bytes_to_unicode()
TOKENS = [BYTE_CHARS[b] for b in range(VOCAB)]          # token id b is byte b
TOKEN_TYPES = [int(gguf.TokenType.NORMAL)] * VOCAB
INERT_MERGES = ["ĠĠ ĠĠ"]
BOS = EOS = 0


# ---------------------------------------------------------------------------------------------- model and weights

def head_dim_of(config):
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def build_model(spec):
    cls = getattr(transformers, spec["config_class"])
    kwargs = dict(spec["config"])
    kwargs.update(vocab_size=VOCAB, max_position_embeddings=CONTEXT, hidden_act="silu",
                  initializer_range=1.0 / math.sqrt(kwargs["hidden_size"]),
                  pad_token_id=None, bos_token_id=None, eos_token_id=None)
    config = cls(**kwargs)
    torch.manual_seed(spec["seed"])
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    gen = torch.Generator().manual_seed(spec["seed"] + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():   # tied lm_head appears once, as model.embed_tokens.weight
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                p.mul_(QK_GAIN)
            elif name.endswith("norm.weight"):
                lo, hi = INIT["norm_weight_uniform"]
                p.copy_(torch.empty(p.shape).uniform_(lo, hi, generator=gen))
                if name.endswith(("q_norm.weight", "k_norm.weight")):
                    p.mul_(QK_GAIN)   # Qwen3's per-head RMSNorm erases the projections' gain; put it here
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * BIAS_STD)
    if config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "lm_head not tied"
    return config, model


def hf_checkpoint(model, config):
    """The tensors save_pretrained would write: a tied model has no lm_head.weight."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if config.tie_word_embeddings:
        del sd["lm_head.weight"]
    return sd


# ---------------------------------------------------------------------------------------------- convert_hf_to_gguf

def permute(w, n_head, n_head_kv):
    """conversion/llama.py LlamaModel.permute, verbatim: per head, rows [x.., y..] -> [x0, y0, x1, y1, ...]."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


def unpermute(w, n_head):
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


def llama3_rope_freqs(rope, dim):
    """conversion/llama.py LlamaModel.generate_extra_tensors, same float32 steps: the divisor of each frequency."""
    base = rope.get("rope_theta", 10000.0)
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor = rope.get("factor", 8.0)
    low_freq_factor = rope.get("low_freq_factor", 1.0)
    high_freq_factor = rope.get("high_freq_factor", 4.0)
    old_context_len = rope.get("original_max_position_embeddings", 8192)
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    rope_factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            rope_factors.append(1)
        elif wavelen > low_freq_wavelen:
            rope_factors.append(factor)
        else:
            smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            rope_factors.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(rope_factors, dtype=torch.float32)


def convert_tensors(spec, config, checkpoint):
    """[(gguf name, float32 numpy array in GGUF numpy order = HF [out, in])] in convert's order: extra tensors first."""
    cfg = config.to_dict()
    n_layers = config.num_hidden_layers
    tmap = gguf.get_tensor_name_map(spec["arch"], n_layers)
    out = []
    rope = cfg.get("rope_parameters") or {}
    if spec["arch"] == gguf.MODEL_ARCH.LLAMA and rope.get("rope_type", "").lower() == "llama3":
        dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        out.append((gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", llama3_rope_freqs(rope, dim).numpy()))
    for name, t in sorted(checkpoint.items()):   # a safetensors checkpoint lists its tensors sorted by name
        if spec["permute_qk"]:
            if name.endswith(("q_proj.weight", "q_proj.bias")):
                t = permute(t, config.num_attention_heads, config.num_attention_heads)
            if name.endswith(("k_proj.weight", "k_proj.bias")):
                t = permute(t, config.num_attention_heads, config.num_key_value_heads)
        new_name = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise SystemExit(f"{spec['name']}: no GGUF name for {name}")
        out.append((new_name, t.to(torch.float32).contiguous().numpy()))
    return out


def expected_tensors(spec, config):
    """{name: ne} as llama.cpp's load_arch_tensors creates them (ne[0] = row length), written out by hand."""
    E, V, F = config.hidden_size, config.vocab_size, config.intermediate_size
    D = head_dim_of(config)
    Q, KV = D * config.num_attention_heads, D * config.num_key_value_heads
    arch = spec["arch"]
    ne = {"token_embd.weight": (E, V), "output_norm.weight": (E,)}
    if not config.tie_word_embeddings:
        ne["output.weight"] = (E, V)
    if arch == gguf.MODEL_ARCH.LLAMA and (config.rope_parameters or {}).get("rope_type") == "llama3":
        ne["rope_freqs.weight"] = (D // 2,)
    for i in range(config.num_hidden_layers):
        b = f"blk.{i}."
        ne.update({b + "attn_norm.weight": (E,), b + "attn_q.weight": (E, Q), b + "attn_k.weight": (E, KV),
                   b + "attn_v.weight": (E, KV), b + "attn_output.weight": (Q, E), b + "ffn_norm.weight": (E,),
                   b + "ffn_gate.weight": (E, F), b + "ffn_up.weight": (E, F), b + "ffn_down.weight": (F, E)})
        if arch == gguf.MODEL_ARCH.QWEN2:
            ne.update({b + "attn_q.bias": (Q,), b + "attn_k.bias": (KV,), b + "attn_v.bias": (KV,)})
        if arch == gguf.MODEL_ARCH.QWEN3:
            ne.update({b + "attn_q_norm.weight": (D,), b + "attn_k_norm.weight": (D,)})
    return ne


def gguf_metadata(spec, config, total_params):
    """[(key, value, GGUFValueType)] in the order convert writes them (after general.architecture)."""
    cfg = config.to_dict()
    arch = gguf.MODEL_ARCH_NAMES[spec["arch"]]
    T = gguf.GGUFValueType
    kv = [
        ("general.type", "model", T.STRING),
        ("general.name", f"tally arch fixture {spec['name']}", T.STRING),
        ("general.size_label", gguf.size_label(total_params, 0, 0, 0), T.STRING),
        # TextModel.set_gguf_parameters
        (f"{arch}.block_count", cfg["num_hidden_layers"], T.UINT32),
        (f"{arch}.context_length", cfg["max_position_embeddings"], T.UINT32),
        (f"{arch}.embedding_length", cfg["hidden_size"], T.UINT32),
        (f"{arch}.feed_forward_length", cfg["intermediate_size"], T.UINT32),
        (f"{arch}.attention.head_count", cfg["num_attention_heads"], T.UINT32),
        (f"{arch}.attention.head_count_kv", cfg["num_key_value_heads"], T.UINT32),
        (f"{arch}.rope.freq_base", cfg["rope_parameters"]["rope_theta"], T.FLOAT32),
        (f"{arch}.attention.layer_norm_rms_epsilon", cfg["rms_norm_eps"], T.FLOAT32),
    ]
    if cfg.get("head_dim") is not None:
        kv += [(f"{arch}.attention.key_length", cfg["head_dim"], T.UINT32),
               (f"{arch}.attention.value_length", cfg["head_dim"], T.UINT32)]
    kv.append(("general.file_type", int(gguf.LlamaFileType.ALL_F32), T.UINT32))
    if spec["arch"] in (gguf.MODEL_ARCH.LLAMA, gguf.MODEL_ARCH.SMOLLM3):   # LlamaModel.set_gguf_parameters
        rope_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        kv += [(f"{arch}.vocab_size", cfg["vocab_size"], T.UINT32),
               (f"{arch}.rope.dimension_count", rope_dim, T.UINT32)]
    kv += [
        ("general.quantization_version", gguf.GGML_QUANT_VERSION, T.UINT32),
        ("tokenizer.ggml.model", "gpt2", T.STRING),
        ("tokenizer.ggml.pre", spec["pre"], T.STRING),
        ("tokenizer.ggml.tokens", TOKENS, T.ARRAY),
        ("tokenizer.ggml.token_type", TOKEN_TYPES, T.ARRAY),
        ("tokenizer.ggml.merges", INERT_MERGES, T.ARRAY),
        ("tokenizer.ggml.bos_token_id", BOS, T.UINT32),
        ("tokenizer.ggml.eos_token_id", EOS, T.UINT32),
        ("tokenizer.ggml.add_bos_token", False, T.BOOL),
    ]
    return kv


def write_gguf(path, spec, metadata, tensors):
    w = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[spec["arch"]])
    T = gguf.GGUFValueType
    for key, value, vtype in metadata:
        if vtype == T.ARRAY:
            w.add_array(key, value)
        elif vtype == T.STRING:
            w.add_string(key, value)
        elif vtype == T.UINT32:
            w.add_uint32(key, int(value))
        elif vtype == T.FLOAT32:
            w.add_float32(key, float(value))
        elif vtype == T.BOOL:
            w.add_bool(key, bool(value))
        else:
            raise SystemExit(f"unhandled type for {key}")
    for name, arr in tensors:
        w.add_tensor(name, arr, raw_dtype=gguf.GGMLQuantizationType.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------------------------- checks

def field_value(field):
    if field.types[0] == gguf.GGUFValueType.ARRAY:
        if field.types[-1] == gguf.GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        return [int(field.parts[i][0]) for i in field.data]
    if field.types[0] == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    return field.parts[field.data[0]][0].item()


def check_gguf(path, spec, config, metadata, tensors):
    r = gguf.GGUFReader(str(path))
    want = {"general.architecture": gguf.MODEL_ARCH_NAMES[spec["arch"]], "GGUF.version": 3}
    for key, value, vtype in metadata:
        want[key] = value
    got_keys = {k for k in r.fields if not k.startswith("GGUF.")} | {"GGUF.version"}
    assert got_keys == set(want), f"{spec['name']}: keys {sorted(got_keys ^ set(want))}"
    for key, value in want.items():
        got = field_value(r.fields[key])
        if isinstance(value, float):
            assert got == np.float32(value), f"{key}: {got} != {value}"
        else:
            assert got == value, f"{key}: {got!r} != {value!r}"
    ne = expected_tensors(spec, config)
    got_tensors = {t.name: t for t in r.tensors}
    assert set(got_tensors) == set(ne), f"{spec['name']}: tensors {sorted(set(got_tensors) ^ set(ne))}"
    for name, arr in tensors:
        t = got_tensors[name]
        assert tuple(int(x) for x in t.shape) == ne[name], f"{name}: ne {tuple(t.shape)} != {ne[name]}"
        assert t.tensor_type == gguf.GGMLQuantizationType.F32, name
        assert np.array_equal(np.asarray(t.data).reshape(arr.shape), arr), f"{name}: bytes differ"
    return r


def round_trip(reader, spec, config, logits):
    """Rebuild the HF checkpoint from the GGUF alone and check transformers reproduces the logits bit for bit."""
    tmap = gguf.get_tensor_name_map(spec["arch"], config.num_hidden_layers)
    _, fresh = build_model(spec)
    state = {}
    for hf_name in fresh.state_dict():
        gname = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        t = next(x for x in reader.tensors if x.name == gname)
        arr = torch.from_numpy(np.array(t.data, dtype=np.float32).reshape(tuple(reversed([int(s) for s in t.shape]))))
        if spec["permute_qk"] and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            arr = unpermute(arr, config.num_attention_heads)
        if spec["permute_qk"] and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            arr = unpermute(arr, config.num_key_value_heads)
        state[hf_name] = arr
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    again = forward(fresh, logits_only=True)
    assert np.array_equal(again, logits), f"{spec['name']}: round trip changed logits"


def check_rope(spec, config, model, rope_freqs):
    """llama.cpp's rotation of the GGUF's (possibly permuted) q rows equals transformers' of the original rows."""
    D = head_dim_of(config)
    half = D // 2
    base = config.rope_parameters["rope_theta"]
    pos = torch.arange(POSITIONS)
    g = torch.Generator().manual_seed(7)
    q = torch.randn(1, 1, POSITIONS, D, generator=g)
    rot = model.model.rotary_emb
    cos, sin = rot(q, pos[None])
    mod = sys.modules[type(model.model.layers[0].self_attn).__module__]
    hf, _ = mod.apply_rotary_pos_emb(q, q, cos, sin)
    hf = hf[0, 0].double().numpy()                              # [positions, D] in HF row order
    qq = q[0, 0].double().numpy()
    ff = np.ones(half) if rope_freqs is None else rope_freqs.astype(np.float64)
    theta = pos.double().numpy()[:, None] * base ** (-2.0 * np.arange(half) / D) / ff   # [positions, half]
    c, s = np.cos(theta), np.sin(theta)
    if spec["rope"] == "normal":
        order = np.arange(D).reshape(2, half).T.reshape(-1)    # permuted row r holds HF row order[r]
        x = qq[:, order]
        out = np.empty_like(x)
        out[:, 0::2] = x[:, 0::2] * c - x[:, 1::2] * s
        out[:, 1::2] = x[:, 0::2] * s + x[:, 1::2] * c
        want = hf[:, order]
    else:
        out = np.concatenate([qq[:, :half] * c - qq[:, half:] * s, qq[:, :half] * s + qq[:, half:] * c], axis=1)
        want = hf
    err = float(np.max(np.abs(out - want)))
    assert err < 1e-4, f"{spec['name']}: llama.cpp {spec['rope']} RoPE differs from transformers by {err}"
    return err


CONVERT_DRIVER = """
import json, sys
from pathlib import Path
llama_cpp_dir, hf_dir, out, name, vocab_file = sys.argv[1:]
sys.path[:0] = [str(Path(llama_cpp_dir) / "gguf-py"), llama_cpp_dir]   # the tree's own gguf-py, as convert does
import torch, gguf
from conversion import ModelBase, ModelType, get_model_architecture, get_model_class
vocab = json.loads(Path(vocab_file).read_text())

def set_vocab(self):
    w = self.gguf_writer
    for key, value, kind in vocab:
        getattr(w, "add_" + kind)(key, value)

cls = get_model_class(get_model_architecture(ModelBase.load_hparams(Path(hf_dir), False), ModelType.TEXT))
cls.set_vocab = set_vocab
with torch.inference_mode():
    cls(Path(hf_dir), gguf.LlamaFileType.ALL_F32, Path(out), eager=True, model_name=name).write()
"""


def convert_check(llama_cpp_dir, spec, config, model, gguf_path):
    """--convert-check DIR: save the HF checkpoint, run DIR's own converter classes on it (what
    `convert_hf_to_gguf.py --outtype f32` runs) with only set_vocab replaced by this fixture's tokenizer keys, and
    require the very same bytes as gguf_path. DIR is a llama.cpp tree, e.g. llama-cpp-python's sdist
    vendor/llama.cpp. A subprocess, because that tree's gguf-py can be newer than the PyPI gguf of the same
    version number, and convert needs its own."""
    import subprocess
    import tempfile
    T = gguf.GGUFValueType
    kinds = {T.ARRAY: "array", T.STRING: "string", T.UINT32: "uint32", T.BOOL: "bool"}
    vocab = [(k, v, kinds[t]) for k, v, t in gguf_metadata(spec, config, 0) if k.startswith("tokenizer.")]
    with tempfile.TemporaryDirectory() as tmp:
        hf_dir, out, vocab_file = Path(tmp) / "hf", Path(tmp) / "converted.gguf", Path(tmp) / "vocab.json"
        model.save_pretrained(hf_dir)
        vocab_file.write_text(json.dumps(vocab))
        subprocess.run([sys.executable, "-c", CONVERT_DRIVER, str(llama_cpp_dir), str(hf_dir), str(out),
                        f"tally arch fixture {spec['name']}", str(vocab_file)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        same = out.read_bytes() == gguf_path.read_bytes()
    assert same, f"{spec['name']}: convert_hf_to_gguf output differs from {gguf_path.name}"
    return True


# ---------------------------------------------------------------------------------------------- reference

def token_ids():
    return np.random.default_rng(TOKEN_SEED).integers(0, VOCAB, size=POSITIONS).tolist()


def forward(model, logits_only=False, dtype=torch.float32):
    ids = torch.tensor([token_ids()], dtype=torch.long)
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=False, output_attentions=not logits_only)
    logits = out.logits[0].to(dtype).numpy()
    if logits_only:
        return logits
    return logits, [a[0].double().numpy() for a in out.attentions]   # per layer [heads, q, k]


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def kl(p_logits, q_logits):
    lp, lq = log_softmax(p_logits), log_softmax(q_logits)
    return (np.exp(lp) * (lp - lq)).sum(axis=-1)


def compare(ref, other):
    return {"max_abs": float(np.max(np.abs(other.astype(np.float64) - ref))),
            "rel_max_abs": float(np.max(np.abs(other.astype(np.float64) - ref)) / np.max(np.abs(ref))),
            "mean_kl": float(kl(ref, other).mean()), "max_kl": float(kl(ref, other).max()),
            "top1_agreement": float(np.mean(ref.argmax(-1) == other.argmax(-1)))}


def variant(spec, config, model, mutate):
    """Logits of a copy of the model with one deliberate mistake, to show the fixture can see that mistake."""
    m = copy.deepcopy(model)
    mutate(m)
    return forward(m, logits_only=True)


def sensitivity(spec, config, model, logits):
    """How far some plausible implementation mistakes move the logits (a threshold must sit well below)."""
    H, HKV = config.num_attention_heads, config.num_key_value_heads
    out = {}

    def swap_rope_style(m):
        # The other pairing applied to the GGUF's rows equals transformers (always half-split pairs) on rows
        # reordered the other way: permuted for a NORMAL architecture, un-permuted for a NEOX one. Per-dimension
        # weights that travel with those rows (Qwen3's q_norm/k_norm) are reordered the same way.
        reorder = (lambda w, n: permute(w, n, n)) if spec["rope"] == "normal" else unpermute
        with torch.no_grad():
            for layer in m.model.layers:
                a = layer.self_attn
                for proj, n in ((a.q_proj, H), (a.k_proj, HKV)):
                    proj.weight.copy_(reorder(proj.weight.clone(), n))
                    if proj.bias is not None:
                        proj.bias.copy_(reorder(proj.bias.clone(), n))
                for norm in (getattr(a, "q_norm", None), getattr(a, "k_norm", None)):
                    if norm is not None:
                        norm.weight.copy_(reorder(norm.weight.clone(), 1))
    out["other_rope_pairing"] = compare(logits, variant(spec, config, model, swap_rope_style))

    def gqa_modulo(m):
        # Query head h reading KV head h % n_kv instead of h // (n_head / n_kv): transformers with query head h
        # (its q rows and its o_proj columns) moved to the slot s with s // group == h % n_kv.
        D = head_dim_of(config)
        group = H // HKV
        head_at = [0] * H
        for h in range(H):
            head_at[(h % HKV) * group + h // HKV] = h
        rows = torch.cat([torch.arange(h * D, (h + 1) * D) for h in head_at])
        with torch.no_grad():
            for layer in m.model.layers:
                a = layer.self_attn
                a.q_proj.weight.copy_(a.q_proj.weight[rows].clone())
                if a.q_proj.bias is not None:
                    a.q_proj.bias.copy_(a.q_proj.bias[rows].clone())
                a.o_proj.weight.copy_(a.o_proj.weight[:, rows].clone())
    out["gqa_head_modulo"] = compare(logits, variant(spec, config, model, gqa_modulo))

    if (config.rope_parameters or {}).get("rope_type") == "llama3":
        def no_rope_freqs(m):
            c = copy.deepcopy(config)
            c.rope_parameters = {"rope_type": "default", "rope_theta": config.rope_parameters["rope_theta"]}
            m.model.rotary_emb = type(m.model.rotary_emb)(c)
        out["rope_freqs_ignored"] = compare(logits, variant(spec, config, model, no_rope_freqs))
    if spec["arch"] == gguf.MODEL_ARCH.QWEN2:
        def no_bias(m):
            with torch.no_grad():
                for layer in m.model.layers:
                    for p in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                        p.bias.zero_()
        out["qkv_bias_ignored"] = compare(logits, variant(spec, config, model, no_bias))
    if spec["arch"] == gguf.MODEL_ARCH.QWEN3:
        def no_qk_norm_weight(m):
            with torch.no_grad():
                for layer in m.model.layers:
                    layer.self_attn.q_norm.weight.fill_(1.0)
                    layer.self_attn.k_norm.weight.fill_(1.0)
        out["qk_norm_weight_ignored"] = compare(logits, variant(spec, config, model, no_qk_norm_weight))

        def no_qk_norm(m):
            for layer in m.model.layers:
                layer.self_attn.q_norm = torch.nn.Identity()
                layer.self_attn.k_norm = torch.nn.Identity()
        out["qk_norm_skipped"] = compare(logits, variant(spec, config, model, no_qk_norm))
    if spec["arch"] == gguf.MODEL_ARCH.SMOLLM3:
        def rope_everywhere(m):
            for layer in m.model.layers:
                layer.self_attn.use_rope = 1
        out["nope_layer_roped"] = compare(logits, variant(spec, config, model, rope_everywhere))
    if config.tie_word_embeddings:
        def output_norm_weight_ignored(m):
            with torch.no_grad():
                m.model.norm.weight.fill_(1.0)
        out["output_norm_weight_ignored"] = compare(logits, variant(spec, config, model, output_norm_weight_ignored))
    else:
        def tied_by_mistake(m):
            with torch.no_grad():
                m.lm_head.weight.copy_(m.model.embed_tokens.weight)
        out["output_weight_ignored_tied_instead"] = compare(logits, variant(spec, config, model, tied_by_mistake))
    return out


def stats(logits, logits64, attentions):
    srt = np.sort(logits.astype(np.float64), axis=-1)
    margin = srt[:, -1] - srt[:, -2]
    ent = []
    for a in attentions:                                   # [heads, q, k], causal
        h = -(a * np.log(np.where(a > 0, a, 1.0))).sum(-1)  # [heads, q]
        n = np.arange(1, a.shape[1] + 1)
        ent.append(float((h[:, 1:] / np.log(n[1:])).mean()))
    return {
        "max_abs_logit": float(np.max(np.abs(logits))),
        "mean_logit_std_over_vocab": float(logits.std(axis=-1).mean()),
        "top2_margin": {"min": float(margin.min()), "median": float(np.median(margin)), "max": float(margin.max())},
        "attention_entropy_over_log_keys_per_layer": ent,
        "float32_vs_float64": compare(logits64, logits),
    }


# ---------------------------------------------------------------------------------------------- main

def to_json(o, depth=0):
    """JSON with one key per line but lists of numbers or strings on one line."""
    pad = " " * (depth + 1)
    if isinstance(o, dict):
        inner = ",\n".join(f"{pad}{json.dumps(k)}: {to_json(v, depth + 1)}" for k, v in o.items())
        return "{\n" + inner + "\n" + " " * depth + "}" if o else "{}"
    if isinstance(o, list) and any(isinstance(x, (dict, list)) for x in o):
        return "[\n" + ",\n".join(pad + to_json(x, depth + 1) for x in o) + "\n" + " " * depth + "]"
    return json.dumps(o, ensure_ascii=False)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make(spec, versions, llama_cpp_dir=None):
    t0 = time.time()
    config, model = build_model(spec)
    checkpoint = hf_checkpoint(model, config)
    tensors = convert_tensors(spec, config, checkpoint)
    total = sum(a.size for _, a in tensors)
    metadata = gguf_metadata(spec, config, total)

    logits, attentions = forward(model)
    model64 = copy.deepcopy(model).double()
    logits64 = forward(model64, logits_only=True, dtype=torch.float64)

    gguf_path = HERE / f"{spec['name']}.gguf"
    logits_path = HERE / f"{spec['name']}.logits.f32"
    json_path = HERE / f"{spec['name']}.json"
    write_gguf(gguf_path, spec, metadata, tensors)
    reader = check_gguf(gguf_path, spec, config, metadata, tensors)
    round_trip(reader, spec, config, logits)
    rope_freqs = dict(tensors).get("rope_freqs.weight")
    rope_err = check_rope(spec, config, model, None if rope_freqs is None else np.asarray(rope_freqs))
    converted = convert_check(llama_cpp_dir, spec, config, model, gguf_path) if llama_cpp_dir else None

    logits.astype("<f4").tofile(logits_path)
    cfg = config.to_dict()
    D = head_dim_of(config)
    record = {
        "format_version": FORMAT_VERSION,
        "name": spec["name"],
        "regenerate": "nice -n 19 python3 Tests/ModelRuntimeTests/Fixtures/arch/make_arch_fixtures.py "
                      "(pinned versions in README.md)",
        "gguf": gguf_path.name, "gguf_sha256": sha256(gguf_path), "gguf_bytes": gguf_path.stat().st_size,
        "architecture": gguf.MODEL_ARCH_NAMES[spec["arch"]],
        "logits": logits_path.name, "logits_sha256": sha256(logits_path),
        "logits_dtype": "float32 little-endian, row-major", "logits_shape": [POSITIONS, VOCAB],
        "token_ids": token_ids(),
        "token_ids_note": "position i of the logits is the distribution after token_ids[0...i]; no BOS is added",
        "facts": {
            "rope": spec["rope"], "qk_rows_permuted_by_convert": spec["permute_qk"], "head_dim": D,
            "rope_dimension": D, "rope_theta": config.rope_parameters["rope_theta"],
            "rope_scaling": config.rope_parameters.get("rope_type", "default"),
            "rope_freqs": None if rope_freqs is None else [float(x) for x in np.asarray(rope_freqs)],
            "nope_layers": [i for i in range(config.num_hidden_layers) if (i + 1) % 4 == 0]
                           if spec["arch"] == gguf.MODEL_ARCH.SMOLLM3 else [],
            "rms_norm_eps": config.rms_norm_eps, "tied_output": bool(config.tie_word_embeddings),
            "qkv_bias": spec["arch"] == gguf.MODEL_ARCH.QWEN2, "qk_norm": spec["arch"] == gguf.MODEL_ARCH.QWEN3,
            "attention_scale": f"1/sqrt({D})",
        },
        "gguf_metadata": {k: v for k, v, _ in metadata if not k.startswith("tokenizer.ggml.t")},
        "gguf_tensors": {n: list(s) for n, s in expected_tensors(spec, config).items()},
        "transformers_config": {k: v for k, v in cfg.items() if k not in ("id2label", "label2id")},
        "init": dict(INIT, seed=spec["seed"], initializer_range_value=config.initializer_range),
        "token_seed": TOKEN_SEED,
        "versions": versions,
        "stats": stats(logits, logits64, attentions),
        "sensitivity": sensitivity(spec, config, model, logits),
        "checks": {"rope_vs_transformers_max_abs": rope_err, "round_trip_bit_identical": True,
                   "byte_identical_to_convert_hf_to_gguf": converted},
    }
    json_path.write_text(to_json(record) + "\n")
    st = record["stats"]
    print(f"{spec['name']:12s} gguf {gguf_path.stat().st_size:7d} B  logits {logits_path.stat().st_size} B  "
          f"max|logit| {st['max_abs_logit']:.2f}  std {st['mean_logit_std_over_vocab']:.2f}  "
          f"attn-entropy {['%.2f' % e for e in st['attention_entropy_over_log_keys_per_layer']]}  "
          f"f32-f64 {st['float32_vs_float64']['max_abs']:.1e}  {time.time() - t0:.1f}s")
    for k, v in record["sensitivity"].items():
        print(f"    {k:36s} rel {v['rel_max_abs']:.3f}  mean KL {v['mean_kl']:.4f}  top1 {v['top1_agreement']:.2f}")


def main():
    import argparse
    ap = argparse.ArgumentParser(description="Write the per-architecture float32 reference fixtures.")
    ap.add_argument("names", nargs="*", help="fixtures to write (default: all): " + ", ".join(f["name"] for f in FIXTURES))
    ap.add_argument("--convert-check", metavar="LLAMA_CPP_DIR",
                    help="also require each GGUF to be byte-identical to what that tree's convert_hf_to_gguf.py writes")
    args = ap.parse_args()
    unknown = set(args.names) - {f["name"] for f in FIXTURES}
    if unknown:
        ap.error(f"unknown fixtures {sorted(unknown)}")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.utils.logging.disable_progress_bar()
    from importlib.metadata import version
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "gguf": version("gguf"),
                "numpy": np.__version__, "python": platform.python_version()}
    t0 = time.time()
    for spec in FIXTURES:
        if not args.names or spec["name"] in args.names:
            make(spec, versions, args.convert_check)
    print(f"total {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
