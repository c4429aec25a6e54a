# briefbot: the bot as a container. Built and run by docker-compose.yml (see "Running in production" in README.md).

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/briefbot
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
COPY setup.py ./
# The ingest hot path is compiled with mypyc (README "Compiled modules"): gcc for the
# build stage only. The first install brings the dependencies mypyc type-checks against;
# the second compiles, in this environment (no build isolation, so mypyc can see them).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN BRIEFBOT_COMPILE=0 /opt/briefbot/bin/pip install . \
    && /opt/briefbot/bin/pip install 'mypy>=1.10' 'setuptools>=68' wheel \
    && /opt/briefbot/bin/pip install --no-build-isolation --no-deps --force-reinstall . \
    && /opt/briefbot/bin/python -c "import bot.compiled as c, bot.cluster as m; assert c.is_compiled(m)" \
    && /opt/briefbot/bin/pip uninstall -y mypy

FROM python:3.11-slim
# MALLOC_ARENA_MAX: the writer, fetch and pool threads would each get a glibc arena;
# two keep the main process ~15 MB smaller during ingest (bench/ingest.py), same CPU.
ENV PATH=/opt/briefbot/bin:$PATH \
    MALLOC_ARENA_MAX=2 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BRIEFBOT_HTTP_PORT=8080 \
    BRIEFBOT_LOG_FORMAT=json
COPY --from=build /opt/briefbot /opt/briefbot
RUN useradd --system --uid 10001 --user-group --home-dir /app --create-home briefbot
WORKDIR /app
USER briefbot
EXPOSE 8080
# Python's urllib, not curl (the slim image has none): /healthz answers 503 when unhealthy,
# which urlopen raises as an error, so the probe exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BRIEFBOT_HTTP_PORT', '8080'), timeout=4)"]
CMD ["briefbot", "run"]
