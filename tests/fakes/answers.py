"""The answer a fake model gives: its text or JSON, reasoning, refusal, web citations, usage and cost.

- Text: `"[<model>] Answer: <last user message>"` (or `text_answers[model]`), then `[saw 1 image, 1 pdf]` when parts
  were attached, then for each page read its first sentence and `[n]`, then `[n]` for each search result unread.
- JSON (`response_format`): valid against the request's `json_schema` (or `structured_answers[name]`). A judge
  request (schema name `"judgement"`) gets `{"score": quality[<judged>], "reason": ...}`, the judged model being the
  first `model="<id>"` in the prompt. Faults `bad_json` (trailing comma, no closing bracket; repaired on
  non-streamed requests with the `response-healing` plugin) and `wrong_json` (a required property missing).
- Refusal (`refusals[model]`): `content: null`, `refusal: <text>`.
- Reasoning: `reasoning` text, or only `reasoning_details` (a `reasoning.summary`) for `reasoning_details_models`.

Tokens are about 4 characters each; the text of pages read counts as prompt. Cost is computed here, independently
of the package under test: tokens at the catalog's prices for the prompt size (the largest `overrides` tier
reached, then `discount`), the request fee and images; plus, unchanged by BYOK, the web fees (the fake's own
rule) and OCR. With BYOK OpenRouter charges 5% of the provider's charge, which is reported as
`cost_details.upstream_inference_cost`.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from .common import as_dict, base_id, dicts, last_prompt, provider_name, text_of, tokens_of, within_tokens
from .parts import attachment_note, attachments
from .schema_fill import fill
from .web import Source, WebWork, run_web

if TYPE_CHECKING:
    from .openrouter import FakeOpenRouter

__all__ = ["BYOK_SHARE", "DEFAULT_QUALITY", "OCR_FEE_PER_PDF", "compose"]

BYOK_SHARE = 0.05  # what OpenRouter charges a BYOK call, as a share of the provider's charge
OCR_FEE_PER_PDF = 0.002  # mistral-ocr: $2 per 1,000 pages; the fake takes every PDF as one page
DEFAULT_QUALITY = 5  # a judge's score for a model missing from `quality`
_JSON_FORMATS = ("json_schema", "json_object")
_JUDGED = re.compile(r'model="([^"]+)"')


def compose(
    fake: FakeOpenRouter, body: dict[str, Any], model: str, generation_id: str | None = None, kind: str = "ok"
) -> dict[str, Any]:
    """The completion body `model` gives for `body`; `kind` "bad_json"/"wrong_json" spoils a JSON answer."""
    prompt, all_text = last_prompt(body), " ".join(text_of(m.get("content")) for m in dicts(body.get("messages")))
    options = as_dict(body.get("reasoning"))
    thinks = bool(body.get("reasoning") or body.get("include_reasoning") or model.endswith(":thinking"))
    thinks = thinks and options.get("enabled") is not False and options.get("effort") != "none"
    refusal = fake.refusals.get(model, fake.refusals.get(base_id(model)))
    structured = as_dict(body.get("response_format")).get("type") in _JSON_FORMATS
    counts, web, finish = attachments(body), WebWork(), "stop"
    annotations: list[dict[str, Any]] = []
    if refusal is not None:
        content = refusal
    else:
        content = _content(fake, body, model, kind)
        if not structured and (note := attachment_note(counts)):
            content = f"{content} {note}"
        limit = body.get("max_tokens", body.get("max_completion_tokens"))
        if isinstance(limit, int) and limit > 0 and tokens_of(content) + 1 > limit:
            content, finish = within_tokens(content, limit - 1), "length"  # so completion_tokens <= max_tokens
        web = run_web(fake, body, model)
        content, annotations = _cite(content, web.sources, structured)
    reasoning_tokens = 16 + len(all_text) // 8 if thinks else 0
    # The pages read are fed to the model: their text is prompt tokens, as upstream (budgets must count them).
    read = sum(tokens_of(source.content) for source in web.sources if source.quote is not None)
    prompt_tokens = tokens_of(all_text) + read + 1
    completion_tokens = tokens_of(content) + 1 + reasoning_tokens
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }
    if web.plugin_searches:  # the deprecated plugin and :online report the older field
        usage["server_tool_use"] = {"web_search_requests": web.plugin_searches}
    if web.server_tools:
        calls = web.searches + web.fetches
        usage["server_tool_use_details"] = {
            "web_search_requests": web.searches,
            "tool_calls_requested": calls,
            "tool_calls_executed": calls,
        }
    if fake.include_cost:
        charge = _provider_charge(fake, model, prompt_tokens, completion_tokens, reasoning_tokens, counts["image"])
        fees = web.fee + _ocr_fee(fake, body, model, counts)
        usage["cost"] = round((charge * BYOK_SHARE if fake.byok else charge) + fees, 12)
        usage["is_byok"] = fake.byok
        usage["cost_details"] = {"upstream_inference_cost": round(charge, 12) if fake.byok else None}
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if refusal is not None else content,
        "refusal": refusal,
        "reasoning": None,
    }
    if thinks and not options.get("exclude"):
        summary = f"Thinking about: {prompt[:80]}"
        if fake.reasoning_details_models.isdisjoint({model, base_id(model)}):
            message["reasoning"] = summary
        else:  # this model sends its thinking only in the structured form
            detail = {"type": "reasoning.summary", "summary": summary, "format": "anthropic-claude-v1", "index": 0}
            message["reasoning_details"] = [detail]
    return {
        "id": generation_id or f"gen-{next(fake._ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "provider": provider_name(model),
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "finish_reason": finish,
                "native_finish_reason": finish,
                "message": message | ({"annotations": annotations} if annotations else {}),
            }
        ],
        "usage": usage,
    }


def _content(fake: FakeOpenRouter, body: dict[str, Any], model: str, kind: str) -> str:
    prompt, response_format = last_prompt(body), as_dict(body.get("response_format"))
    spec, schema = as_dict(response_format.get("json_schema")), None
    if response_format.get("type") == "json_schema":
        name, schema = spec.get("name"), spec.get("schema")
        if name in fake.structured_answers:
            value = fake.structured_answers[str(name)]
        elif name == "judgement":
            value = _judgement(fake, body, schema)
        elif name == "citation_check":
            value = _citation_check(fake, body)
        else:
            value = fill(schema)
    elif response_format.get("type") == "json_object":
        value = {"model": model, "answer": prompt[:200]}
    else:
        if model in fake.text_answers:
            return fake.text_answers[model]
        system = next((text_of(m.get("content")) for m in dicts(body.get("messages")) if m.get("role") == "system"), "")
        if system.startswith("You write a research report"):
            return _report(fake, body)
        return f"[{model}] Answer: {prompt[:200]}"
    if kind == "wrong_json":
        required = [str(n) for n in as_dict(schema).get("required") or []]
        value = {k: v for k, v in value.items() if k != required[0]} if required and isinstance(value, dict) else {}
    text = json.dumps(value)
    healing = any(p.get("id") == "response-healing" for p in dicts(body.get("plugins")))
    if kind == "bad_json" and not (healing and not body.get("stream")):  # healing works on whole bodies only
        text = text[:-1] + "," if text.endswith(("}", "]")) else text + ","
    return text


_SOURCE = re.compile(r'<source n="(\d+)"[^>]*>\n(.*?)\n</source>', re.DOTALL)
_SOURCE_URL = re.compile(r'<source n="(\d+)"[^>]* url="([^"]+)"')
_SOURCE_REF = re.compile(r"\{source:([^}]+)\}")  # in `writer_extra`: the number of the source with this URL
_ITEM = re.compile(r'<claim id="(\d+)">\n(.*?)\n</claim>\n<evidence id="\d+">\n(.*?)\n</evidence>', re.DOTALL)
_WORD = re.compile(r"[^\W_]{4,}")


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s", " ".join(text.split()), maxsplit=1)[0]


def quote_of(sentence: str, words: int = 10) -> str:
    """The words a fake model quotes from a sentence: its first `words`, without double quotes."""
    return " ".join(sentence.replace('"', "'").split()[:words]).rstrip(".,;:")


def _report(fake: FakeOpenRouter, body: dict[str, Any]) -> str:
    """A fake writer: one finding per source given, each the source's first sentence cited with a true quote (the
    whole sentence when it is short, so code alone may find it supported; else its first words), and `writer_extra`
    (a test's own claims and citations) after them, where `{source:<url>}` becomes that source's number (0 when the
    writer was not given it)."""
    prompt = " ".join(text_of(m.get("content")) for m in dicts(body.get("messages")) if m.get("role") == "user")
    lines = ["## Summary", "", "The sources below answer the question.", "", "## Findings", ""]
    for n, text in _SOURCE.findall(prompt)[:8]:
        sentence = _first_sentence(text)
        words = len(sentence.split())
        quote = quote_of(sentence, words if words <= 25 and len(sentence) <= 300 else 10)
        lines.append(f'- {sentence.rstrip(".")} [{n} "{quote}"].')
    if fake.writer_extra:
        numbers = {url: n for n, url in _SOURCE_URL.findall(prompt)}
        lines += ["", _SOURCE_REF.sub(lambda m: numbers.get(m.group(1), "0"), fake.writer_extra)]
    lines += ["", "## Where sources disagree", "", "They agree.", "", "## Open questions", "", "None noted."]
    return "\n".join(lines)


_VERIFY_ITEM = re.compile(
    r'<claim id="(\d+)">\n(.*?)\n</claim>(?:\n<quote id="\d+">\n.*?\n</quote>)?\n<passage id="\d+">\n(.*?)\n</passage>',
    re.DOTALL,
)
_FIGURE = re.compile(r"\d+(?:[.,]\d+)?")


def claim_key(claim: str) -> str:
    """How the fake verifier looks a claim up in `verdicts`: its words, lower-cased."""
    return " ".join(re.findall(r"\w+", claim.lower()))


def _citation_check(fake: FakeOpenRouter, body: dict[str, Any]) -> dict[str, Any]:
    """A fake verifier: the test's verdict for a claim it knows (`verdicts`), else supported when nearly all the
    claim's words and every figure are in the passage, partly when most words are, unsupported otherwise (and always
    when a figure of the claim is not in the passage)."""
    prompt = last_prompt(body)
    verdicts = []
    for item_id, claim, passage in _VERIFY_ITEM.findall(prompt):
        known = fake.verdicts.get(claim_key(claim))
        if fake.verifier_says is not None:
            verdict = fake.verifier_says
        elif known is not None:
            verdict = known
        else:
            words = set(_WORD.findall(claim.lower()))
            found = len(words & set(_WORD.findall(passage.lower()))) / max(len(words), 1)
            figures = set(_FIGURE.findall(claim)) <= set(_FIGURE.findall(passage))
            verdict = (
                "unsupported"
                if not figures
                else "supported"
                if found >= 0.75
                else "partly"
                if found >= 0.6
                else ("unsupported")
            )
        verdicts.append({"id": int(item_id), "verdict": verdict, "reason": f"The fake verifier finds it {verdict}."})
    return {"verdicts": verdicts}


def _judgement(fake: FakeOpenRouter, body: dict[str, Any], schema: Any) -> Any:
    found = _JUDGED.search(last_prompt(body)) or _JUDGED.search(
        " ".join(text_of(m.get("content")) for m in dicts(body.get("messages")) if m.get("role") == "user")
    )
    judged = found.group(1) if found else None
    score = fake.quality.get(judged, DEFAULT_QUALITY) if judged else DEFAULT_QUALITY
    filled = fill(schema)
    base = filled if isinstance(filled, dict) else {}
    return base | {"score": score, "reason": f"The fake judge rates the answer of {judged or 'the model'} {score}/10."}


def _cite(content: str, sources: list[Source], structured: bool) -> tuple[str, list[dict[str, Any]]]:
    """The text with each page read quoted and every source marked `[n]`, and the url_citation annotations."""
    annotations: list[dict[str, Any]] = []
    for i, source in enumerate(sources, 1):
        start = 0  # JSON answers get no markers: each citation spans the whole answer
        if not structured:
            marker = f'[{i} "{quote_of(source.quote)}"]' if source.quote else f"[{i}]"
            content = f"{content} {source.quote}" if source.quote else content
            start, content = len(content) + 1, f"{content} {marker}"
        annotations.append(
            {
                "type": "url_citation",
                "url_citation": {
                    "url": source.url,
                    "title": source.title,
                    "content": source.content,
                    "start_index": start,
                    "end_index": len(content),
                },
            }
        )
    return content, annotations


def _number(value: Any) -> float:
    try:
        return max(float(value), 0.0)  # "-1" (priced at routing) counts as free here
    except (TypeError, ValueError):
        return 0.0


def _prices(fake: FakeOpenRouter, model: str, prompt_tokens: int) -> dict[str, float]:
    """Per-token and per-unit prices for a prompt of `prompt_tokens`: the largest tier reached, less the discount."""
    pricing = as_dict((fake._entry(model) or {}).get("pricing"))
    if model.endswith(":free"):
        return {}
    prices = {key: _number(value) for key, value in pricing.items() if key not in ("overrides", "discount")}
    tiers = [t for t in dicts(pricing.get("overrides")) if prompt_tokens >= _number(t.get("min_prompt_tokens"))]
    if tiers:
        tier = max(tiers, key=lambda t: _number(t.get("min_prompt_tokens")))
        prices.update({key: _number(value) for key, value in tier.items() if key != "min_prompt_tokens"})
    discount = _number(pricing.get("discount"))
    keep = 1.0 - discount if discount < 1 else 1.0
    return {key: value * keep for key, value in prices.items()}


def _provider_charge(
    fake: FakeOpenRouter, model: str, prompt_tokens: int, completion_tokens: int, reasoning_tokens: int, images: int
) -> float:
    price = _prices(fake, model, prompt_tokens)
    rate = price.get
    return (
        prompt_tokens * rate("prompt", 0.0)
        + (completion_tokens - reasoning_tokens) * rate("completion", 0.0)
        + reasoning_tokens * (rate("internal_reasoning") or rate("completion", 0.0))
        + rate("request", 0.0)
        + images * rate("image", 0.0)
    )


def _ocr_fee(fake: FakeOpenRouter, body: dict[str, Any], model: str, counts: Counter[str]) -> float:
    """The file-parser plugin's charge: mistral-ocr per PDF; pdf-text and native are free. Without an engine the
    model reads natively when it can, else mistral-ocr does."""
    parser = next((p for p in dicts(body.get("plugins")) if p.get("id") == "file-parser"), None)
    if parser is None or not counts["pdf"]:
        return 0.0
    inputs = as_dict((fake._entry(model) or {}).get("architecture")).get("input_modalities") or []
    engine = as_dict(parser.get("pdf")).get("engine") or ("native" if "file" in inputs else "mistral-ocr")
    return OCR_FEE_PER_PDF * counts["pdf"] if engine == "mistral-ocr" else 0.0
