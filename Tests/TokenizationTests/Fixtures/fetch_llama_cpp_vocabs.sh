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
# A plain `pip download` of this sdist builds cmake just to read its metadata; with scikit-build-core
# installed and no build isolation it does not (../shared/reference/smollm2-135m.md).
python3 -m pip install -q --disable-pip-version-check scikit-build-core
python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: --no-build-isolation \
    llama-cpp-python==0.3.36 -d "$tmp"
members=()
for n in $names; do for ext in "" .inp .out; do members+=("llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-$n.gguf$ext"); done; done
# The chat templates of the families tally runs, as their model repositories ship them.
for t in $templates; do members+=("llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates/$t.jinja"); done
tar xzf "$tmp/llama_cpp_python-0.3.36.tar.gz" -C "$tmp" "${members[@]}"
for m in "${members[@]}"; do cp "$tmp/$m" "$dir/"; done
echo "llama.cpp vocabularies in $dir"
