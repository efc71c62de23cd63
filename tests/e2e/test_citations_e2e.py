"""The citation check end to end, on the hand-labelled multilingual set: the real server over stdio researches the
labelled pages (served by the fake's web search and page reading), its writer cites them as the labels say, and the
fake's verifier answers as a correct one would. What the reader is shown must follow the labels."""

from __future__ import annotations

import re
from pathlib import Path

from mcp import Client

from ..fakes.labelled_set import pages, research_scenario
from ..fakes.openrouter import FakeOpenRouter
from .conftest import stdio_params

CHOSEN = ("en-heatpump", "en-vaccine", "de-wetter", "fr-medicament", "zh-hanchao")


async def test_e2e_labelled_citations_are_shown_as_their_labels_say(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    fake = fake_openrouter
    by_id = pages()
    cases = research_scenario(fake, CHOSEN)
    assert len(cases) >= 60
    async with Client(stdio_params(fake, tmp_path / "cache")) as client:
        result = await client.call_tool(
            "deep_research",
            {
                "question": "Heat pumps, vaccines, weather records and medicines",
                "breadth": 5,
                "depth": 1,
                "report_length": "long",  # room for every labelled claim
                "max_cost_usd": 2,
                "max_seconds": 120,
            },
        )
    data = result.structured_content
    assert data is not None and not result.is_error, result
    urls = {s["url"] for s in data["sources"]}
    assert {by_id[p].url for p in CHOSEN} <= urls  # every labelled page was found and read
    checks = {c["claim"]: c for c in data["citations"]}
    seen = [checks.get(c.claim.rstrip(".。 ")) for c in cases]
    assert all(seen), [c.claim for c, s in zip(cases, seen, strict=True) if s is None]
    wrong = []
    for case, check in zip(cases, seen, strict=True):
        assert check is not None
        if check["quote_found"] != case.quote_on_page:
            wrong.append(f"{case.id}: quote_found {check['quote_found']}, label {case.quote_on_page}")
        if case.verdict != "supported" and check["shown"].endswith("]") and "?" not in check["shown"]:
            wrong.append(f"{case.id}: a false claim shown as {check['shown']}")
    assert wrong == []
    supported = [s for c, s in zip(cases, seen, strict=True) if c.verdict == "supported" and s is not None]
    assert sum(s["shown"] == f"[{s['n']}]" for s in supported) >= 0.9 * len(supported)
    report = data["report"].split("## Method")[0]
    assert not re.search(r"[\[【［]\s*\d+\s*[:,]?\s*[\"“„«»‹›「『‘‚']", report)  # no writer's mark left raw
    v = data["verification"]
    assert (
        v["citations"] >= len(cases)
        and v["not_checked"] == 0
        and v["checked_by_model"] > 0
        and v["citation_accuracy"] is not None
        and v["unsupported"] > 0
    )
    assert data["report"].rstrip().endswith("._") and "a verifier model" in data["report"].rstrip().splitlines()[-1]
    assert data["cost_usd"] <= 2
