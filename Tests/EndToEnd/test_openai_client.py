"""End to end: the real `openai` Python client against the real `tally serve` binary on loopback.

    TALLY_BIN=.build/debug/tally python3 -m pytest -q Tests/EndToEnd

Needs the default model (`tally pull`) and `pip install openai pytest`. Every request is bounded (max
tokens, timeouts) and goes to 127.0.0.1 only.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import time
import urllib.request

import openai
import pytest

from tally_e2e import MODEL_NAME, metrics, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base, proc = start_server("--db", str(tmp_path_factory.mktemp("usage") / "usage.db"), "--alias", "smollm")
    yield base, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server[0] + "/v1", api_key="unused", timeout=60, max_retries=0)


def test_models(client):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_NAME]
    # By name or by alias (--alias smollm), one model; any other name is OpenAI's 404 model_not_found.
    assert client.models.retrieve(MODEL_NAME).id == MODEL_NAME
    assert client.models.retrieve("smollm").id == MODEL_NAME
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("gpt-4o")
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="gpt-4o", prompt="hi", max_tokens=1)
    assert e.value.body["code"] == "model_not_found" and e.value.body["param"] == "model"


def test_a_completion_is_created_at_its_request_time(client):
    time.sleep(1.5)  # the server started at least this long ago
    before = time.time()
    r = client.completions.create(model=MODEL_NAME, prompt="Hi", max_tokens=1)
    assert int(before) <= r.created <= time.time() + 1


@pytest.mark.parametrize("endpoint,field,value", [
    ("chat", "logit_bias", {"42": 5}),
    ("chat", "reasoning_effort", "low"),
    ("completions", "suffix", " the end"),
    ("completions", "best_of", 3),
    ("completions", "logit_bias", {"42": -100}),
])
def test_an_unimplemented_parameter_is_refused_by_name(client, endpoint, field, value):
    with pytest.raises(openai.BadRequestError) as e:
        if endpoint == "chat":
            client.chat.completions.create(model=MODEL_NAME, max_tokens=2, messages=[{"role": "user", "content": "hi"}],
                                           extra_body={field: value})
        else:
            client.completions.create(model=MODEL_NAME, prompt="hi", max_tokens=2, extra_body={field: value})
    assert e.value.body["param"] == field and e.value.body["code"] == "unsupported_parameter"


def test_a_parameter_at_its_no_op_value_is_accepted(client):
    r = client.chat.completions.create(model=MODEL_NAME, max_tokens=2, messages=[{"role": "user", "content": "hi"}],
                                       response_format={"type": "text"}, logit_bias={}, store=False)
    assert r.usage.completion_tokens == 2


def test_completion_matches_llama_cpp_greedy(client):
    r = client.completions.create(model="SmolLM2-135M-Instruct-Q8_0", prompt="The capital of France is",
                                  max_tokens=32, temperature=0)
    assert r.choices[0].text == " Paris.\n\nThe answer is: 2018-01-22 12:12:53."
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == 5
    assert r.usage.completion_tokens == 30
    assert r.usage.prompt_tokens_details.cached_tokens == 0


def test_chat_completion(client):
    r = client.chat.completions.create(model="SmolLM2-135M-Instruct-Q8_0", max_tokens=32, temperature=0,
                                       messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content.startswith("L'Étoile, la Cité, la France")
    assert r.choices[0].finish_reason == "length"
    assert r.usage.prompt_tokens == 37
    assert r.usage.completion_tokens == 32


def test_streaming_chat_equals_non_streamed(client):
    messages = [{"role": "user", "content": "Name three colours."}]
    whole = client.chat.completions.create(model="smollm", max_tokens=24, temperature=0, messages=messages)
    chunks = list(client.chat.completions.create(model="smollm", max_tokens=24, temperature=0, messages=messages,
                                                  stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    # The same prompt again: its system prompt and question are now in the prefix cache.
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens > 0


ECHO_PROMPT = "The licensee may copy and distribute verbatim copies of the Program's source code."


def test_echo_with_logprobs_scores_the_prompt(client):
    # What perplexity scorers send: the prompt back with each token's log-probability, nothing generated.
    r = client.completions.create(model="smollm", prompt=ECHO_PROMPT, max_tokens=0, echo=True, logprobs=5)
    choice, lp = r.choices[0], r.choices[0].logprobs
    assert choice.text == ECHO_PROMPT and choice.finish_reason == "length"
    assert r.usage.completion_tokens == 0 and len(lp.tokens) == r.usage.prompt_tokens
    assert "".join(lp.tokens) == ECHO_PROMPT
    assert lp.text_offset == [len("".join(lp.tokens[:i])) for i in range(len(lp.tokens))]
    # The first token has nothing before it; every other is scored, with 5 alternatives, the best first.
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    for token, logprob, top in zip(lp.tokens[1:], lp.token_logprobs[1:], lp.top_logprobs[1:]):
        assert logprob <= 0 and len(top) == 5
        assert max(top.values()) >= logprob - 1e-6
        if token in top:
            assert abs(top[token] - logprob) < 1e-6
    # A well-formed English sentence: most tokens are far from improbable.
    assert sum(lp.token_logprobs[1:]) / (len(lp.tokens) - 1) > -6


def test_echo_logprobs_ignore_the_prefix_cache_and_stream_alike(client):
    first = client.completions.create(model="smollm", prompt=ECHO_PROMPT, max_tokens=0, echo=True, logprobs=1)
    # Now the prompt's blocks are cached; scoring it again recomputes them (a cached token has no logits)
    # and gives the same figures. lm-evaluation-harness's local-completions asks for max_tokens 1.
    again = client.completions.create(model="smollm", prompt=ECHO_PROMPT, max_tokens=1, echo=True, logprobs=1,
                                      temperature=0)
    assert again.usage.prompt_tokens_details.cached_tokens == 0
    n = again.usage.prompt_tokens
    assert again.choices[0].logprobs.token_logprobs[:n] == first.choices[0].logprobs.token_logprobs
    assert len(again.choices[0].logprobs.tokens) == n + again.usage.completion_tokens
    assert again.choices[0].text.startswith(ECHO_PROMPT)
    if again.usage.completion_tokens:
        assert again.choices[0].logprobs.text_offset[n] == len(ECHO_PROMPT)
    chunks = list(client.completions.create(model="smollm", prompt=ECHO_PROMPT, max_tokens=1, echo=True, logprobs=1,
                                            temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == again.choices[0].text
    streamed = [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.token_logprobs]
    assert streamed == again.choices[0].logprobs.token_logprobs


def test_echo_logprobs_equal_tally_perplexitys_rows(client, tmp_path):
    # bench/accuracy judges tally through `tally perplexity --logits`; the server's echo must score the same
    # tokens with the same numbers (one prefill of the same 64 tokens either way).
    import array, math
    from tally_e2e import BIN, MODEL
    text = tmp_path / "text.txt"
    text.write_text(open("/usr/share/common-licenses/GPL-3").read()[:2000])
    out = tmp_path / "logits.bin"
    p = subprocess.run([BIN, "perplexity", "--model", MODEL, "--file", str(text), "--context", "64", "--logits", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.startswith("perplexity "), p.stderr
    data = out.read_bytes()
    assert data[:8] == b"tallylgt"
    header = array.array("I", data[8:28])
    version, context, stride, vocab, count = header
    assert (version, context, stride) == (1, 64, 32)
    tokens = array.array("i", data[28:28 + 4 * count]).tolist()
    rows = array.array("f", data[28 + 4 * count:28 + 4 * count + 4 * stride * vocab])
    r = client.completions.create(model="smollm", prompt=tokens[:64], max_tokens=0, echo=True, logprobs=0)
    echoed = r.choices[0].logprobs.token_logprobs
    for i in range(stride):  # row i: position 31 + i, scoring token 32 + i
        row = rows[i * vocab:(i + 1) * vocab]
        top = max(row)
        want = row[tokens[32 + i]] - top - math.log(sum(math.exp(x - top) for x in row))
        assert abs(echoed[32 + i] - want) < 1e-4, (i, echoed[32 + i], want)


def test_embeddings(client):
    # The client asks for base64 by default and decodes it; float gives the same values as JSON numbers.
    texts = ["The cat sat on the mat.", "Stock markets fell sharply today.", "A cat is sitting on a mat."]
    r = client.embeddings.create(model=MODEL_NAME, input=texts)
    assert r.object == "list" and r.model == MODEL_NAME
    assert [d.index for d in r.data] == [0, 1, 2]
    vectors = [d.embedding for d in r.data]
    assert all(len(v) == 576 for v in vectors)  # SmolLM2-135M's embedding length
    assert all(abs(sum(x * x for x in v) - 1) < 1e-4 for v in vectors)
    assert vectors[0] != vectors[1]
    floats = client.embeddings.create(model=MODEL_NAME, input=texts[0], encoding_format="float")
    # JSON numbers are each float32's shortest digits: rounded to float32, the values base64 carried.
    assert [struct.unpack("<f", struct.pack("<f", x))[0] for x in floats.data[0].embedding] == vectors[0]
    assert r.usage.prompt_tokens > 3 * 5 and r.usage.total_tokens == r.usage.prompt_tokens
    cost = r.usage.model_extra["cost"]
    assert cost["local"] > 0
    assert set(cost["api_equivalent"]) == {"openai/text-embedding-3-small", "google/gemini-embedding-001", "voyage/voyage-3.5"}
    small = cost["api_equivalent"]["openai/text-embedding-3-small"]
    assert small["standard"] == pytest.approx(r.usage.prompt_tokens * 0.02 / 1e6)
    assert small["batch"] == pytest.approx(r.usage.prompt_tokens * 0.01 / 1e6)
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model=MODEL_NAME, input="hi", dimensions=64)
    assert e.value.body["param"] == "dimensions"
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model=MODEL_NAME, input=["ok", ""])
    assert e.value.body["param"] == "input[1]"


def test_json_mode_replies_are_json_objects(client):
    # Greedy and sampled, streamed and not: a reply that stops is one JSON object; one cut by max_tokens
    # is a prefix of one (finish_reason "length").
    stopped = 0
    question = [{"role": "user", "content": "Describe a cat as a JSON object with its name, age and colour."}]
    for seed, temperature, stream in [(0, 0.0, False), (1, 0.8, False), (2, 1.0, True), (3, 0.8, True), (4, 1.0, False)]:
        if stream:
            chunks = list(client.chat.completions.create(model=MODEL_NAME, messages=question, max_tokens=160, seed=seed,
                                                         temperature=temperature, response_format={"type": "json_object"},
                                                         stream=True))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason][-1]
        else:
            r = client.chat.completions.create(model=MODEL_NAME, messages=question, max_tokens=160, seed=seed,
                                               temperature=temperature, response_format={"type": "json_object"})
            text, finish = r.choices[0].message.content, r.choices[0].finish_reason
        if finish == "stop":
            stopped += 1
            assert isinstance(json.loads(text), dict), text
        else:
            assert finish == "length", finish
            assert text.lstrip().startswith("{"), text
    assert stopped >= 3


def test_bad_request_gets_an_openai_error(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="smollm", prompt="hi", max_tokens=4, temperature=5)
    assert e.value.body["param"] == "temperature"


def test_disconnect_mid_stream_frees_the_request_and_its_blocks(server):
    base = server[0]
    port = int(base.rsplit(":", 1)[1])
    body = json.dumps({"prompt": "Count to one thousand:", "max_tokens": 400, "stream": True, "ignore_eos": True})
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
    received = b""
    while received.count(b"data: ") < 3:
        chunk = sock.recv(4096)
        assert chunk, "stream ended early"
        received += chunk
    during = metrics(base)
    assert int(during["tally_num_requests_running"]) == 1 and int(during["tally_kv_cache_blocks_used"]) > 0
    sock.close()  # the client goes away mid-stream
    deadline = time.time() + 10
    while time.time() < deadline:
        after = metrics(base)
        if int(after["tally_num_requests_running"]) == 0 and int(after["tally_kv_cache_blocks_used"]) == 0:
            break
        time.sleep(0.05)
    assert int(after["tally_num_requests_running"]) == 0 and int(after["tally_num_requests_waiting"]) == 0
    assert int(after["tally_kv_cache_blocks_used"]) == 0
    assert int(after['tally_request_success_total{finished_reason="abort"}']) >= 1


# Last: it stops the module's server.
def test_sigterm_exits_cleanly(server):
    base, proc = server
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0

