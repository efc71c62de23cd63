"""How many tokens a text can be before any tokenizer has seen it: the bound every reservation uses.

Each model counts with its own tokenizer, which we cannot run. What we can say for sure, per character:

- ASCII letters and whitespace: a third of a token each (real tokenizers give about a quarter on prose);
- ASCII digits, punctuation and symbols: one token each (some tokenizers split every digit);
- any other character in the Basic Multilingual Plane (accented Latin, Greek, Cyrillic, Arabic, Hebrew,
  Devanagari, CJK, Hangul, ...): one token each;
- characters where tokenizers are least alike: those outside the Basic Multilingual Plane (emoji, rare CJK
  ideographs), symbols and emoji in the BMP (U+2000-U+2BFF), variation selectors, private-use, control and
  unassigned characters: as many tokens as their UTF-8 bytes (no byte-level tokenizer yields more tokens than
  bytes), so at least two per emoji.

Every message adds `MESSAGE_FRAMING` tokens for its role and separators. `token_estimate` is the friendlier likely
count shown to people and used to refuse a prompt that surely cannot fit a model; reservations use `token_bound`.
"""

from __future__ import annotations

import math
import re
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

_ASCII_CHEAP = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ \t\n\r"
_ASCII = bytes(range(128))
# UTF-8 lead bytes: two-byte characters start with C2-DF, three-byte ones with E0-EF, four-byte ones with F0-F4.
_LEAD_2 = bytes(range(0xC2, 0xE0))
_LEAD_3 = bytes(range(0xE0, 0xF0))
_LEAD_4 = bytes(range(0xF0, 0xF5))
# BMP characters counted at their bytes: C1 controls (2 bytes), symbols and emoji, private use, variation
# selectors, lone surrogates, specials and noncharacters (3 bytes).
_IN_DOUBT = re.compile("[\u0080-\u009f\u2000-\u2bff\ud800-\udfff\ue000-\uf8ff\ufe00-\ufe0f\ufff0-\uffff]")


def _count(data: bytes, these: bytes) -> int:
    """How many bytes of `data` are among `these` (counted in C, by deleting them)."""
    return len(data) - len(data.translate(None, these))


def token_bound(text: str) -> int:
    """The most tokens `text` can be for any model (see the module docstring)."""
    if not text:
        return 0
    data = text.encode("utf-8", "surrogatepass")
    cheap = _count(data, _ASCII_CHEAP)
    ascii_other = _count(data, _ASCII) - cheap
    two, three, four = _count(data, _LEAD_2), _count(data, _LEAD_3), _count(data, _LEAD_4)
    doubt_two = doubt_three = 0
    for match in _IN_DOUBT.finditer(text):
        if ord(match.group()) < 0x800:
            doubt_two += 1
        else:
            doubt_three += 1
    return (
        math.ceil(cheap / 3)
        + ascii_other
        + (two - doubt_two)
        + 2 * doubt_two
        + (three - doubt_three)
        + 3 * doubt_three
        + 4 * four
    )


def token_estimate(text: str) -> int:
    """A likely token count: a quarter of a token per ASCII character, one per other character, two per
    character outside the Basic Multilingual Plane (emoji)."""
    if not text:
        return 0
    data = text.encode("utf-8", "surrogatepass")
    ascii_chars = _count(data, _ASCII)
    return math.ceil(ascii_chars / 4) + _count(data, _LEAD_2) + _count(data, _LEAD_3) + 2 * _count(data, _LEAD_4)


def unseen_tokens(chars: int) -> int:
    """Tokens for `chars` characters of text not written yet (pages to be read, answers to come), at three
    characters a token: only for a plan's estimate, since each call's reservation bounds its real text."""
    return math.ceil(chars / 3)


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
