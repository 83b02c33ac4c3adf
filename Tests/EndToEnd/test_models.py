"""Serving a model that is not SmolLM2: a tiny random-weight Qwen2.5-shaped GGUF with F32 matrices (from
Tests/ModelRuntimeTests/Fixtures/arch) is converted to Q8_0 beside itself on the first start, reused on the
second, and answers the openai client; an architecture tally does not run is refused by name.

    TALLY_BIN=.build/debug/tally python3 -m pytest -q Tests/EndToEnd/test_models.py
"""
import json
import os
import shutil
import signal
import subprocess

import openai

from tally_e2e import BIN, ROOT, free_port, start_server

ARCH = os.path.join(ROOT, "Tests/ModelRuntimeTests/Fixtures/arch")


def serve(model):
    return start_server("--no-metering", model=model)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    return proc.stdout.read()


def test_a_qwen2_file_of_f32_matrices_is_converted_once_and_served(tmp_path):
    model = str(tmp_path / "qwen2-tiny.gguf")
    shutil.copy(os.path.join(ARCH, "qwen2.gguf"), model)
    texts = []
    for start in range(2):
        base, proc = serve(model)
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=60, max_retries=0)
        assert [m.id for m in client.models.list().data] == ["qwen2-tiny"]
        completion = client.completions.create(model="qwen2-tiny", prompt="Hello", max_tokens=8, temperature=0,
                                               extra_body={"ignore_eos": True})
        assert completion.usage.completion_tokens == 8
        texts.append(completion.choices[0].text)
        log = stop(proc)
        assert ("converting" if start == 0 else "using") in log, log
    assert os.path.exists(model + ".tally-q8_0.gguf")
    assert texts[0] == texts[1]  # the same weights both times


def test_an_architecture_tally_does_not_run_is_refused_by_name(tmp_path):
    model = tmp_path / "mamba.gguf"
    data = bytearray(open(os.path.join(ARCH, "qwen2.gguf"), "rb").read())
    at = data.find(b"qwen2")  # general.architecture's value comes first in the metadata
    data[at:at + 5] = b"mamba"
    model.write_bytes(bytes(data))
    p = subprocess.run([BIN, "serve", "--model", str(model), "--port", str(free_port()), "--no-metering"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "'mamba' is not supported" in p.stderr and "qwen3" in p.stderr, p.stderr


def test_tally_list_shows_each_model_with_its_architecture_parameters_type_and_size(tmp_path):
    for name in ["qwen2", "qwen3", "smollm3"]:
        shutil.copy(os.path.join(ARCH, name + ".gguf"), tmp_path / (name + ".gguf"))
    (tmp_path / "broken.gguf").write_bytes(b"GGUF but not really")
    p = subprocess.run([BIN, "list", "--models-dir", str(tmp_path), "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["file"] for r in rows] == ["broken.gguf", "qwen2.gguf", "qwen3.gguf", "smollm3.gguf"]
    assert rows[0]["error"] == "not a readable GGUF"
    assert [r["architecture"] for r in rows[1:]] == ["qwen2", "qwen3", "smollm3"]
    assert all(r["type"] == "F32" and r["parameters"] > 10_000 for r in rows[1:])
    assert rows[1]["bytes"] == os.path.getsize(tmp_path / "qwen2.gguf")


def test_the_models_folder_and_catalog_do_not_depend_on_the_working_directory(tmp_path):
    """Run from an empty folder, without $TALLY_MODELS: the checkout's models/ is still the folder (the
    default model is found there), catalog names resolve, and an unknown name is refused with the names."""
    env = {k: v for k, v in os.environ.items() if k != "TALLY_MODELS"}
    run = lambda *args: subprocess.run([os.path.abspath(BIN), *args], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    listed = run("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert any(json.loads(line)["file"] == "SmolLM2-135M-Instruct-Q8_0.gguf" for line in listed.stdout.splitlines())
    catalog = run("pull", "--list")
    assert catalog.returncode == 0 and "smollm2-135m-instruct (default)" in catalog.stdout and "qwen2.5-0.5b-instruct " in catalog.stdout
    by_name = run("inspect", "smollm2-135m-instruct")
    assert by_name.returncode == 0 and "llama" in by_name.stdout, by_name.stderr
    unknown = run("inspect", "no-such-model")
    assert unknown.returncode != 0 and "qwen3-0.6b" in unknown.stderr
    assert os.listdir(tmp_path) == []  # nothing was written where the command ran
