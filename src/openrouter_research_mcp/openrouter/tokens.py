"""How many tokens a text can be before any tokenizer has seen it: the bound every reservation uses.

Each model counts with its own tokenizer, which we cannot run. The one count no tokenizer exceeds is the text's
length in UTF-8 bytes: byte-level BPE (GPT, Llama 3, Qwen, ...) and SentencePiece with byte fallback (Gemma,
Mistral, ...) never yield more tokens than bytes. Rules per script undercount real tokenizers on text they have
never merged (random letters, base64, rare scripts: up to three times), so `token_bound` is the UTF-8 length:
one token per ASCII character, two or three per accented, Greek, Cyrillic, Arabic, CJK or Hangul character, four
per emoji. On English prose that reserves about four times what is billed; the difference is released when the
call settles at its real usage.

Every message adds `MESSAGE_FRAMING` tokens for its role and separators. `token_estimate` is the friendlier likely
count shown to people and used to refuse a prompt that surely cannot fit a model; reservations use `token_bound`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MESSAGE_FRAMING",
    "REREAD",
    "messages_bound",
    "messages_estimate",
    "text_of",
    "token_bound",
    "token_estimate",
    "unseen_tokens",
]

MESSAGE_FRAMING = 8
# An answer of n tokens from one model, to be read by another (a judge, a writer), before it exists: tokenizers
# differ, so it counts double; when the call is made its reservation bounds the real text.
REREAD = 2

_ASCII = bytes(range(128))
# UTF-8 lead bytes: two-byte characters start with C2-DF, three-byte ones with E0-EF, four-byte ones with F0-F4.
_LEAD_2 = bytes(range(0xC2, 0xE0))
_LEAD_3 = bytes(range(0xE0, 0xF0))
_LEAD_4 = bytes(range(0xF0, 0xF5))


def _count(data: bytes, these: bytes) -> int:
    """How many bytes of `data` are among `these` (counted in C, by deleting them)."""
    return len(data) - len(data.translate(None, these))


def token_bound(text: str) -> int:
    """The most tokens `text` can be for any model: its length in UTF-8 bytes (see the module docstring)."""
    return len(text.encode("utf-8", "surrogatepass"))


def token_estimate(text: str) -> int:
    """A likely token count: a quarter of a token per ASCII character, one per other character, two per
    character outside the Basic Multilingual Plane (emoji)."""
    if not text:
        return 0
    data = text.encode("utf-8", "surrogatepass")
    ascii_chars = _count(data, _ASCII)
    return math.ceil(ascii_chars / 4) + _count(data, _LEAD_2) + _count(data, _LEAD_3) + 2 * _count(data, _LEAD_4)


def unseen_tokens(chars: int) -> int:
    """Tokens for `chars` characters of text not written yet (pages to be read, answers to come), for a plan's
    estimate: one per character, as `token_bound` counts the ASCII text they mostly are, so a plan agrees with the
    reservations its calls will make (each call's reservation bounds its real text)."""
    return chars


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return "" if content is None else str(content)


def messages_bound(messages: Iterable[Mapping[str, Any]]) -> int:
    """`token_bound` of every message's text, plus its framing (attachments are counted separately)."""
    return sum(token_bound(text_of(m.get("content"))) + MESSAGE_FRAMING for m in messages)


def messages_estimate(messages: Iterable[Mapping[str, Any]]) -> int:
    """`token_estimate` of every message's text, plus its framing."""
    return sum(token_estimate(text_of(m.get("content"))) + MESSAGE_FRAMING for m in messages)
