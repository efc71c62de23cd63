"""The token bound every reservation uses: never below what a real tokenizer gives (here the fake's, one token
per CJK character and two per emoji), never above the UTF-8 bytes."""

from __future__ import annotations

import random

import pytest

from openrouter_research_mcp.openrouter.tokens import (
    MESSAGE_FRAMING,
    messages_bound,
    text_of,
    token_bound,
    token_estimate,
)

from ..fakes.common import tokens_of

SCRIPTS = {
    "latin": "The quick brown fox jumps over the lazy dog, 42 times; naïve café déjà vu.",
    "digits": "3.14159 2,718 1e9 0x1F 100% 20 000",
    "chinese": "热泵的性能系数通常在三到五之间，取决于室外温度。",
    "japanese": "ヒートポンプの成績係数は外気温によって変わります。",
    "korean": "히트 펌프의 성능 계수는 외부 온도에 따라 달라집니다.",
    "cyrillic": "Коэффициент производительности теплового насоса",
    "arabic": "يعتمد معامل أداء المضخة الحرارية على درجة الحرارة",
    "hindi": "ऊष्मा पंप का प्रदर्शन गुणांक तापमान पर निर्भर करता है",
    "emoji": "😀🔥🚀👍🏽👨‍👩‍👧🇫🇷✅☀️",
    "symbols": "→ ≤ ≥ ∑ ∞ © ™ € £ ¥ • … — –",
    "rare": "𠀀𠀁𪚥 \ue000\ufffd \x85\x9f",
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_bound_is_at_least_a_real_count_and_at_most_the_bytes(name: str) -> None:
    text = SCRIPTS[name] * 50
    bound = token_bound(text)
    assert tokens_of(text) <= bound <= len(text.encode("utf-8"))
    assert token_estimate(text) <= bound  # the friendlier figure shown to people never exceeds the reservation


def test_bound_is_the_utf8_length() -> None:
    assert token_bound("中" * 30_000) == 90_000  # three bytes per CJK character, where tokenizers give about one
    assert token_bound("Ж" * 1_000) == 2_000
    assert token_bound("😀" * 20_000) == 80_000  # an emoji at its four bytes: at least two
    assert token_bound("abc " * 300) == 1_200  # ASCII: one each, about four times a tokenizer's count on prose
    assert token_bound("") == 0 and token_bound("\ud800") == 3  # a lone surrogate counts its three bytes


def test_bound_holds_where_rules_per_script_undercount() -> None:
    # Text no tokenizer has merges for: a tokenizer may give one token per byte, and the bound still holds.
    for text in ["qz" * 50_000, "aGVsbG8gd29ybGQ=" * 5_000, "ሰላም ዓለም" * 2_000, "彝文ꆈꌠꁱꂷ" * 2_000]:
        assert token_bound(text) == len(text.encode("utf-8"))


def test_bound_holds_on_random_mixed_text() -> None:
    pools = [chr(c) for c in [*range(32, 127), *range(0xA0, 0x250), *range(0x400, 0x500), *range(0x4E00, 0x4F00)]]
    pools += ["😀", "🚀", "\u200d", "\ufe0f", "𠀀"]
    rng = random.Random(18)
    for _ in range(300):
        text = "".join(rng.choice(pools) for _ in range(rng.randint(1, 400)))
        assert tokens_of(text) <= token_bound(text) <= len(text.encode("utf-8", "surrogatepass"))


def test_messages_bound_counts_text_parts_and_framing() -> None:
    parts = [
        {"type": "text", "text": "中文"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    messages: list[dict[str, object]] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": parts}]
    assert text_of(parts) == "中文"
    assert messages_bound(messages) == token_bound("Be brief.") + 6 + 2 * MESSAGE_FRAMING


def test_bound_counts_a_long_prompt_whole() -> None:
    text = SCRIPTS["chinese"] * 30_000  # about 700,000 characters (its speed is measured in bench/)
    assert token_bound(text) == len(text.encode("utf-8"))
