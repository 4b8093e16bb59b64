# syntax=docker/dockerfile:1
# Image Finder: the Telegram bot by default, the local CLI on request; CPU only.
#
#   docker build -t image-finder .
#   docker run -d --env-file .env -v image-finder-data:/data -v image-finder-models:/models \
#       image-finder
#
# BASE is any Debian bookworm image with Python 3.11 and its venv module: python:3.11-slim-bookworm
# by default; deploy/build-local-image.sh builds on one made from Debian's packages instead.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
WORKDIR /src
RUN python3 -m venv /opt/image-finder
# Dependencies first, from pyproject.toml under the lock: a layer that survives code changes.
COPY pyproject.toml requirements.lock ./
RUN python3 -c "import tomllib; \
        project = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
        print(*project['dependencies'], sep='\n')" > deps.txt \
 && /opt/image-finder/bin/pip install -c requirements.lock -r deps.txt
COPY README.md LICENSE ./
COPY bot bot
COPY core core
COPY storage storage
COPY migrations migrations
RUN /opt/image-finder/bin/pip install -c requirements.lock . \
 && /opt/image-finder/bin/pip check

FROM ${BASE}
# The bot's user. With the local Bot API server (compose profile local-api) it must be the
# server's own (101): that server writes the files it downloads readable by itself only.
ARG UID=10001
# Bundles the image fetches by itself (ruCLIP has no download: build it with `python -m tools
# export` elsewhere, put it into the models volume and add it to MODEL_DIRS).
ENV PATH=/opt/image-finder/bin:$PATH \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data \
    MODEL_DIRS=/models/ViT-B-32-SigLIP2-256__webli \
    WEBHOOK_PORT=8080
# Tesseract's Russian and English models for the OCR stage (the engine itself comes with the
# tesserocr wheel); without them the bot runs with OCR off and says so once at start-up.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr-rus tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --uid "$UID" --user-group --create-home --home-dir /home/image-finder \
        --shell /usr/sbin/nologin image-finder \
 && mkdir -p /data /models \
 && chown image-finder:image-finder /data /models
COPY --from=build /opt/image-finder /opt/image-finder
COPY deploy/docker-entrypoint.sh /usr/local/bin/image-finder-entrypoint
USER image-finder
# From /, the repository's relative DATA_DIR and MODEL_DIRS (data, models/...) are the volumes.
WORKDIR /
VOLUME ["/data", "/models"]
EXPOSE 8080
# Healthy while the bot polls (a fresh heartbeat in /data) or serves its webhook (/healthz).
# The start period covers the first model download and loading the models.
HEALTHCHECK --interval=30s --timeout=10s --start-period=5m --retries=3 \
    CMD ["image-finder-bot", "health"]
ENTRYPOINT ["image-finder-entrypoint"]
CMD ["run"]
