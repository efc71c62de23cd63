"""The OpenRouter HTTP API and nothing else: the client, retries, response parsing, the model catalog, pricing and
budgets, the account. Nothing here imports `mcp`, the tools or the research engine."""
