# syntax=docker/dockerfile:1.7
# The offline GitHub stand-in (mcp_testing), for Compose's `offline` profile only: it lets the whole
# stack run with no GitHub. Never deploy it to production. Build from the repository root:
#   docker build -f deploy/docker/standin.Dockerfile -t mcp-standin .

# uv is copied from its official image, pinned to the version that wrote uv.lock.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.14-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# uv needs every workspace member's pyproject.toml to read the workspace, even those it won't install.
COPY pyproject.toml uv.lock ./
COPY services/auth/pyproject.toml services/auth/
COPY services/mcp/pyproject.toml services/mcp/
COPY shared/pyproject.toml shared/
COPY testing/pyproject.toml testing/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package mcp-testing
COPY testing/src testing/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package mcp-testing

FROM python:3.11.14-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001:10001
EXPOSE 8080
# slim has no curl: ask /readyz with the standard library (on 8080, where CMD has it listen).
HEALTHCHECK --interval=15s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=4)"]
ENTRYPOINT ["mcp-standin"]
CMD ["github", "--host", "0.0.0.0", "--port", "8080"]
