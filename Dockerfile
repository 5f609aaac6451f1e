# wavehook as a container (Cloud Run, Fly, Render, Knative, ECS, Kubernetes): `wavehook serve` on $PORT.
#   docker build -t wavehook .                      # --build-arg EXTRAS=s3,postgres is the default
#   docker run -e WAVESPEED_WEBHOOK_SECRET=whsec_... -e WAVEHOOK_ADMIN_TOKEN=... -e PORT=8080 -p 8080:8080 wavehook
# It listens on every interface (WAVEHOOK_HOST=0.0.0.0), so serve refuses to start without WAVEHOOK_ADMIN_TOKEN
# (24+ characters: python -c 'import secrets; print(secrets.token_urlsafe(32))'), unless
# WAVEHOOK_ALLOW_NO_ADMIN_TOKEN=true. The container's disk is not kept: give it WAVEHOOK_MEDIA_URL (outputs in
# object storage) and a ledger that outlives it; see README.md, "Deploying". tests/test_dockerfile.py runs this file's install step and command.

# The build stage: every dependency ships binary wheels, so no compiler is ever installed; pip, the sources
# and the build's leftovers stay behind in this stage.
FROM python:3.12-slim AS build
ARG EXTRAS=s3,postgres
ENV VIRTUAL_ENV=/opt/wavehook PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY receiver ./receiver
COPY submitter ./submitter
COPY sandbox ./sandbox
COPY wavehook ./wavehook
RUN python -m venv "$VIRTUAL_ENV" && "$VIRTUAL_ENV/bin/pip" install --quiet ".[$EXTRAS]"

FROM python:3.12-slim
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/wavehook wavehook
COPY --from=build /opt/wavehook /opt/wavehook
ENV PATH=/opt/wavehook/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WAVEHOOK_HOST=0.0.0.0 \
    PORT=8000 \
    WAVEHOOK_LOG_FORMAT=json
USER wavehook
WORKDIR /home/wavehook
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]
CMD ["wavehook", "serve"]
