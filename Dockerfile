FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY agridrone ./agridrone
COPY ingest ./ingest
COPY fields ./fields
COPY flights ./flights
COPY reports ./reports
COPY api ./api
COPY simulators ./simulators
COPY storage ./storage
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system agridrone \
    && mkdir /data && chown agridrone /data
USER agridrone
ENV AGRIDRONE_METADATA_PATH=/data/agridrone.db AGRIDRONE_SQLITE_PATH=/data/telemetry.db
ENTRYPOINT ["agridrone"]
