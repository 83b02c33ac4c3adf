"""The batch API end to end with the real `openai` client: upload a JSONL file, create a batch, kill the
server (SIGKILL) while the batch runs, start it again on the same folders, and collect the output. Every
line is answered exactly once, as its endpoint answers the same request directly, and metered (a usage
record per line, tagged "batch", the batch's id as its session).

    TALLY_BIN=.build/debug/tally python3 -m pytest -q Tests/EndToEnd/test_batches.py
"""
import json
import signal
import sqlite3
import time

import openai

from tally_e2e import MODEL_NAME, start_server

QUESTIONS = ["Name a colour.", "What is 2+2?", "Say hello.", "Name a fruit.", "Count to five.", "Name a city.",
             "What is the sun?", "Name an animal.", "Say goodbye.", "Name a planet."]


def body(question):
    return {"model": MODEL_NAME, "messages": [{"role": "user", "content": question}], "max_tokens": 24, "temperature": 0}


def wait(client, batch_id, until, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        batch = client.batches.retrieve(batch_id)
        if until(batch):
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not get there: {batch}")


def test_a_batch_survives_a_crash_and_answers_each_line_once(tmp_path):
    flags = ["--db", str(tmp_path / "usage.db"), "--batch-dir", str(tmp_path / "batches"), "--batch-slots", "2"]
    base, proc = start_server(*flags)
    client = openai.OpenAI(base_url=base + "/v1", api_key="unused", timeout=60, max_retries=0)
    lines = "\n".join(json.dumps({"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions", "body": body(q)})
                      for i, q in enumerate(QUESTIONS))
    upload = client.files.create(file=("questions.jsonl", lines.encode()), purpose="batch")
    assert upload.purpose == "batch" and upload.bytes == len(lines.encode())
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h",
                                  metadata={"job": "e2e"})
    assert batch.status == "validating" and batch.metadata == {"job": "e2e"}

    # Some lines done, some not: the server dies without warning.
    wait(client, batch.id, lambda b: b.request_counts and b.request_counts.completed >= 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    base, proc = start_server(*flags)
    try:
        client = openai.OpenAI(base_url=base + "/v1", api_key="unused", timeout=60, max_retries=0)
        done = wait(client, batch.id, lambda b: b.status not in ("validating", "in_progress", "finalizing"))
        assert done.status == "completed", done
        assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (10, 10, 0)
        assert done.error_file_id is None
        output = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
        assert sorted(o["custom_id"] for o in output) == sorted(f"q{i}" for i in range(10))
        by_id = {o["custom_id"]: o for o in output}
        # Each answer is what the endpoint gives the same request directly (greedy).
        for i in (0, 4, 9):
            direct = client.chat.completions.create(**body(QUESTIONS[i]))
            answer = by_id[f"q{i}"]["response"]
            assert answer["status_code"] == 200 and answer["body"]["object"] == "chat.completion"
            assert answer["body"]["choices"][0]["message"]["content"] == direct.choices[0].message.content
            assert answer["body"]["usage"]["completion_tokens"] == direct.usage.completion_tokens
        # The batch's usage sums its lines, priced at the APIs' batch tier.
        assert done.usage.output_tokens == sum(o["response"]["body"]["usage"]["completion_tokens"] for o in output)
        cost = done.usage.model_extra["cost"] if done.usage.model_extra else done.usage.cost
        assert cost["local"] > 0 and all(v > 0 for v in cost["api_batch_equivalent"].values())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    # Every line that ran has a usage record (the killed run's too: at least one per line).
    con = sqlite3.connect(tmp_path / "usage.db")
    rows = con.execute("SELECT tags FROM usage WHERE session = ?", (batch.id,)).fetchall()
    assert len(rows) >= 10 and all("batch" in r[0] for r in rows)


def test_an_interactive_request_is_served_while_a_batch_runs(tmp_path):
    base, proc = start_server("--no-metering", "--batch-dir", str(tmp_path / "batches"))
    try:
        client = openai.OpenAI(base_url=base + "/v1", api_key="unused", timeout=60, max_retries=0)
        lines = "\n".join(json.dumps({"custom_id": f"q{i}", "method": "POST", "url": "/v1/completions",
                                      "body": {"prompt": "Once upon a time", "max_tokens": 64, "ignore_eos": True}})
                          for i in range(6))
        upload = client.files.create(file=("story.jsonl", lines.encode()), purpose="batch")
        batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/completions", completion_window="24h")
        wait(client, batch.id, lambda b: b.status == "in_progress")
        r = client.completions.create(model=MODEL_NAME, prompt="The capital of France is", max_tokens=8, temperature=0)
        assert r.choices[0].text.startswith(" Paris")
        cancelled = client.batches.cancel(batch.id)
        assert cancelled.status in ("cancelling", "completed")
        done = wait(client, batch.id, lambda b: b.status in ("cancelled", "completed"))
        assert done.request_counts.completed <= 6
        # Another tenant's view is empty without keys too: the listing holds just this batch.
        assert [b.id for b in client.batches.list()] == [batch.id]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
