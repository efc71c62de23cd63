"""The defaults and policy a reader looks for first, in one place, without reading the mechanics: where OpenRouter is
and how long to wait for it, the retry policy, the tools' default lengths and budgets, a job's lease, and the
OpenRouter pages that messages point to.

Not every tunable is here. A setting with nothing else to share its default is declared once, in `config.py` (the
calls in flight at once: `research_concurrency`, `benchmark_concurrency`); a knob of one mechanism stays at the top
of its module: the research steps' token caps and the verifier's `VERIFY_*` (`research/planning.py`), how often a
job's holder renews its lease and how long a cancel waits for another process (`LEASE_RENEW_S`, `CANCEL_WAIT_S` in
`jobs/manager.py`), and the stdio wire's graces (`SIGNAL_GRACE`, `EOF_GRACE` in `wire.py`).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_COMPARE_MAX_COST_USD",
    "DEFAULT_COMPARE_MAX_TOKENS",
    "JUDGE_MAX_TOKENS",
    "PROGRESS_INTERVAL",
    "CREDITS_URL",
    "DEFAULT_ANSWER_TOKENS",
    "DEFAULT_APP_TITLE",
    "DEFAULT_APP_URL",
    "DEFAULT_BASE_URL",
    "DEFAULT_JOB_LEASE_S",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MODEL",
    "DEFAULT_MODELS_TTL",
    "DEFAULT_RESEARCH_MAX_COST_USD",
    "DEFAULT_TIMEOUT",
    "INITIAL_RETRY_DELAY",
    "MAX_NATIVE_FALLBACKS",
    "KEYS_URL",
    "PRIVACY_URL",
    "MAX_RETRY_AFTER",
    "MAX_RETRY_DELAY",
    "RETRY_STATUSES",
]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
# Inexpensive, capable, long context, supports tools and structured outputs.
DEFAULT_MODEL = "openai/gpt-4o-mini"
DEFAULT_TIMEOUT = 50.0  # seconds per upstream request, and per tool call in all: inside hosts' 60 s limit
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 2
MAX_NATIVE_FALLBACKS = 3  # OpenRouter rejects a `models` list longer than this with a 400
DEFAULT_MODELS_TTL = 3600.0
DEFAULT_APP_TITLE = "openrouter-research-mcp"
DEFAULT_APP_URL = "https://github.com/openrouter-research-mcp/openrouter-research-mcp"
KEYS_URL = "https://openrouter.ai/settings/keys"
CREDITS_URL = "https://openrouter.ai/settings/credits"
PRIVACY_URL = "https://openrouter.ai/settings/privacy"

# Retry policy (see retry.py): only these statuses are retried; client mistakes (400, 401, 402, 403, 404, 413, 422)
# never are, since trying again cannot change the answer.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 524, 529})
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0  # a Retry-After beyond this is ignored in favour of our own backoff

# Tools
DEFAULT_ANSWER_TOKENS = 4096  # an answer's length for worst-case estimates when neither caller nor catalog says
DEFAULT_COMPARE_MAX_TOKENS = 1024
DEFAULT_COMPARE_MAX_COST_USD = 0.50
JUDGE_MAX_TOKENS = 1500
PROGRESS_INTERVAL = 1.0  # seconds between streamed-text progress notifications
DEFAULT_RESEARCH_MAX_COST_USD = 0.50

# Jobs: a running job's lease lasts this long without renewal (its holder renews it twice a second), so a job whose
# server died reads as interrupted, and may be resumed elsewhere, at most this long after.
DEFAULT_JOB_LEASE_S = 15.0
