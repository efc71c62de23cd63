# One replica of the team server (Streamable HTTP on port 8000). compose.yaml runs two of them behind nginx over
# PostgreSQL. Not built in CI (there is no Docker engine there): tests/unit/test_deploy_files.py parses this file
# and checks what it must contain.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the wheel is built from (pyproject.toml reads README.md and LICENSE); the sources go once installed.
WORKDIR /build
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install . \
    && rm -rf /build \
    && useradd --create-home --uid 10001 --user-group mcp \
    && mkdir /data \
    && chown mcp:mcp /data

USER mcp
WORKDIR /home/mcp

# Binding 0.0.0.0 needs authentication (the server refuses otherwise): bearer tokens, kept in the store.
ENV OPENROUTER_MCP_AUTH=tokens \
    OPENROUTER_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000

# curl is not in the slim image; Python is. urlopen raises (exit 1) on anything but a 2xx.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

# Exec form, so `docker stop`'s SIGTERM reaches the server itself, which drains before it stops.
CMD ["openrouter-research-mcp", "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
