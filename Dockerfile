# One image recipe for every service; the service is a build argument:
#   docker build --build-arg SERVICE=intake -t strategia-intake .
# (docker-compose.yml passes it for each service.) Build context is the repository root.
FROM python:3.11-slim AS build
ARG SERVICE
RUN test -n "$SERVICE" || (echo "build with --build-arg SERVICE=<intake|groups|notifications|news>" && false)
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# uv needs every workspace member's pyproject.toml to check the lock file.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY devtools/pyproject.toml devtools/
COPY services/intake/pyproject.toml services/intake/
COPY services/groups/pyproject.toml services/groups/
COPY services/notifications/pyproject.toml services/notifications/
COPY services/news/pyproject.toml services/news/
COPY services/web/pyproject.toml services/web/
RUN uv sync --locked --no-dev --package "strategia-${SERVICE}" --no-install-workspace
COPY shared/ shared/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN uv sync --locked --no-dev --package "strategia-${SERVICE}"

FROM python:3.11-slim
ARG SERVICE
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin strategia
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    STRATEGIA_SERVICE=${SERVICE} STRATEGIA_HTTP_HOST=0.0.0.0 STRATEGIA_HTTP_PORT=8000
USER strategia
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]
# exec: the service itself is PID 1 and receives SIGTERM for a graceful stop.
CMD ["/bin/sh", "-c", "exec python -m \"$STRATEGIA_SERVICE\""]
