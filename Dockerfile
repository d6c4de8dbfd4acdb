# The catalog-sync image (used by cron/kubernetes-cronjob.yaml). Build: docker build -t catalog-sync .
# Run:  docker run --rm -e BACKSTAGE_TOKEN -e LITELLM_MASTER_KEY \
#         -v "$PWD/config.yaml:/config/config.yaml:ro" -v catalog-sync-reports:/reports \
#         catalog-sync run -c /config/config.yaml
# No secret is baked in: they come from the environment at run time.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY catalog_sync ./catalog_sync
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --uid 10001 --user-group --home-dir /home/catalog-sync --create-home catalog-sync \
    && install -d -o 10001 -g 10001 /reports
WORKDIR /home/catalog-sync
# Reports go here (config: report.dir: /reports); mount a volume to keep them.
VOLUME ["/reports"]
USER 10001:10001
ENTRYPOINT ["catalog-sync"]
CMD ["--help"]
