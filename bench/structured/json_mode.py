#!/usr/bin/env python3
"""What constrained output costs in decode speed: the same chat requests with and without
`response_format` (`--format json_object`, JSON mode, or `json_schema`, a schema of strings, numbers, an
enum and an array), one at a time and alternating (A B A B ...), decode tokens per second from each
response's `usage.timings`, medians and their ratio. Also counts how many constrained replies closed
their object and parsed (the rest hit max_tokens).

    python3 bench/structured/json_mode.py --tally .build/release/tally [--format json_schema] [--pairs 12] [--max-tokens 128]

The server it starts listens on 127.0.0.1 without metering and is stopped by its PID.
"""
import argparse, json, os, statistics, sys, urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from served import served  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUESTIONS = [
    "Describe a cat as a JSON object with its name, age and colour.",
    "Give the capital, population and languages of France as JSON.",
    "List three fruits with their colours as a JSON object.",
    "Return a JSON object describing a book: title, author, year and genres.",
]

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["name", "summary", "year", "kind", "tags"],
          "properties": {"name": {"type": "string", "maxLength": 60}, "summary": {"type": "string", "maxLength": 200},
                         "year": {"type": "integer"}, "kind": {"enum": ["animal", "place", "thing", "person"]},
                         "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 4}}}
FORMATS = {"json_object": {"type": "json_object"},
           "json_schema": {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": SCHEMA}}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/release/tally"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models/SmolLM2-135M-Instruct-Q8_0.gguf"))
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--format", choices=["json_object", "json_schema"], default="json_object")
    a = ap.parse_args()
    speeds = {False: [], True: []}
    parsed = 0
    with served(a.tally, a.model, "--threads", str(a.threads), "--no-metering", "--no-prefix-cache", "--log-level", "warning") as (base, _):
        def ask(i, json_mode):
            body = {"messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}], "max_tokens": a.max_tokens,
                    "temperature": 0.8, "seed": i}
            if json_mode:
                body["response_format"] = FORMATS[a.format]
            request = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            return json.loads(urllib.request.urlopen(request, timeout=300).read())

        for i in range(a.pairs):
            for json_mode in ([False, True] if i % 2 == 0 else [True, False]):
                r = ask(i, json_mode)
                speeds[json_mode].append(r["usage"]["timings"]["generated_tokens_per_second"])
                if json_mode and r["choices"][0]["finish_reason"] == "stop":
                    json.loads(r["choices"][0]["message"]["content"])
                    parsed += 1
    plain, constrained = statistics.median(speeds[False]), statistics.median(speeds[True])
    print(f"{a.pairs} pairs, max_tokens {a.max_tokens}, temperature 0.8, {a.threads} threads")
    print(f"decode tokens/s (median): plain {plain:.1f}, {a.format} {constrained:.1f}, ratio {constrained / plain:.2f}")
    print(f"{a.format} replies that closed their object and parsed: {parsed} of {a.pairs}")


if __name__ == "__main__":
    main()
