FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY adapters ./adapters
COPY agridrone ./agridrone
COPY ingest ./ingest
COPY fields ./fields
COPY flights ./flights
COPY reports ./reports
COPY api ./api
COPY simulators ./simulators
COPY storage ./storage
# DejaVu Sans for the spray diary's PDF (Vietnamese glyphs, embedded in every PDF).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
# The web app, with the Leaflet that `make web` (scripts/build-web.sh) built from the npm
# registry into web/static/vendor/ (generated, not in git): run it before `docker compose build`.
COPY web ./web
RUN test -f web/static/vendor/leaflet/leaflet.js \
    || { echo "web/static/vendor/leaflet is missing: run 'make web' before building" >&2; exit 1; }
# uid/gid 1883 is the eclipse-mosquitto image's `mosquitto` user: the password file and ACL
# that `agridrone init` writes (mode 0600) into the shared broker-auth volume are then the
# broker's own files, readable on start and on SIGHUP without root or chown.
# /broker and /secrets exist here so the named volumes mounted on them start out ours.
RUN pip install --no-cache-dir -c constraints.txt . \
    && groupadd --system --gid 1883 agridrone \
    && useradd --system --uid 1883 --gid agridrone agridrone \
    && mkdir -m 0700 /data /broker /secrets \
    && chown agridrone:agridrone /data /broker /secrets
USER agridrone
ENV AGRIDRONE_METADATA_PATH=/data/agridrone.db AGRIDRONE_SQLITE_PATH=/data/telemetry.db \
    AGRIDRONE_BROKER_DIR=/broker
ENTRYPOINT ["agridrone"]
