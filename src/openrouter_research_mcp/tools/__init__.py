"""The tools' logic, free of MCP: one module per tool family, plus the shared state, the results and their text
renderings. `server.py` registers these; tests call them directly."""
