"""Structured output end to end: `response_format` json_schema with the real `openai` client against the
real server and the default model. Every reply to a fixed set of 20 schemas, greedy and sampled, is JSON
valid against its schema (checked by Python's jsonschema, a validator tally does not share code with).

    TALLY_BIN=.build/debug/tally python3 -m pytest -q Tests/EndToEnd/test_structured_output.py
"""
import json
import signal
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import openai
import pytest

from tally_e2e import MODEL_NAME, start_server


def obj(properties, required=None):
    """An object schema in OpenAI's strict form unless `required` names fewer properties."""
    return {"type": "object", "properties": properties, "required": list(properties) if required is None else required,
            "additionalProperties": False}


def text(n):
    return {"type": "string", "maxLength": n}


# (name, prompt, schema, strict)
SCHEMAS = [
    ("person", "Describe a fictional person.", obj({"name": text(40), "age": {"type": "integer"}, "city": text(30)}), True),
    ("weather", "Report the weather in Paris.", obj({"city": text(30), "temperature_c": {"type": "number"},
                                                     "conditions": {"enum": ["sunny", "cloudy", "rain", "snow"]},
                                                     "humidity": {"type": "integer"}}), True),
    ("book", "Recommend a book.", obj({"title": text(60), "author": text(40), "year": {"type": "integer"},
                                       "genres": {"type": "array", "items": text(20), "minItems": 1, "maxItems": 3}}), True),
    ("sentiment", "Classify the sentiment of: I love this phone!",
     obj({"label": {"enum": ["positive", "negative", "neutral"]}, "confidence": {"type": "number"}}), True),
    ("todo", "Write a short todo list for a Saturday.",
     obj({"items": {"type": "array", "maxItems": 4, "items": obj({"task": text(40), "done": {"type": "boolean"}})}}), True),
    ("address", "Give the address of a museum.", obj({"street": text(50), "city": text(30), "zip": text(10),
                                                      "country": {"enum": ["France", "Germany", "Italy", "Spain", "UK", "USA"]}}), True),
    ("product", "Describe a product for sale.", obj({"name": text(40), "price": {"type": "number"}, "in_stock": {"type": "boolean"},
                                                     "tags": {"type": "array", "items": text(15), "maxItems": 3}}), True),
    ("outcome", "Did the upload succeed? Answer with the outcome.",
     obj({"result": {"anyOf": [obj({"kind": {"const": "error"}, "message": text(60)}),
                               obj({"kind": {"const": "ok"}, "bytes": {"type": "integer"}})]}}), True),
    ("nullable", "Give a user's nickname and age if known.",
     obj({"nickname": {"type": ["string", "null"], "maxLength": 20}, "age": {"type": ["integer", "null"]}}), True),
    # References ($defs); a recursive schema is covered by StructuredOutputTests (the small model, asked
    # for a tree, nests until max_tokens, as any model may: the grammar bounds depth, not length).
    ("family", "Show a parent and their children.",
     {"$defs": {"person": obj({"name": text(20), "age": {"type": "integer"}})},
      **obj({"parent": {"$ref": "#/$defs/person"}, "children": {"type": "array", "maxItems": 3, "items": {"$ref": "#/$defs/person"}}})}, True),
    ("shirt", "Pick a shirt colour and size.", obj({"color": {"enum": ["red", "green", "blue"]}, "size": {"enum": ["S", "M", "L", "XL"]}}), True),
    ("report", "Summarise today's news in one line.", obj({"version": {"const": 1}, "kind": {"const": "report"}, "summary": text(80)}), True),
    ("math", "What is 12 times 7?", obj({"expression": text(40), "result": {"type": "number"}}), True),
    ("event", "Plan a team meeting.", obj({"title": text(40), "date": text(10),
                                           "attendees": {"type": "array", "items": text(30), "minItems": 1, "maxItems": 3}}), True),
    ("optional", "Describe a pet; the nickname is optional.",
     obj({"species": text(20), "nickname": text(20), "legs": {"type": "integer"}}, required=["species", "legs"]), False),
    ("scores", "Give three players' scores.", obj({"scores": {"type": "object", "additionalProperties": {"type": "integer"}},
                                                    "winner": text(20)}, required=["scores", "winner"]), False),
    ("profile", "Create a user profile.", obj({"user": obj({"id": {"type": "integer"},
                                                            "profile": obj({"bio": text(60), "verified": {"type": "boolean"}})})}), True),
    ("stats", "List some measurements and their mean.",
     obj({"values": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 5}, "mean": {"type": "number"}}), True),
    ("quiz", "Ask a true or false question and answer it.", obj({"question": text(80), "answer": {"type": "boolean"},
                                                                 "explanation": text(100)}), True),
    ("recipe", "Give a simple pancake recipe.", obj({"name": text(30), "servings": {"type": "integer"},
                                                     "ingredients": {"type": "array", "maxItems": 5,
                                                                     "items": obj({"item": text(30), "grams": {"type": "number"}})}}), True),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    base, proc = start_server("--db", str(tmp_path_factory.mktemp("usage") / "usage.db"))
    yield openai.OpenAI(base_url=base + "/v1", api_key="unused", timeout=300, max_retries=0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def ask(client, case, temperature, seed):
    name, prompt, schema, strict = case
    r = client.chat.completions.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": prompt + " Answer in JSON."}], max_tokens=400,
        temperature=temperature, seed=seed,
        response_format={"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}})
    return name, schema, r.choices[0].message.content, r.choices[0].finish_reason


def test_the_20_schemas_are_always_answered_with_valid_json(client):
    assert len(SCHEMAS) >= 20
    jobs = [(case, 0.0, 0) for case in SCHEMAS] + [(case, 0.8, i + 1) for i, case in enumerate(SCHEMAS)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda job: ask(client, *job), jobs))
    failed = [(name, finish, content) for name, _, content, finish in replies if finish != "stop"]
    assert not failed, failed
    for name, schema, content, finish in replies:
        jsonschema.validate(json.loads(content), schema)


def test_streamed_replies_are_the_same_valid_json(client):
    name, prompt, schema, strict = SCHEMAS[1]
    fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}
    messages = [{"role": "user", "content": prompt}]
    whole = client.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=200, temperature=0, response_format=fmt)
    chunks = client.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=200, temperature=0,
                                            response_format=fmt, stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    jsonschema.validate(json.loads(streamed), schema)


def test_a_schema_the_server_cannot_enforce_is_refused(client):
    schema = obj({"email": {"type": "string", "format": "email"}})
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": "hi"}], max_tokens=5,
                                       response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert e.value.body["param"] == "response_format.json_schema.schema" and "format" in e.value.body["message"]


TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "The current weather in a city",
                                      "parameters": obj({"city": text(40), "unit": {"enum": ["celsius", "fahrenheit"]}})}},
    {"type": "function", "function": {"name": "add", "description": "Add two numbers",
                                      "parameters": obj({"a": {"type": "number"}, "b": {"type": "number"}})}},
    {"type": "function", "function": {"name": "search", "description": "Search the web",
                                      "parameters": {"type": "object", "properties": {"query": text(60), "limit": {"type": "integer"}},
                                                     "required": ["query"]}}},
]
QUESTIONS = ["What's the weather in Paris?", "What is 2 plus 3?", "Find recipes for pancakes.", "Is it raining in Oslo?"]


def check_call(call):
    tool = next(t for t in TOOLS if t["function"]["name"] == call.function.name)
    jsonschema.validate(json.loads(call.function.arguments), tool["function"]["parameters"])
    assert call.type == "function" and call.id.startswith("call_")


def test_required_and_named_tool_calls_are_valid_calls(client):
    jobs = [(q, "required", t, s) for q in QUESTIONS for t, s in [(0.0, 0), (0.8, 7)]]
    jobs += [(q, {"type": "function", "function": {"name": "add"}}, 0.8, i) for i, q in enumerate(QUESTIONS)]

    def call(job):
        question, choice, temperature, seed = job
        return choice, client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": question}], tools=TOOLS,
                                                      tool_choice=choice, max_tokens=200, temperature=temperature, seed=seed)
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(call, jobs))
    for choice, r in replies:
        message = r.choices[0].message
        assert r.choices[0].finish_reason == "tool_calls" and message.content is None, r
        assert len(message.tool_calls) == 1
        check_call(message.tool_calls[0])
        if isinstance(choice, dict):
            assert message.tool_calls[0].function.name == "add"


def test_a_streamed_tool_call_arrives_whole(client):
    kwargs = dict(model=MODEL_NAME, messages=[{"role": "user", "content": QUESTIONS[0]}], tools=TOOLS, tool_choice="required",
                  max_tokens=200, temperature=0)
    whole = client.chat.completions.create(**kwargs).choices[0].message.tool_calls[0]
    chunks = list(client.chat.completions.create(**kwargs, stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(calls) == 1 and calls[0].index == 0
    assert (calls[0].function.name, calls[0].function.arguments) == (whole.function.name, whole.function.arguments)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ""


def test_a_conversation_goes_on_after_a_tool_result(client):
    messages = [{"role": "user", "content": QUESTIONS[0]},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
                    "name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "celsius"})}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"temperature": 21, "sky": "clear"})}]
    # auto: the model answers in text or calls again; either is well formed.
    for temperature, seed in [(0.0, 0), (0.9, 3), (0.9, 4)]:
        r = client.chat.completions.create(model=MODEL_NAME, messages=messages, tools=TOOLS, max_tokens=60,
                                           temperature=temperature, seed=seed)
        choice = r.choices[0]
        if choice.finish_reason == "tool_calls":
            check_call(choice.message.tool_calls[0])
        else:
            assert choice.finish_reason in ("stop", "length") and choice.message.tool_calls is None and choice.message.content
    # none: tools offered but never called.
    r = client.chat.completions.create(model=MODEL_NAME, messages=messages, tools=TOOLS, tool_choice="none", max_tokens=20, temperature=0)
    assert r.choices[0].message.tool_calls is None
