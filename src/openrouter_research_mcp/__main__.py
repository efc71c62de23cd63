"""`python -m openrouter_research_mcp`."""

from . import main

main()
