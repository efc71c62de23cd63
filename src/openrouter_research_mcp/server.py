"""The MCP surface: one `MCPServer` with the tools (`mcp_tools.py`), resources (`mcp_resources.py`), prompts,
completions and MCP Apps views (`views/`). Parses, delegates and formats; the logic lives in `tools/` and below.

`ResearchServer` adjusts the SDK where its answers are not meant for people: argument errors are explained per
argument (`tools/arguments.py`) instead of pydantic's dump, an unknown prompt or a missing prompt argument is
JSON-RPC's -32602 with a readable message, and stdio is served by our own wire (`wire.py`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from mcp.server.apps import Apps
from mcp.server.auth.provider import OAuthAuthorizationServerProvider, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError, UnexpectedToolError
from mcp.server.request_state import RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import x_mcp_header_map
from mcp.types import (
    INVALID_PARAMS,
    CallToolResult,
    Completion,
    CompletionArgument,
    CompletionContext,
    GetPromptResult,
    InputRequiredResult,
    PromptReference,
    ResourceTemplateReference,
)
from pydantic import Field, ValidationError

from ._constants import DEFAULT_APP_URL
from ._version import __version__
from .callers import CallerMiddleware, Resolver, call_state, local_caller
from .config import Settings
from .errors import OpenRouterError
from .mcp_prompts import compare_answers_text, deep_research_brief_text, pick_model_text
from .mcp_resources import register_resources
from .mcp_tools import build_tools
from .tools.arguments import closest, describe_errors, unknown_arguments
from .tools.state import Shared, open_state
from .views import SERVER_ICONS, VIEWS
from .wire import serve_stdio

__all__ = ["INSTRUCTIONS", "build_server"]

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Research tools over the whole OpenRouter model catalog (hundreds of models from many providers).
- ask: one model's answer; web_search=true for current facts with cited sources, urls=[...] to answer from pages.
- compare_models: one prompt to 2-8 models at once, side by side; add judge_model for a verdict.
- list_models: find model ids by capability, price, context or modality before choosing one.
- ask and compare_models take attachments: image, PDF or audio paths, URLs or data: URIs.
- benchmark_models: measure 2-8 models on your prompts (latency, cost, judged quality) and rank them.
- deep_research: a cited research report on a hard question (researchers search and read pages in parallel,
  reflection adds a round, the writer quotes its sources, and every citation is checked against the page it cites).
  Scaled to fit max_cost_usd and max_seconds. Long jobs: background=true, then get_research(research_id);
  cancel_research stops one and keeps what it found; deep_research(resume=id) continues a stopped one.
Model ids look like provider/model (e.g. openai/gpt-4o-mini); unknown ids fail before anything is spent, with
suggestions. Every result reports tokens and USD cost; compare_models and deep_research never start a call that
could take them past max_cost_usd (benchmark_models too). The openrouter://usage resource sums this session's spend."""


class ResearchServer(MCPServer):
    """The SDK's server with readable argument and prompt errors, served over our own stdio wire (see `wire.py`)
    where the platform has POSIX signals."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared: Shared | None = None  # set while the lifespan runs
        self._header_schemas: dict[str, tuple[object, bool]] = {}  # tool -> (its schema, any x-mcp-header in it)

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        """What the SDK checks a `tools/call`'s `Mcp-Param-*` headers against, over HTTP (2026-07-28): the tool's
        schema when it declares an `x-mcp-header`, else None, which checks the same (nothing) without walking the
        whole schema twice on every call (5% of an HTTP `ask`'s CPU, bench/remote.py). Judged once per schema."""
        schema = super()._tool_input_schema(name)
        if schema is None:
            return None
        known = self._header_schemas.get(name)
        if known is None or known[0] is not schema:
            known = self._header_schemas[name] = (schema, bool(x_mcp_header_map(schema)))
        return schema if known[1] else None

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        tool = self._tool_manager.get_tool(name)  # looked up per call: tools added later are found too
        if tool is None:
            # The 2025-11-25 specification: an unknown tool is a protocol error (invalid params), not a tool result.
            names = ", ".join(t.name for t in self._tool_manager.list_tools())
            raise MCPError(
                code=INVALID_PARAMS, message=f"There is no tool `{name}` on this server; its tools are {names}."
            )
        schema = tool.parameters
        unknown = unknown_arguments(name, arguments, schema)
        if unknown:
            raise ToolError(unknown)
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(describe_errors(name, cause, schema)) from cause
            if isinstance(cause, ToolError | ResourceError):  # our own message, without the SDK's prefix
                raise ToolError(str(cause)) from cause
            raise

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        prompts = {p.name: p for p in await self.list_prompts()}
        prompt = prompts.get(name)
        if prompt is None:
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"There is no prompt `{name}` on this server; its prompts are {', '.join(prompts)}.",
            )
        given = arguments or {}
        declared = [a.name for a in prompt.arguments or []]
        strangers = [key for key in given if key not in declared]
        if strangers:
            hints = [
                f"`{key}`" + (f" (did you mean `{close}`?)" if (close := closest(key, declared)) else "")
                for key in strangers
            ]
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"The prompt `{name}` has no argument {', '.join(hints)}; it takes {', '.join(declared)}.",
            )
        missing = [a for a in prompt.arguments or [] if a.required and not str(given.get(a.name) or "").strip()]
        if missing:
            needed = "; ".join(f"`{a.name}`" + (f" ({a.description})" if a.description else "") for a in missing)
            raise MCPError(code=INVALID_PARAMS, message=f"The prompt `{name}` needs {needed}.")
        return await super().get_prompt(name, arguments, context)

    def shutting_down(self) -> None:
        """From now on, a job that stops is stopping because the server is: it is saved as interrupted."""
        if self.shared is not None:
            self.shared.jobs.shutting_down = True

    async def run_stdio_async(self) -> None:
        if os.name != "posix":  # pragma: no cover - the SDK's transport where signals and fds differ
            await super().run_stdio_async()
            return
        await serve_stdio(self, self.shutting_down)


MAX_COMPLETIONS = 100  # the protocol's cap on values per completion


def whole_values(typed: str, ids: Sequence[str]) -> list[str]:
    """Completions for a comma-separated list of model ids: each one the whole field (the ids already typed, then
    a candidate), so a client that replaces the field keeps what was there. Ids already listed are not offered
    again, in any case, and a repeated id is kept once."""
    head, _, _ = typed.rpartition(",")
    chosen = list(dict.fromkeys(part.strip() for part in head.split(",") if part.strip())) if head else []
    taken = {c.lower() for c in chosen}
    prefix = "".join(f"{c}, " for c in chosen)
    return [prefix + i for i in ids if i.lower() not in taken]


class SameCapabilities:
    """Middleware: the classic `initialize` result carries the extensions (MCP Apps) that `server/discover`
    advertises to 2026-07-28 clients. The SDK sieves them out of the 2025-era result, though hosts on that
    generation negotiate Apps through the same field (the ext-apps spec shows it on 2024-11-05)."""

    def __init__(self, extensions: dict[str, dict[str, Any]]) -> None:
        self.extensions = extensions

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method == "initialize" and isinstance(result, dict) and isinstance(result.get("capabilities"), dict):
            capabilities = {"extensions": self.extensions, **result["capabilities"]}
            result = {**result, "capabilities": capabilities}
        return result


def _apps() -> Apps:
    apps = Apps()
    for view in VIEWS:
        apps.add_html_resource(
            view.uri, view.html(), name=view.name, title=view.title, description=view.description, prefers_border=True
        )
    return apps


def _request_state(settings: Settings) -> RequestStateSecurity | None:
    """The keys that seal the request state the SDK hands a client to echo mid-call (OPENROUTER_MCP_STATE_KEYS):
    every replica must share them, or a call continued on another replica is refused; unset, a key of this process
    (fine for one server)."""
    keys = [key.get_secret_value() for key in settings.mcp_state_keys]
    if keys:
        return RequestStateSecurity(keys=keys)
    if settings.database is not None and settings.mcp_transport == "http":
        log.warning(
            "OPENROUTER_DATABASE_URL is set (replicas) but OPENROUTER_MCP_STATE_KEYS is not: a call that asks the "
            "client a question and is continued on another replica will be refused. Give every replica the same key."
        )
    return None


def build_server(
    settings: Settings,
    callers: Resolver = local_caller,
    *,
    auth: AuthSettings | None = None,
    token_verifier: TokenVerifier | None = None,
    auth_server_provider: OAuthAuthorizationServerProvider[Any, Any, Any] | None = None,
    on_ready: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> ResearchServer:
    """The MCP server for `settings`: tools, resources, prompts, completions and views. `callers` says who each
    request's caller is (over stdio, the one local caller); `auth` and `token_verifier` (or, when this server is
    the authorization server too, `auth_server_provider`) guard it over HTTP. `on_ready`: checks run in the
    background once it serves (start-up is not held up by them)."""

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[Shared]:
        async with open_state(settings) as shared:
            assert isinstance(server, ResearchServer)
            server.shared = shared
            # What was built to get here (modules, schemas, state) lives as long as the process: kept out of the
            # collector's scans, which under 200 concurrent calls took a third of the server's CPU (bench/remote.py).
            gc.freeze()
            log.info(
                "openrouter-research-mcp %s ready (key %s; jobs in %s)",
                __version__,
                "present" if settings.has_api_key else "missing",
                shared.store.description,
            )
            checks = [asyncio.create_task(check()) for check in on_ready]
            try:
                yield shared
            finally:
                server.shared = None
                for task in checks:
                    task.cancel()

    # No `subscriptions/listen`: nothing here changes lists or resources under a client, and without it the
    # 2026-07-28 generation advertises the same capabilities as the classic one.
    apps = _apps()
    tools = build_tools()
    mcp = ResearchServer(
        "openrouter-research-mcp",
        title="OpenRouter Research",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url=DEFAULT_APP_URL,
        icons=SERVER_ICONS,
        lifespan=lifespan,
        tools=tools,
        extensions=[apps],
        middleware=[
            CallerMiddleware(callers, tools=[t.name for t in tools]),
            SameCapabilities({apps.identifier: apps.settings()}),
        ],
        subscriptions=False,
        auth=auth,
        token_verifier=token_verifier,
        auth_server_provider=auth_server_provider,
        request_state_security=_request_state(settings),
    )
    register_resources(mcp)

    @mcp.prompt(name="deep_research_brief", title="Research brief")
    def deep_research_brief(
        topic: Annotated[str, Field(description="what to research")],
        audience: Annotated[str | None, Field(description="who the report is for")] = None,
        focus: Annotated[str | None, Field(description="aspects to emphasise")] = None,
    ) -> str:
        """Plan a cited research report and run it with deep_research."""
        return deep_research_brief_text(topic, audience, focus)

    @mcp.prompt(name="compare_answers", title="Compare models on a question")
    def compare_answers(
        question: Annotated[str, Field(description="the question to put to several models")],
        models: Annotated[str | None, Field(description="comma-separated model ids (optional)")] = None,
    ) -> str:
        """Put one question to several models with compare_models and weigh the answers."""
        return compare_answers_text(question, models)

    @mcp.prompt(name="pick_model", title="Pick a model for a task")
    def pick_model(
        task: Annotated[str, Field(description="what the model must do")],
        budget_usd: Annotated[str | None, Field(description="rough budget per call in USD")] = None,
        needs: Annotated[
            str | None, Field(description="required capabilities, e.g. tools, vision, 100k context")
        ] = None,
    ) -> str:
        """Choose a model for a task and a budget with list_models."""
        return pick_model_text(task, budget_usd, needs)

    @mcp.completion()  # type: ignore[no-untyped-call, untyped-decorator]
    async def complete(
        _ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        _context: CompletionContext | None,
    ) -> Completion | None:
        if argument.name not in ("model_id", "models", "model", "judge_model"):
            return None
        try:
            catalog = call_state().catalog
            snap = await catalog.get()
            ids, _ = catalog.complete(snap, argument.value, limit=len(snap.models))
        except (OpenRouterError, ResourceError):
            return None
        values = whole_values(argument.value, ids)
        return Completion(values=values[:MAX_COMPLETIONS], total=len(values), has_more=len(values) > MAX_COMPLETIONS)

    return mcp
