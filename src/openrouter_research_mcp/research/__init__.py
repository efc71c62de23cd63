"""The deep research engine: plan, search, reflect and write, with a citation ledger and budgets in code."""
