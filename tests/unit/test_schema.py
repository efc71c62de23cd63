"""Compacted tool schemas keep their meaning."""

from __future__ import annotations

import jsonschema
import pytest
from pydantic import BaseModel

from openrouter_research_mcp._schema import compact_schema
from openrouter_research_mcp.tools.results import AskResult, ResearchResult


class Page(BaseModel):
    title: str  # a property *named* title must survive
    note: str | None = None
    tags: list[str] | None = None


def test_compact_schema_drops_generated_titles_only() -> None:
    schema = compact_schema(Page.model_json_schema())
    assert "title" not in schema and set(schema["properties"]) == {"title", "note", "tags"}
    assert "title" not in schema["properties"]["title"]
    assert schema["properties"]["note"]["type"] == ["string", "null"] and "anyOf" not in schema["properties"]["note"]
    assert "anyOf" in schema["properties"]["tags"]  # not a simple union: left as it was


@pytest.mark.parametrize("model", [Page, AskResult, ResearchResult])
def test_compact_schema_accepts_and_rejects_the_same_documents(model: type[BaseModel]) -> None:
    full, small = model.model_json_schema(), compact_schema(model.model_json_schema())
    assert len(str(small)) < len(str(full))
    good = {"title": "t", "note": None} if model is Page else None
    if good is not None:
        jsonschema.validate(good, small)
        jsonschema.validate(good, full)
    for bad in ({}, {"title": 3}, {"title": "t", "note": 5}):
        full_ok = jsonschema.Draft202012Validator(full).is_valid(bad)
        assert jsonschema.Draft202012Validator(small).is_valid(bad) == full_ok
