"""Prompt templates that lead a host model into the tools well. Plain functions returning message text."""

from __future__ import annotations

__all__ = ["compare_answers_text", "deep_research_brief_text", "pick_model_text"]


def deep_research_brief_text(topic: str, audience: str | None = None, focus: str | None = None) -> str:
    """A research brief that ends in a `deep_research` call."""
    lines = [
        f"I want a well-sourced research report on: {topic}",
        f"Audience: {audience}." if audience else "Audience: an informed non-specialist.",
        f"Focus on: {focus}." if focus else "",
        "",
        "Before researching, restate the question in one precise sentence and list what a good answer must cover "
        "(definitions, current state, evidence for and against, open questions). Then call the `deep_research` "
        "tool with that question. Keep the default budget unless I ask otherwise, and tell me the cost it reports.",
        "When the report comes back, present it with its numbered sources intact. Do not add claims or sources "
        "that are not in the report; if something I asked is not covered, say so and offer a follow-up run.",
    ]
    return "\n".join(line for line in lines if line)


def compare_answers_text(question: str, models: str | None = None) -> str:
    """A side-by-side comparison through `compare_models`, with a judge."""
    chosen = (
        f"these models: {models}"
        if models
        else "three to four strong models from different providers (use `list_models` to pick them if unsure)"
    )
    return (
        f"Compare how different AI models answer this question:\n\n{question}\n\n"
        f"Call `compare_models` with {chosen}, and set `judge_model` to a capable model that is not among them. "
        "Then summarise: where the answers agree, where they disagree and who is likely right, which answer is "
        "best and why, and what the comparison cost in total."
    )


def pick_model_text(task: str, budget_usd: str | None = None, needs: str | None = None) -> str:
    """Choosing a model for a task and a budget with `list_models`."""
    budget = f"My budget is about {budget_usd} USD per call." if budget_usd else "Keep it inexpensive."
    need = f" It must support: {needs}." if needs else ""
    return (
        f"Help me choose an OpenRouter model for this task: {task}\n{budget}{need}\n\n"
        "Use `list_models` (filter by `supports`, `min_context`, `max_price`, `modality`; sort by price) to find "
        "three candidates, compare their price per million tokens, context length and capabilities in a short "
        "table, and recommend one with a reason. If it helps, try the finalists on a sample with `compare_models`."
    )
