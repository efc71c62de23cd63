"""Check the hand-labelled citation set: schema, counts, and that the labels agree with the pages.

Run it from the repository root (stdlib only, Python 3.11):

    python tests/fakes/labelled/check_set.py            # check, print counts, exit 1 on any problem
    python tests/fakes/labelled/check_set.py --table    # print only the counts table (markdown, as in README.md)

Checks:

* every page has the `url:` / `title:` / `lang:` header, a blank line, and a body of 1,500-3,500 characters;
  URL hosts end in `.test` and URLs are distinct; the set has the required pages per language;
* the bodies, taken together, contain each normalisation trap the set is meant to exercise, several times;
* every citation has the required fields and values, `quote_on_page` and `verdict` agree with its kind, and
  the counts per kind (and the spread of kinds over languages) reach the minimums;
* every page is cited at least 6 times;
* a quote labelled as on the page (`supported_exact`, `false_*`) is found on the cited page after the simple
  normalisation below; a `supported_variant` quote is found after the loose normalisation (accents folded,
  articles dropped, one slipped letter in a word of 6+ letters); an `altered_quote`, `fabricated_quote` or
  `supported_reworded` quote is found on the cited page by neither; a `wrong_page` quote is found on `page` and
  not on `cited`;
* a `false_number` claim contains a number that its quote does not;
* marks.json has the documented shape and at least 30 cases;
* the counts table in README.md is the one computed here.

The normalisation is deliberately simple; it is a consistency check of the labels, not the checker under test.
"""

from __future__ import annotations

import html
import json
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

HERE = Path(__file__).resolve().parent
PAGES_DIR = HERE / "pages"
CITATIONS = HERE / "citations.json"
MARKS = HERE / "marks.json"
README = HERE / "README.md"

LANGS = {"en": 8, "de": 5, "fr": 4, "es": 4, "zh": 3}
MIN_KIND = {
    "supported_exact": 45,
    "supported_variant": 20,
    "supported_reworded": 15,
    "false_negation": 10,
    "false_antonym": 10,
    "false_number": 15,
    "false_entity": 10,
    "false_reversal": 8,
    "false_overgeneralisation": 8,
    "false_table": 6,
    "altered_quote": 20,
    "fabricated_quote": 10,
    "wrong_page": 10,
}
KINDS = list(MIN_KIND)
MIN_CITATIONS = 220
MIN_PER_PAGE = 6
MIN_LANGS_PER_KIND = 4
BODY_CHARS = (1500, 3500)
FIELDS = {"id", "page", "cited", "kind", "claim", "quote", "quote_on_page", "verdict"}
OPTIONAL = {"note"}
VERDICTS = {"supported", "partly", "unsupported"}
MIN_QUOTE_WORDS = 4
MIN_QUOTE_CJK = 4

# Traps the page bodies must contain, each in at least `n` places (counted as matches over all bodies).
FEATURES: dict[str, tuple[str, int]] = {
    "markdown table": (r"^\|.*\|[ \t]*\n\|[-:| ]+\|[ \t]*$", 12),
    "bullet list": (r"^[ \t]*[-*] \S", 20),
    "numbered list": (r"^[ \t]*\d+\. \S", 10),
    "decimal point": (r"\d\.\d(?!\d{2})", 10),
    "decimal comma": (r"\d,\d{1,2}(?!\d)", 10),
    "17% (no space)": (r"\d%", 5),
    "17 % (space)": (r"\d[ \u00a0\u202f]%", 5),
    "percent word": (r"\d percent\b", 3),
    "Prozent": (r"\d Prozent\b", 3),
    "pour cent": (r"\d pour cent\b", 3),
    "por ciento": (r"\d por ciento\b", 3),
    "thousands 20,000": (r"\d,\d{3}(?!\d)", 5),
    "thousands 20.000": (r"\d\.\d{3}(?!\d)", 5),
    "thousands 20 000 (space)": (r"\d \d{3}(?!\d)", 5),
    "thousands thin space": (r"\d\u2009\d{3}(?!\d)", 3),
    "thousands narrow no-break space": (r"\d\u202f\d{3}(?!\d)", 3),
    "date": (
        r"\b\d{1,2}\.? (?:January|February|March|April|May|June|July|August|September|October|November|December"
        r"|Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember)\b"
        r"|\b\d{1,2}(?:er)? (?:janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre)\b"
        r"|\b\d{1,2} de (?:enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre)\b"
        r"|\d{4}年\d{1,2}月\d{1,2}日",
        20,
    ),
    "negative temperature U+2212": (r"\u2212\d+(?:[.,]\d+)? ?°C", 3),
    "negative temperature ASCII -": (r"(?<![\w.])-\d+(?:[.,]\d+)? ?°C", 3),
    "&amp;": (r"&amp;", 3),
    "&nbsp;": (r"&nbsp;", 3),
    "&#8217;": (r"&#8217;", 3),
    "&quot;": (r"&quot;", 3),
    "&eacute;": (r"&eacute;", 3),
    "soft hyphen": (r"\w\u00ad\w", 3),
    "hyphenation across a line break": (r"\w-\n\w", 3),
    "markdown link": (r"\[[^\]\n]+\]\(https?://[^)\s]+\)", 20),
    "footnote mark": (r"\w[.)]?(?:\[\^?\d{1,2}\]|[¹²³⁴⁵⁶⁷⁸⁹])", 5),
    "curly apostrophe": (r"\w’\w", 10),
}

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
SUPERSCRIPTS = "¹²³⁴⁵⁶⁷⁸⁹⁰"
PERCENT_WORDS = r"%|percent\b|per cent\b|prozent\b|pour cent\b|por ciento\b"
ARTICLES = frozenset(
    (
        "the a an der die das den dem des ein eine einen einem einer eines "
        + "le la les l un une el los las lo una unos unas"
    ).split()
)
TOKEN = re.compile(rf"~?\d+(?:\.\d+)?|%|[{CJK}]|[^\W\d_{CJK}]+")

problems: list[str] = []
Citation = dict[str, Any]


@dataclass
class Page:
    url: str
    title: str
    lang: str
    body: str
    toks: list[str] = field(default_factory=list)


def problem(message: str) -> None:
    problems.append(message)


def say(line: str = "", err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(line + "\n")


# --- normalisation -----------------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Page or quote text as a comparable string (before tokenising)."""
    text = html.unescape(text)
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")  # soft hyphen, zero-width, ...
    text = re.sub(r"(?<=\w)-[ \t]*\n[ \t]*(?=\w)", "", text)  # inter-\nnational
    text = re.sub(r"!?\[([^\]\n]*)\]\([^)\s]*\)", r"\1", text)  # [text](url) -> text
    text = re.sub(r"\[\^?\d{1,3}\]", " ", text)  # footnote marks [1], [^2]
    text = re.sub(f"[{SUPERSCRIPTS}]+", " ", text)  # footnote marks ¹ ²
    text = re.sub(r"[\u2010\u2011\u2012\u2013\u2014\u2212]", "-", text)
    text = re.sub(r"(?<![0-9A-Za-z\u00c0-\u024f])-(?=\d)", "~", text)  # a minus sign, not a range dash
    text = re.sub(r"(?<=\d)[,.\u00a0\u2009\u202f ](?=\d{3}(?!\d))", "", text)  # 20,000 20.000 20 000 -> 20000
    text = re.sub(r"(?<=\d),(?=\d)", ".", text)  # decimal comma -> point
    text = text.casefold()
    text = re.sub(rf"(?<=\d)\s*(?:{PERCENT_WORDS})", " % ", text)
    return text


def tokens(text: str) -> list[str]:
    return TOKEN.findall(normalise(text))


def fold(token: str) -> str:
    token = token.replace("œ", "oe").replace("æ", "ae").replace("ø", "o").replace("ı", "i")
    return "".join(ch for ch in unicodedata.normalize("NFKD", token) if not unicodedata.combining(ch))


def contains(page: list[str], quote: list[str]) -> bool:
    if not quote:
        return False
    sep = "\x1f"
    return f"{sep}{sep.join(quote)}{sep}" in f"{sep}{sep.join(page)}{sep}"


def one_slip(a: str, b: str) -> bool:
    """At most one inserted, dropped or changed letter (Levenshtein distance <= 1)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def close(page_word: str, quote_word: str) -> bool:
    if page_word == quote_word:
        return True
    if not (page_word.isalpha() and quote_word.isalpha()):
        return False
    if re.match(f"[{CJK}]", page_word):
        return False
    return len(page_word) >= 6 and page_word[0] == quote_word[0] and one_slip(page_word, quote_word)


def loose(toks: list[str]) -> list[str]:
    return [fold(t) for t in toks if t not in ARTICLES]


def contains_loose(page: list[str], quote: list[str]) -> bool:
    p, q = loose(page), loose(quote)
    if not q:
        return False
    return any(all(close(p[i + k], q[k]) for k in range(len(q))) for i in range(len(p) - len(q) + 1))


def numbers(text: str) -> set[str]:
    return {t for t in tokens(text) if t[:1].isdigit() or t.startswith("~")}


# --- loading -----------------------------------------------------------------------------------------------------


def load_pages() -> dict[str, Page]:
    pages: dict[str, Page] = {}
    urls: dict[str, str] = {}
    for path in sorted(PAGES_DIR.glob("*.txt")):
        pid = path.stem
        raw = path.read_text(encoding="utf-8")
        lines = raw.split("\n")
        if len(lines) < 5 or lines[3] != "":
            problem(f"page {pid}: expected three header lines and a blank line")
            continue
        header: dict[str, str] = {}
        for key, line in zip(("url", "title", "lang"), lines[:3], strict=True):
            if not line.startswith(f"{key}: ") or not line[len(key) + 2 :].strip():
                problem(f"page {pid}: header line {line!r} should be '{key}: ...'")
            header[key] = line[len(key) + 2 :].strip()
        body = "\n".join(lines[4:])
        lang = header.get("lang", "")
        if lang not in LANGS:
            problem(f"page {pid}: unknown lang {lang!r}")
        if not pid.startswith(f"{lang}-"):
            problem(f"page {pid}: id should start with its language '{lang}-'")
        host = urlparse(header.get("url", "")).hostname or ""
        if not header.get("url", "").startswith("https://") or not host.endswith(".test"):
            problem(f"page {pid}: URL host {host!r} must be https and end in .test")
        if header.get("url") in urls:
            problem(f"page {pid}: URL also used by {urls[header['url']]}")
        urls[header.get("url", "")] = pid
        if not BODY_CHARS[0] <= len(body) <= BODY_CHARS[1]:
            problem(f"page {pid}: body has {len(body)} characters, not {BODY_CHARS[0]}-{BODY_CHARS[1]}")
        if "{" in body and re.search(r"\{(?:shy|thin|nnbsp|minus|nbsp)\}", body):
            problem(f"page {pid}: unreplaced placeholder in body")
        pages[pid] = Page(header.get("url", ""), header.get("title", ""), lang, body, tokens(body))
    per_lang = Counter(p.lang for p in pages.values())
    for lang, n in LANGS.items():
        if per_lang[lang] < n:
            problem(f"pages: {per_lang[lang]} in {lang}, need at least {n}")
    return pages


def check_features(pages: dict[str, Page]) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for name, (pattern, minimum) in FEATURES.items():
        regex = re.compile(pattern, re.MULTILINE)
        hits = {pid: len(regex.findall(p.body)) for pid, p in pages.items()}
        total = sum(hits.values())
        spread = sum(1 for n in hits.values() if n)
        found[name] = (total, spread)
        if total < minimum or spread < 2:
            problem(f"feature {name!r}: {total} occurrences on {spread} pages, need {minimum} on 2+ pages")
    return found


def check_citations(pages: dict[str, Page]) -> list[Citation]:
    try:
        data = json.loads(CITATIONS.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        problem(f"citations.json: {exc}")
        return []
    if not isinstance(data, list):
        problem("citations.json: expected a JSON array")
        return []
    seen: set[str] = set()
    good: list[Citation] = []
    for i, c in enumerate(data):
        where = f"citation #{i} {c.get('id', '?') if isinstance(c, dict) else '?'}"
        if not isinstance(c, dict):
            problem(f"{where}: not an object")
            continue
        missing, extra = FIELDS - c.keys(), c.keys() - FIELDS - OPTIONAL
        if missing or extra:
            problem(f"{where}: missing {sorted(missing)} extra {sorted(extra)}")
            continue
        for key in ("id", "page", "cited", "kind", "claim", "quote", "verdict"):
            if not isinstance(c[key], str) or not c[key].strip():
                problem(f"{where}: {key} must be a non-empty string")
        if not isinstance(c["quote_on_page"], bool):
            problem(f"{where}: quote_on_page must be true or false")
        if c["id"] in seen:
            problem(f"{where}: duplicate id")
        seen.add(c["id"])
        if c["kind"] not in MIN_KIND:
            problem(f"{where}: unknown kind {c['kind']!r}")
            continue
        if c["verdict"] not in VERDICTS:
            problem(f"{where}: unknown verdict {c['verdict']!r}")
        if c["page"] not in pages or c["cited"] not in pages:
            problem(f"{where}: page {c['page']!r} or cited {c['cited']!r} does not exist")
            continue
        if not c["id"].startswith(c["cited"] + "-"):
            problem(f"{where}: id should start with the cited page id")
        if (c["page"] != c["cited"]) != (c["kind"] == "wrong_page"):
            problem(f"{where}: page and cited differ exactly when the kind is wrong_page")
        if re.search(r"[\[【［]\s*\d", c["claim"]):
            problem(f"{where}: the claim must not carry a citation mark")
        q = c["quote"]
        if q[:1] in "\"'“”„«»「」『』" and q[-1:] in "\"'“”„«»「」『』":
            problem(f"{where}: the quote must not carry surrounding quote marks")
        qt = tokens(q)
        cjk = sum(1 for t in qt if re.fullmatch(f"[{CJK}]", t))
        words = sum(1 for t in qt if t != "%" and not re.fullmatch(f"[{CJK}]", t))  # 17 % is one word
        if words < MIN_QUOTE_WORDS and cjk < MIN_QUOTE_CJK and words + cjk // 2 < MIN_QUOTE_WORDS:
            problem(f"{where}: quote too short to prove anything ({words} words, {cjk} CJK characters)")
        kind, on, verdict = c["kind"], c["quote_on_page"], c["verdict"]
        expected_on = kind in {"supported_exact", "supported_variant"} or kind.startswith("false_")
        if on != expected_on:
            problem(f"{where}: quote_on_page should be {expected_on} for {kind}")
        if kind.startswith("supported_"):
            if verdict != "supported":
                problem(f"{where}: verdict should be supported for {kind}")
        elif kind == "false_overgeneralisation":
            if verdict not in {"unsupported", "partly"}:
                problem(f"{where}: verdict should be unsupported or partly for {kind}")
        elif verdict != "unsupported":
            problem(f"{where}: verdict should be unsupported for {kind}")
        cited = pages[c["cited"]].toks
        exact, fuzzy = contains(cited, qt), contains_loose(cited, qt)
        if kind == "supported_exact" or kind.startswith("false_"):
            if not exact:
                problem(f"{where}: quote not found on {c['cited']}: {q!r}")
        elif kind == "supported_variant":
            if not fuzzy:
                problem(f"{where}: variant quote not found loosely on {c['cited']}: {q!r}")
        elif kind in {"supported_reworded", "altered_quote", "fabricated_quote", "wrong_page"}:
            if exact or fuzzy:
                problem(f"{where}: quote should not be on {c['cited']} but is ({'exact' if exact else 'loose'}): {q!r}")
        if kind == "wrong_page" and not contains(pages[c["page"]].toks, qt):
            problem(f"{where}: wrong_page quote not found on its source page {c['page']}: {q!r}")
        if kind == "false_number" and not numbers(c["claim"]) - numbers(q):
            problem(f"{where}: a false_number claim should contain a number the quote does not")
        if kind.startswith("false_") and contains(cited, tokens(c["claim"])):
            problem(f"{where}: a false claim must not be word for word on the cited page")
        good.append(c)
    kinds = Counter(c["kind"] for c in good)
    for kind, minimum in MIN_KIND.items():
        if kinds[kind] < minimum:
            problem(f"kind {kind}: {kinds[kind]} citations, need {minimum}")
    if len(good) < MIN_CITATIONS:
        problem(f"citations: {len(good)}, need {MIN_CITATIONS}")
    langs: dict[str, set[str]] = defaultdict(set)
    for c in good:
        langs[c["kind"]].add(pages[c["cited"]].lang)
    for kind in MIN_KIND:
        if len(langs[kind]) < MIN_LANGS_PER_KIND:
            problem(f"kind {kind}: only in {sorted(langs[kind])}, need {MIN_LANGS_PER_KIND} languages")
    per_page = Counter(c["cited"] for c in good)
    for pid in pages:
        if per_page[pid] < MIN_PER_PAGE:
            problem(f"page {pid}: cited {per_page[pid]} times, need {MIN_PER_PAGE}")
    verbatim = sum(
        1 for c in good if c["kind"] == "supported_exact" and contains(pages[c["cited"]].toks, tokens(c["claim"]))
    )
    if verbatim < 10:
        problem(f"supported_exact: {verbatim} claims are the page's own sentence verbatim, want about 10")
    return good


def check_marks() -> int:
    try:
        data = json.loads(MARKS.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        problem(f"marks.json: {exc}")
        return 0
    if not isinstance(data, dict) or not isinstance(data.get("rules"), str) or not isinstance(data.get("cases"), list):
        problem('marks.json: expected {"rules": str, "cases": [...]}')
        return 0
    ids: set[str] = set()
    for i, case in enumerate(data["cases"]):
        where = f"marks case #{i} {case.get('id', '?') if isinstance(case, dict) else '?'}"
        if not isinstance(case, dict) or set(case) - {"note"} != {"id", "text", "marks", "leftover"}:
            problem(f"{where}: expected id, text, marks, leftover (and an optional note)")
            continue
        if case["id"] in ids:
            problem(f"{where}: duplicate id")
        ids.add(case["id"])
        if not isinstance(case["text"], str) or not case["text"]:
            problem(f"{where}: text must be a non-empty string")
        if not isinstance(case["leftover"], int) or case["leftover"] < 0:
            problem(f"{where}: leftover must be a count")
        marks = case["marks"]
        if not isinstance(marks, list) or not all(
            isinstance(m, list) and len(m) == 2 and isinstance(m[0], int) and 1 <= m[0] <= 999 and isinstance(m[1], str)
            for m in marks
        ):
            problem(f"{where}: marks must be [[n, quote], ...] with 1 <= n <= 999")
            continue
        for _n, quote in marks:
            if quote and " ".join(quote.split()) not in " ".join(case["text"].split()):
                problem(f"{where}: quote {quote!r} is not in the text")
    if len(data["cases"]) < 30:
        problem(f"marks.json: {len(data['cases'])} cases, need 30")
    return len(data["cases"])


# --- report ------------------------------------------------------------------------------------------------------


def table(pages: dict[str, Page], good: list[Citation]) -> str:
    langs = list(LANGS)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for c in good:
        counts[c["kind"]][pages[c["cited"]].lang] += 1
    head = "| kind | " + " | ".join(langs) + " | total |"
    rows = [head, "|" + "---|" * (len(langs) + 2)]
    for kind in KINDS:
        row = counts[kind]
        rows.append(f"| {kind} | " + " | ".join(str(row[lang]) for lang in langs) + f" | {sum(row.values())} |")
    totals = Counter(pages[c["cited"]].lang for c in good)
    rows.append("| **all** | " + " | ".join(str(totals[lang]) for lang in langs) + f" | {len(good)} |")
    npages = Counter(p.lang for p in pages.values())
    rows.append("| pages | " + " | ".join(str(npages[lang]) for lang in langs) + f" | {len(pages)} |")
    return "\n".join(rows)


def check_readme(text_table: str) -> None:
    try:
        readme = README.read_text(encoding="utf-8")
    except OSError as exc:
        problem(f"README.md: {exc}")
        return
    match = re.search(r"<!-- counts -->\n(.*?)\n<!-- /counts -->", readme, re.DOTALL)
    if match is None:
        problem("README.md: no <!-- counts --> ... <!-- /counts --> block")
    elif match.group(1).strip() != text_table.strip():
        problem("README.md: the counts table is out of date; paste the output of check_set.py --table")


def main(argv: list[str]) -> int:
    pages = load_pages()
    features = check_features(pages)
    good = check_citations(pages)
    n_marks = check_marks()
    text_table = table(pages, good)
    if "--table" in argv:
        say(text_table)
        return 0
    check_readme(text_table)
    say(text_table)
    say()
    verdicts = Counter(c["verdict"] for c in good)
    on_page = Counter(c["quote_on_page"] for c in good)
    exact_variants = sum(
        1 for c in good if c["kind"] == "supported_variant" and contains(pages[c["cited"]].toks, tokens(c["quote"]))
    )
    say(f"verdicts: {dict(verdicts)}; quote_on_page: {dict(on_page)}; marks cases: {n_marks}")
    say(f"supported_variant quotes the simple normalisation already finds (ß/ss via casefold): {exact_variants}")
    say("features (occurrences / pages): " + "; ".join(f"{k} {t}/{s}" for k, (t, s) in features.items()))
    if problems:
        say(f"\n{len(problems)} problem(s):", err=True)
        for p in problems:
            say(f"  - {p}", err=True)
        return 1
    say("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
