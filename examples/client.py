"""A minimal MCP client for openrouter-research-mcp, using the official SDK over stdio.

    .venv/bin/python examples/client.py "Why is the sky blue?"

Starts the installed server as a subprocess, lists its tools, asks one question and prints the answer and its cost
(as the server renders it for a host).
Uses the key `openrouter-research-mcp login` stored, or OPENROUTER_API_KEY from the environment.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys

from mcp import Client, StdioServerParameters

PASSED = {"XDG_CONFIG_HOME", "DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND"}


async def main(question: str) -> None:
    server = StdioServerParameters(
        command=shutil.which("openrouter-research-mcp") or sys.executable,
        args=[] if shutil.which("openrouter-research-mcp") else ["-m", "openrouter_research_mcp"],
        # Only a few variables (HOME, PATH, ...) reach a spawned server by default: pass on the settings, and what
        # finds a key `login` stored (the config dir, the session's keyring).
        env={name: value for name, value in os.environ.items() if name.startswith("OPENROUTER_") or name in PASSED},
    )

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        share = f"{progress:g}/{total:g}" if total else f"{progress:g}"
        print(f"  … [{share}] {message}", file=sys.stderr)

    async with Client(server) as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
        print(f"tools: {', '.join(tools)}")
        result = await client.call_tool("ask", {"prompt": question}, progress_callback=on_progress)
        if result.is_error:
            print(f"error: {result.content[0].text}")  # type: ignore[union-attr]
            return
        # What a host shows: the answer, then its model, tokens and cost (in the server's one money format).
        print(result.content[0].text)  # type: ignore[union-attr]
        data = result.structured_content or {}
        print(f"-- answered by {data.get('model')}")


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "In one sentence: what is OpenRouter?"))
