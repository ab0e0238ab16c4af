# syntax=docker/dockerfile:1
# lbp-imaging-cds: gunicorn serving `service:create_app()` as a non-root user (see README, "Docker").
# Build: docker build -t lbp-imaging-cds .    Run: docker compose up (docker-compose.yml documents the settings)

# Python 3.11, the version the project pins (pyproject.toml), on Debian 12. Both stages use the same base
# so compiled wheels (cryptography, psycopg-binary, pydantic-core) match the runtime's libc.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY requirements.txt ./
# Every runtime dependency is pinned in requirements.txt (`make lock`); all install from wheels, so the
# image needs no compiler. A virtualenv puts them in one directory the runtime stage copies whole.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-virtualenv -r requirements.txt

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="lbp-imaging-cds" \
      org.opencontainers.image.description="CDS Hooks service rating lumbar-spine imaging orders against the ACR Appropriateness Criteria" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080 \
    DATABASE_URL=sqlite:////data/lbp-imaging-cds.db
# A fixed numeric uid/gid, so orchestrators can check runAsNonRoot and volumes can be prepared for it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app \
    && mkdir /data \
    && chown app:app /data \
    && chmod 0700 /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Code and data files stay owned by root: the app user can read them but not change them.
COPY gunicorn.conf.py openapi.yaml ./
COPY fhir_mappings/ fhir_mappings/
COPY service/ service/
COPY examples/ examples/
RUN python -m compileall -q service fhir_mappings
# The SQLite database (default DATABASE_URL) lives here; mount a named volume to keep it.
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080
# No curl in the slim image: Python asks /healthz, and any error or non-2xx answer exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=4)"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "service:create_app()"]
