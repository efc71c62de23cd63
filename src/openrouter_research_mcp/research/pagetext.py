"""Page text as the citation check reads it: cleaned of markup an extractor leaves behind, cut into tokens, with
numbers read as values.

`clean` undoes what web text does to words: HTML entities (`&amp;`, `&nbsp;`, `&#8217;`), soft hyphens and other
invisible format characters, words hyphenated across a line break, markdown link targets and images, and footnote
marks (`[1]`, `[^2]`, `word¹`). `tokens` cuts the result into words, numbers and CJK characters, each with its
place in the cleaned text, so a match can be shown as a passage.

Words are compared folded (case, accents, ß and ligatures do not count) and a hyphenated compound is one word
(`well-known` is `wellknown`, and so is `well-\\nknown`). Numbers are whole tokens with their decimal part, sign,
percent and unit, never substrings: `20,000`, `20.000`, `20 000` and `20\u2009000` are one value; `17%`, `17％`,
`17 percent`, `17 Prozent`, `17パーセント`, `百分之十七` and `百分之17` are one value; while `5%` is not `95%` and `16`
is not `162`. A number whose separator could be either a decimal point or a thousands separator (`1.234`) stands for
both readings.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "CJK",
    "NEGATIONS",
    "STOPWORDS",
    "Token",
    "clean",
    "fold",
    "numbers_in",
    "same_number",
    "tokens",
]

# Percent in the languages pages come in; each becomes the token "%".
PERCENT_WORDS = (
    "per cent",
    "percent",
    "pour cent",
    "pour-cent",
    "por ciento",
    "por cento",
    "per cento",
    "prozent",
    "procent",
    "procento",
    "процента",
    "процентов",
    "процент",
)
# Percent words of CJK pages: written after the number with no space or word break (`50パーセントの`).
CJK_PERCENT_AFTER = ("パーセント", "퍼센트")
# Chinese writes the percent before the number, in digits or in Chinese numerals: 百分之五十 is 50 %, 百分之5 is 5 %.
_HAN_DIGITS = dict(zip("零〇一二两三四五六七八九", (0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
_HAN_UNITS = {"十": 10, "百": 100, "千": 1000}
# Units a number may carry; two numbers that both carry one must carry the same.
UNITS = frozenset(
    "k °c °f ℃ ℉ km m cm mm µm nm kg g mg µg l ml kwh mwh gwh twh kw mw gw w v h min s ms mph kmh km/h "
    "usd eur gbp chf jpy cny rmb $ € £ ¥ mb gb tb kb hz khz mhz ghz db ppm ppb".split()
)
CURRENCY = {"$": "usd", "€": "eur", "£": "gbp", "¥": "jpy"}

# Words whose presence or absence turns a statement around, in the languages the research reads. Never a spelling
# variant, never a stopword: a quote that adds or drops one is not the page's quote.
NEGATIONS = frozenset(
    "not no never none nor neither nobody nothing nowhere without cannot nt "
    "nicht kein keine keinen keinem keiner keines nie niemals nichts ohne weder "
    "ne n pas jamais aucun aucune rien sans ni "
    "nunca jamas jamás ningun ningún ninguna ninguno nada sin tampoco "
    "nao não nem nenhum nenhuma "
    "non mai nessuno nessuna niente senza "
    "niet geen nooit zonder "
    "не нет ни без никогда "
    "不 没 沒 无 無 非 未 别 別 勿 莫 否".split()
)
# Function words a copied quote may add, drop or swap without changing what it says. Deliberately short: no
# quantifiers (all, some, most), no modals (may, must), no conjunctions (and, or), no comparisons (more, less) and no
# prepositions of direction (to, from), since those carry meaning.
STOPWORDS = frozenset(
    "the a an of this that these those its it is are was were be been "
    "der die das den dem des ein eine einen einem einer eines ist sind war waren "
    "le la les l un une des du de d est sont était "
    "el la los las lo un una unos unas del es son era "
    "o a os as um uma do da dos das é "
    "il lo gli i la le un uno una del della è "
    "de het een is "
    "的 了 地 得 之".split()
)
# Determiners that may stand for one another ("the" for "a") in a copied quote.
ARTICLES = frozenset(
    "the a an der die das den dem des ein eine einen einem einer eines le la les l un une el los las lo unos unas "
    "o os as um uma il gli i uno de het een".split()
)

_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o", "đ": "d", "ł": "l"})
_MARKDOWN_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_MARKDOWN_LINK = re.compile(r"\[([^\]\n]+)\]\((?:<[^>\n]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:\s+\"[^\"\n]*\")?\)")
_FOOTNOTE = re.compile(r"(?<=[^\s\[(])\[\^?\d{1,3}\]|\[\^\d{1,3}\]")
_SUPERSCRIPT_NOTE = re.compile(r"(?<=[^\W\d_]{3})[¹²³⁰⁴-⁹]+|(?<=[.,;:!?)\]»”\"])[¹²³⁰⁴-⁹]+")
_LINE_HYPHEN = re.compile(r"(?<=[^\W\d_])-[ \t]*\r?\n[ \t]*(?=[^\W\d_])")
_DASHES = str.maketrans({"\u2212": "-", "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-"})
_SPACES = re.compile(r"[\u00a0\u2007\u2009\u200a\u202f\u205f\u3000]")


def _is_format(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" and ch not in "\u200d"


def clean(text: str) -> str:
    """Page text without the markup extractors leave in it (see the module docstring); the words stay in place."""
    for _ in range(2):  # `&amp;nbsp;` is doubly escaped text, seen in the wild
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    text = "".join(ch for ch in text if not _is_format(ch))  # soft hyphens, zero-width spaces, bidi marks
    text = _LINE_HYPHEN.sub("", text)  # inter-\nnational
    text = _MARKDOWN_IMAGE.sub(r"\1", text)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _FOOTNOTE.sub("", text)
    text = _SUPERSCRIPT_NOTE.sub("", text)
    text = _SPACES.sub(" ", text)
    return unicodedata.normalize("NFKC", text).translate(_DASHES)


def fold(word: str) -> str:
    """A word as compared: case-folded (ß is ss), accents and ligatures dropped."""
    decomposed = unicodedata.normalize("NFKD", word.casefold().translate(_LIGATURES))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3040 <= code <= 0x30FF  # kana
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0xAC00 <= code <= 0xD7AF  # hangul
        or 0x20000 <= code <= 0x2FA1F
    )


CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


@dataclass(frozen=True)
class Token:
    """A word, number or CJK character of a text, with its place in that text (`start`, `end`)."""

    text: str  # as compared: folded words, the number as written
    kind: str  # "word", "number" or "cjk"
    start: int
    end: int
    values: frozenset[str] = frozenset()  # a number's possible readings, e.g. {"1234", "1.234"}
    percent: bool = False
    unit: str = ""
    negative: bool = False

    @property
    def is_number(self) -> bool:
        return self.kind == "number"

    def same(self, other: Token) -> bool:
        """Whether two tokens say the same thing (numbers by value, sign, percent and unit)."""
        if self.is_number or other.is_number:
            return self.is_number and other.is_number and same_number(self, other)
        return self.text == other.text


def same_number(a: Token, b: Token) -> bool:
    """Two numbers are the same when a reading of one is a reading of the other, with the same sign and percent,
    and the same unit where both carry one."""
    if a.negative != b.negative or a.percent != b.percent or not (a.values & b.values):
        return False
    return not (a.unit and b.unit and a.unit != b.unit)


_GROUPED = r"\d{1,3}(?:[,. ]\d{3})+(?![\d])"
_NUMBER = re.compile(
    rf"(?P<cur>[$€£¥]\s?)?(?P<sign>(?<![0-9A-Za-z.,-])-)?(?P<num>(?:{_GROUPED}|\d+)(?:[.,]\d+)?)(?![\d])",
)
_UNIT_AFTER = re.compile(r"\s?(°\s?[cf]|[a-zµ°℃℉$€£¥][a-z/]{0,3}\b|[$€£¥℃℉])", re.IGNORECASE)
_PERCENT_AFTER = re.compile(
    r"\s?(?:%|％|"
    + "|".join(re.escape(w) for w in CJK_PERCENT_AFTER)
    + "|(?:"
    + "|".join(re.escape(w) for w in PERCENT_WORDS)
    + r")(?![^\W\d_]))",
    re.IGNORECASE,
)
_HAN = "".join(_HAN_DIGITS)
_PERCENT_BEFORE = re.compile(
    rf"百分之\s?(?:(?P<num>\d+(?:[.,]\d+)?)(?!\d)|(?P<han>[{_HAN}{''.join(_HAN_UNITS)}]+(?:点[{_HAN}]+)?))"
)
_LETTER = r"[^\W\d_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]"
_WORD = re.compile(rf"{_LETTER}(?:{_LETTER}|[\u0300-\u036f]|['’](?={_LETTER})|-(?={_LETTER}))*")


def _readings(number: str) -> frozenset[str]:
    """Every value `number` may stand for, written canonically (no thousands separators, `.` as decimal point)."""
    grouped = re.fullmatch(r"(\d{1,3})((?:[,. ]\d{3})+)([.,]\d+)?", number)
    if grouped is not None:
        head, rest, decimal = grouped.group(1), grouped.group(2), grouped.group(3) or ""
        out = {_canonical(head + re.sub(r"[,. ]", "", rest), decimal[1:])}
        if not decimal and len(rest) == 4 and rest[0] in ",.":  # 1.234 or 1,234: a decimal, or a thousand
            out.add(_canonical(head, rest[1:]))
        return frozenset(out)
    plain = re.fullmatch(r"(\d+)(?:[.,](\d+))?", number)
    assert plain is not None  # the number pattern admits nothing else
    return frozenset({_canonical(plain.group(1), plain.group(2) or "")})


def _canonical(whole: str, fraction: str) -> str:
    whole = whole.lstrip("0") or "0"
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


def _han_number(text: str) -> str | None:
    """A number written in Chinese numerals (五十, 十五, 一百零五, 九十五点五), canonically; None if it is not one."""
    whole, _, fraction = text.partition("点")
    if not whole or any(ch not in _HAN_DIGITS for ch in fraction):
        return None
    if any(ch in _HAN_UNITS for ch in whole):
        total, digit = 0, None
        for ch in whole:
            if ch in _HAN_UNITS:
                total += (1 if digit is None else digit) * _HAN_UNITS[ch]
                digit = None
            else:
                digit = _HAN_DIGITS[ch]
        value = str(total + (digit or 0))
    else:  # digit by digit: 二五 is 25
        value = "".join(str(_HAN_DIGITS[ch]) for ch in whole)
    return _canonical(value, "".join(str(_HAN_DIGITS[ch]) for ch in fraction))


def _percent_before(text: str, i: int) -> Token | None:
    """A Chinese percent written before its number (百分之五十, 百分之5) at `text[i]`, as a number token."""
    match = _PERCENT_BEFORE.match(text, i)
    if match is None:
        return None
    value = _readings(match.group("num")) if match.group("num") else None
    if value is None:
        han = _han_number(match.group("han"))
        if han is None:
            return None
        value = frozenset({han})
    return Token(text=match.group(0), kind="number", start=i, end=match.end(), values=value, percent=True)


def _unit(text: str, end: int) -> tuple[str, int]:
    match = _UNIT_AFTER.match(text, end)
    if match is None:
        return "", end
    unit = match.group(1).lower().replace(" ", "").replace("℃", "°c").replace("℉", "°f")
    if unit in UNITS:
        return CURRENCY.get(unit, unit), match.end()
    return "", end


def tokens(text: str) -> list[Token]:
    """The words, numbers and CJK characters of `text` (already `clean`), in order."""
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isdigit() or (ch in "$€£¥-" and i + 1 < n and (text[i + 1].isdigit() or text[i + 1] == " ")):
            match = _NUMBER.match(text, i)
            if match is not None and match.group("num"):
                end = match.end()
                percent = _PERCENT_AFTER.match(text, end)
                unit = CURRENCY.get((match.group("cur") or "").strip(), "")
                if percent is not None:
                    end = percent.end()
                elif not unit:
                    unit, end = _unit(text, end)
                out.append(
                    Token(
                        text=text[match.start() : end].strip(),
                        kind="number",
                        start=match.start(),
                        end=end,
                        values=_readings(match.group("num")),
                        percent=percent is not None,
                        unit=unit,
                        negative=bool(match.group("sign")),
                    )
                )
                i = max(end, i + 1)
                continue
        if ch == "百" and (before := _percent_before(text, i)) is not None:
            out.append(before)
            i = before.end
            continue
        if _is_cjk(ch):
            out.append(Token(text=ch, kind="cjk", start=i, end=i + 1))
            i += 1
            continue
        if ch.isalpha():
            match = _WORD.match(text, i)
            if match is not None:
                word = match.group(0)
                parts = re.split(r"['’]", word)
                if len(parts) == 2 and parts[1].lower() == "t" and parts[0].lower().endswith("n"):
                    # English n't: "isn't" says "is not"
                    out.append(Token(text=fold(parts[0][:-1]), kind="word", start=i, end=i + len(parts[0]) - 1))
                    out.append(Token(text="not", kind="word", start=i + len(parts[0]) - 1, end=match.end()))
                elif len(parts) == 2 and len(parts[0]) <= 2:
                    # French and Italian elision: l'eau, n'est, d'un
                    out.append(Token(text=fold(parts[0]), kind="word", start=i, end=i + len(parts[0])))
                    out.append(
                        Token(
                            text=fold(parts[1].replace("-", "")),
                            kind="word",
                            start=i + len(parts[0]) + 1,
                            end=match.end(),
                        )
                    )
                else:
                    out.append(Token(text=fold(re.sub(r"['’-]", "", word)), kind="word", start=i, end=match.end()))
                i = match.end()
                continue
        i += 1
    return out


def numbers_in(items: list[Token]) -> list[Token]:
    return [t for t in items if t.is_number]
