#!/usr/bin/env python3
# Writes goldens.json: ~350 strings with token ids from an independent tokenizer (HF `tokenizers`) built
# from the fixture GGUF's own tokens and merges, plus the pre-token splits of the gpt2/llama3/qwen2 regexes.
# Regenerate: python3 Tests/TokenizationTests/Fixtures/make_goldens.py   (needs `pip install gguf tokenizers`;
# run make_vocab_fixture.py first). Golden format version 1 (bump FORMAT_VERSION when the JSON shape changes).
#
# The oracle mirrors llama.cpp's pre-tokenizers (src/llama-vocab.cpp): `smollm` isolates every \p{N} and then
# applies the GPT-2 regex; `llama3` and `qwen2` are their tokenizer.json regexes (case-insensitive
# contractions; digits in groups of up to 3, resp. 1); llama3 also skips merges when a whole word is a token.
# Before writing anything the oracle must reproduce the 9 llama.cpp references of reference/smollm2-135m.md.
import json
import random
from pathlib import Path

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

FORMAT_VERSION = 1
HERE = Path(__file__).resolve().parent
VOCAB = HERE / "smollm2-vocab.gguf"
OUT = HERE / "goldens.json"

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# llama-tokenize (llama.cpp 0c1e570), no BOS, special tokens parsed: reference/smollm2-135m.md
REFERENCES = [
    ("Hello world! 123 naïve café\n\tcode()", [19556, 905, 17, 216, 33, 34, 35, 15486, 46494, 37366, 198, 197, 4635, 1000]),
    ("The capital of France is", [504, 3575, 282, 4649, 314]),
    ("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
     [1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47, 2, 198, 1, 520, 9531, 198]),
    ("   leading spaces,   multiple   spaces and trailing  ", [256, 2899, 5600, 28, 256, 2701, 256, 5600, 284, 35079, 256]),
    ("3.14159 1000000 2024-11-22 $1,234.56 0x1F",
     [35, 30, 33, 36, 33, 37, 41, 216, 33, 32, 32, 32, 32, 32, 32, 216, 34, 32, 34, 36, 29, 33, 33, 29, 34, 34, 1885,
      33, 28, 34, 35, 36, 30, 37, 38, 216, 32, 104, 33, 54]),
    ("日本語のテキスト 😀 Ελληνικά Привет",
     [23274, 115, 40993, 179, 120, 248, 26453, 11100, 224, 10391, 251, 10391, 134, 11100, 226, 40303, 218, 5664, 239,
      17162, 17162, 25723, 11517, 12001, 21118, 26112, 5470, 249, 46879, 16464, 32547]),
    ("def f(x):\n    return x**2  # comment\n", [1604, 275, 24, 104, 727, 472, 1003, 1792, 828, 34, 216, 907, 5189, 198]),
    ("I'm you're they'll we've don't HELLO", [57, 5248, 346, 2316, 502, 3060, 392, 3543, 1326, 982, 407, 4210, 6426]),
    ("\n\n\n", [16506]),
]

HAND = [
    "",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "a",
    "Hello",
    "hello world",
    "Hello, World!",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!",
    "I'M HERE, YOU'RE THERE, THEY'LL COME, WE'VE SEEN, DON'T GO, HE'D SAY, IT'S OK",
    "Don't, Won't, Can't, Shouldn't've, Y'all, O'Neill, rock'n'roll",
    "it's it'S IT's 'tis 'twas ''quoted'' 'single'",
    "He said \"hello\" and she said 'goodbye'.",
    "Line one\nLine two\nLine three",
    "Windows\r\nline\r\nendings\r\n",
    "mixed\r\n\r\n\n\r  \r\n\ttabs",
    "\t\tdouble tab\tsingle tab\t",
    "trailing spaces   ",
    "   leading spaces",
    "a  b   c    d     e      f",
    "word\u00a0nbsp\u2003emspace\u3000ideographic",
    "zero\u200bwidth\u200cjoiner\u200dtest",
    "0", "7", "42", "123", "1234", "12345", "1234567890", "00001", "3.14", "-1", "+1", "1e10", "1,000,000.00",
    "2024-11-22T12:34:56Z", "12:30pm", "v1.2.3", "0xDEADBEEF", "0b1010", "1/2 + 3/4 = 5/4", "50%", "$100", "€20", "£3.50",
    "¥1000", "Call 555-0123 or +1 (800) 555-0199",
    "Ⅻ ½ ² ³ ¼ ٣ ४ ๕ ௫",
    "https://example.com/path/to/page?query=1&other=two#frag",
    "http://localhost:8080/v1/chat/completions",
    "mailto:someone@example.org",
    "user@example.com, admin+tag@sub.domain.co.uk",
    "ftp://files.example.net/pub/file-1.2.tar.gz",
    "C:\\Users\\name\\Documents\\file.txt",
    "/usr/local/bin/swift build -c release",
    "{\"name\": \"tally\", \"version\": 1, \"tags\": [\"a\", \"b\"], \"ok\": true, \"n\": null}",
    "[{\"id\":1,\"v\":[1.5,-2e3]},{\"id\":2}]",
    "{\n  \"key\": \"value\",\n  \"nested\": {\"a\": [1, 2, 3]}\n}",
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "<div id='main'>\n\t<span>text</span>\n</div>",
    "SELECT id, name FROM users WHERE age > 30 ORDER BY name;",
    "def f(x):\n    return x * 2\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "func encode(_ text: String) -> [TokenID] {\n    return []\n}",
    "let x: [Int: String] = [:]; x[1] = \"one\"",
    "if x == 1 && y != 2 || !z { print(\"ok\") }",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "import numpy as np\narr = np.zeros((3, 4), dtype=np.float32)",
    "const f = async (a, b) => { await g(a ?? b); };",
    "    indented four\n        indented eight\n\tindented tab",
    "fn main() {\n    println!(\"{}\", 1 + 2);\n}",
    "x = [i**2 for i in range(10) if i % 2 == 0]",
    "$ echo $HOME && ls -la | grep '.swift' > out.txt 2>&1",
    "// comment\n/* block */\n# hash\n-- dash",
    "a=b;c=d;e=f",
    "foo_bar-baz.qux",
    "CamelCaseIdentifier snake_case_identifier SCREAMING_CASE kebab-case",
    "naïve café résumé façade coöperate Ångström",
    "Müller Straße Größe Übung ß ẞ",
    "El niño comió piña en la mañana. ¿Qué? ¡Sí!",
    "Ça va? Où est l'hôtel? J'ai faim, n'est-ce pas?",
    "Привет, мир! Как дела? ЁЖИК ёжик",
    "Ελληνικά: Καλημέρα κόσμε",
    "日本語のテキスト",
    "東京都渋谷区　２０２４年",
    "中文测试：你好，世界！",
    "繁體中文測試",
    "한국어 텍스트입니다. 안녕하세요!",
    "ภาษาไทย สวัสดีครับ",
    "हिन्दी में पाठ। नमस्ते",
    "বাংলা ভাষা",
    "العربية: مرحبا بالعالم",
    "עברית: שלום עולם",
    "Türkçe: İstanbul ığdır ŞĞÜÖÇ",
    "Tiếng Việt: Xin chào thế giới",
    "ქართული ენა",
    "Հայերեն",
    "አማርኛ",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙 𝒮𝒸𝓇𝒾𝓅𝓉",
    "e\u0301 a\u0300 n\u0303 combining",
    "ﬁ ﬂ ligatures Ⅻ ™ © ®",
    "😀",
    "😀😃😄😁",
    "👍🏽 👋🏿",
    "👨‍👩‍👧‍👦 family",
    "🏳️‍🌈 rainbow flag",
    "🧑‍💻 technologist",
    "❤️ ✨ ☕ ⚡",
    "🇺🇸🇯🇵🇩🇪",
    "emoji😀in😀middle",
    "Mixed 日本 and English and Русский and 😀",
    "←↑→↓ ∀x∃y: x ≤ y ∧ y ≠ 0 ⇒ ∑ ∫ √ ∞",
    "•bullet • another ◦ sub",
    "— em dash – en dash … ellipsis",
    "“smart quotes” ‘single’ «guillemets» „low“",
    "!!!???...,,,;;;:::",
    "(((nested))) [[[brackets]]] {{{braces}}}",
    "----------",
    "==========",
    "**bold** _italic_ `code` ~~strike~~",
    "# Heading\n\n## Sub\n\n- item 1\n- item 2\n\n1. first\n2. second",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "> quoted\n>> double quoted",
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "text<|im_end|>more text",
    "<|im_start|><|im_start|><|im_end|>",
    "<|im_start|>user\n<|endoftext|><repo_name>x<reponame>y<file_sep>z",
    "<filename>main.py\n<gh_stars>100\n<issue_start>title<issue_comment>c<issue_closed>",
    "<jupyter_start><jupyter_text>md<jupyter_code>x=1<jupyter_output>1<jupyter_script><empty_output>",
    "<|im_start |> <| im_end|> <im_start> |im_end|",
    "<|im_start|",
    "almost <|im_end special",
    "a<|endoftext|>b<|endoftext|>c",
    "   <|im_start|>   spaces around   <|im_end|>   ",
    "\n<|im_start|>\n",
    "\u0000null\u0001\u0007bell\u001b[0mescape",
    "tab\tseparated\tvalues\t1\t2\t3",
    "x\u000bvertical\u000cformfeed",
    "\u0085nel\u2028lsep\u2029psep",
    "The year 1999 and 2000 and 31337.",
    "Version 10.15.7 (build 19H2)",
    "Temperatures: -40°C, 98.6°F, 273.15K",
    "3x + 2y = 7; x^2 - 4 = 0",
    "a\n\nb\n\n\nc\n\n\n\nd",
    "    ",
    "\n\n\n\n\n\n\n\n",
    "\t\t\t\t",
    " \t \n \r\n ",
    "end with newline\n",
    "END WITH CAPS'LL",
    "'s",
    "'",
    "''",
    "don't",
    "DON'T",
    "Don'T",
    "I'D've",
    "O'CLOCK",
    "rock 'n' roll",
    "a'b'c'd",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "abababababababababababababababababababababababab",
    "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
    "............................................................",
    "1111111111111111111111111111111111111111",
    "The answer is: 2018-01-22 12:12:53.",
    "What is the capital of France?",
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    "Q: What's 2+2?\nA: 4.",
    "Step 1: Preheat the oven to 350°F (175°C).\nStep 2: Mix.",
    "ID: a1b2c3d4-e5f6-7890-abcd-ef1234567890",
    "base64: SGVsbG8gV29ybGQh+/==",
    "sha256:7b46609d11703c058397e5cfe4cc6e4b2508cb1eb4c80ddc472a5d421fbdb508",
    "@mention #hashtag $CASHTAG %percent ^caret &amp *star",
    "~tilde `backtick` |pipe| \\backslash\\",
    "x86_64-unknown-linux-gnu",
    "i18n l10n a11y k8s",
    "AT&T R&D Q&A",
    "U.S.A. e.g. i.e. etc.",
    "Mr. Smith's dog's bone's",
    "She'll've gone; they'd've known",
]

WORDS = ["the", "The", "THE", "tokenizer", "Swift", "server", "model", "naïve", "Zürich", "日本", "東京", "Москва",
         "Ελλάδα", "서울", "مرحبا", "שלום", "😀", "👨‍👩‍👧", "🚀", "don't", "WON'T", "it's", "x", "y_1", "fooBar",
         "42", "3.14", "1e-9", "100%", "$5", "#1", "@user", "http://a.b/c", "a+b", "(x)", "[i]", "{k: v}", "->", "=>",
         "...", "!", "?", ",", ";", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "é", "ñ", "ß", "Ω", "∑", "—", "“q”"]
SEPS = [" ", " ", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", "", " \t", "\u00a0", ""]


def generated(rng, n):
    out = []
    for _ in range(n):
        k = rng.randint(1, 14)
        parts = []
        for i in range(k):
            parts.append(rng.choice(WORDS))
            if i + 1 < k:
                parts.append(rng.choice(SEPS))
        if rng.random() < 0.15:
            parts.insert(0, rng.choice(SEPS))
        if rng.random() < 0.15:
            parts.append(rng.choice(SEPS))
        out.append("".join(parts))
    return out


def numbers(rng, n):
    out = []
    for _ in range(n):
        kind = rng.randint(0, 4)
        if kind == 0:
            out.append(str(rng.randint(0, 10 ** rng.randint(1, 15))))
        elif kind == 1:
            out.append(f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 6)}f}")
        elif kind == 2:
            out.append(" ".join(str(rng.randint(0, 999)) for _ in range(rng.randint(2, 6))))
        elif kind == 3:
            out.append(f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
        else:
            out.append(f"x{rng.randint(0, 99)} = {rng.randint(0, 9999)} * {rng.random():.3f}")
    return out


def whitespace(rng, n):
    out = []
    pool = [" ", "\t", "\n", "\r\n", "\r", "\u3000", "\u00a0"]
    for _ in range(n):
        s = ""
        for _ in range(rng.randint(1, 6)):
            s += "".join(rng.choice(pool) for _ in range(rng.randint(1, 5)))
            s += rng.choice(["word", "X", "1", ".", "日本", "é", ""])
        out.append(s)
    return out


def long_words(rng):
    """Single words of thousands of characters: the merge loop's worst case (no pre-token boundary)."""
    letters = "abcdefghijklmnopqrstuvwxyzéüß"
    return ["a" * 3000, "ab" * 1500, "é" * 1000, "😀" * 300, " " + "x" * 2500,
            "".join(rng.choice(letters) for _ in range(2000)), "".join(rng.choice("0123456789") for _ in range(500))]


def load_vocab():
    reader = gguf.GGUFReader(str(VOCAB))
    f = reader.fields
    tokens = [bytes(f["tokenizer.ggml.tokens"].parts[i]).decode("utf-8") for i in f["tokenizer.ggml.tokens"].data]
    types = [f["tokenizer.ggml.token_type"].parts[i][0].item() for i in f["tokenizer.ggml.token_type"].data]
    merges = [bytes(f["tokenizer.ggml.merges"].parts[i]).decode("utf-8") for i in f["tokenizer.ggml.merges"].data]
    assert bytes(f["tokenizer.ggml.pre"].parts[f["tokenizer.ggml.pre"].data[0]]).decode() == "smollm"
    return tokens, types, merges


def build(tokens, types, merges, split_regexes, ignore_merges=False):
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    tok = Tokenizer(models.BPE(vocab, pairs, ignore_merges=ignore_merges))
    splits = [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in split_regexes]
    tok.pre_tokenizer = pre_tokenizers.Sequence(splits + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    return tok


def splitter(split_regexes):
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r), behavior="isolated") for r in split_regexes])


def main():
    tokens, types, merges = load_vocab()
    pre_sets = {
        "smollm": [r"\p{N}", GPT2],
        "gpt2": [GPT2],
        "llama3": [LLAMA3],
        "qwen2": [QWEN2],
    }
    tok = {name: build(tokens, types, merges, regs, ignore_merges=(name == "llama3")) for name, regs in pre_sets.items()}
    plain = build(tokens, types, merges, pre_sets["smollm"])
    plain.encode_special_tokens = True
    split = {name: splitter(regs) for name, regs in pre_sets.items()}

    for text, ids in REFERENCES:
        got = tok["smollm"].encode(text).ids
        if got != ids:
            raise SystemExit(f"oracle disagrees with llama.cpp on {text!r}:\n got  {got}\n want {ids}")

    rng = random.Random(20261122)
    strings = [t for t, _ in REFERENCES] + HAND + generated(rng, 120) + numbers(rng, 40) + whitespace(rng, 30) + long_words(rng)
    # Two long texts (> 2 KB) built from the others: tally memoises repeated words only in long texts.
    strings += [" ".join(strings[:120]), "\n".join(rng.sample(strings, 200))]
    seen, unique = set(), []
    for s in strings:
        if s not in seen:
            seen.add(s)
            unique.append(s)

    cases = []
    for s in unique:
        case = {"text": s, "ids": tok["smollm"].encode(s).ids}
        if any(tokens[i] in s for i in range(len(tokens)) if types[i] == 3):
            case["ids_no_special"] = plain.encode(s).ids
        case["pre"] = {}
        case["pre_ids"] = {}
        for name in ("gpt2", "llama3", "qwen2"):
            case["pre"][name] = [piece for piece, _ in split[name].pre_tokenize_str(s)]
            case["pre_ids"][name] = tok[name].encode(s).ids
        assert tok["smollm"].decode(case["ids"], skip_special_tokens=False) == s, s
        cases.append(case)

    doc = {
        "format_version": FORMAT_VERSION,
        "generator": "Tests/TokenizationTests/Fixtures/make_goldens.py",
        "oracle": "HF tokenizers BPE from smollm2-vocab.gguf; pre-tokenizers as llama.cpp src/llama-vocab.cpp",
        "note": "pre: raw-text splits of the special-token-free text by each regex set (special tokens NOT split out)",
        "cases": cases,
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(cases)} cases, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
