#!/usr/bin/env bash
# llama.cpp's tokenizer test vocabularies: vocab-only GGUFs (Llama 3's llama-bpe, Qwen2's, Phi-3's SPM)
# with hard inputs (code, CJK, emoji, digits, whitespace runs) and the ids Hugging Face's tokenizers give
# for them (llama.cpp's convert_hf_to_gguf_update.py writes the .out files with AutoTokenizer). Too large
# to commit (14 MB), so taken from the llama-cpp-python sdist on PyPI, which vendors llama.cpp.
#
#     bash Tests/TokenizationTests/Fixtures/fetch_llama_cpp_vocabs.sh [DIR]   # default .build/llama-cpp-vocabs
#
# Also the chat templates of those families. The tokenization tests read DIR from TALLY_VOCAB_DIR (.ci/run sets it).
set -euo pipefail
cd "$(dirname "$0")/../../.."
dir=${1:-.build/llama-cpp-vocabs}
names="llama-bpe qwen2 phi-3"
templates="Qwen-Qwen2.5-7B-Instruct Qwen-Qwen3-0.6B meta-llama-Llama-3.2-3B-Instruct meta-llama-Llama-3.1-8B-Instruct HuggingFaceTB-SmolLM3-3B microsoft-Phi-3.5-mini-instruct"
missing=0
for n in $names; do for ext in "" .inp .out; do [ -s "$dir/ggml-vocab-$n.gguf$ext" ] || missing=1; done; done
for t in $templates; do [ -s "$dir/$t.jinja" ] || missing=1; done
[ "$missing" = 0 ] && exit 0
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The sdist itself, found in PyPI's simple index (PEP 503) and checked against the sha256 the index gives.
# Not `pip download`: for an sdist it prepares the package's metadata, and llama-cpp-python's build
# backend wants CMake for that.
python3 - "$tmp" <<'PY'
import hashlib, os, re, sys, urllib.request
index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
page = urllib.request.urlopen(f"{index}/llama-cpp-python/", timeout=60).read().decode()
url, digest = next((u, d) for u, d in re.findall(r'href="([^"]*llama_cpp_python-0\.3\.36\.tar\.gz)#sha256=([0-9a-f]{64})"', page))
data = urllib.request.urlopen(url, timeout=300).read()
if hashlib.sha256(data).hexdigest() != digest:
    sys.exit(f"llama_cpp_python-0.3.36.tar.gz: sha256 differs from the index's {digest}")
open(os.path.join(sys.argv[1], "llama_cpp_python-0.3.36.tar.gz"), "wb").write(data)
PY
members=()
for n in $names; do for ext in "" .inp .out; do members+=("llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-$n.gguf$ext"); done; done
# The chat templates of the families tally runs, as their model repositories ship them.
for t in $templates; do members+=("llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates/$t.jinja"); done
tar xzf "$tmp/llama_cpp_python-0.3.36.tar.gz" -C "$tmp" "${members[@]}"
for m in "${members[@]}"; do cp "$tmp/$m" "$dir/"; done
echo "llama.cpp vocabularies in $dir"
