# cdc container image: a build stage with the compiler and the libraries'
# headers, and a slim runtime stage with only the shared libraries the
# binary links, a non-root user and the state directory as a volume.
#
#   docker build -t cdc .
#   docker run --rm -v "$PWD/pipeline.yaml:/etc/cdc/pipeline.yaml:ro" \
#     -v cdc-state:/var/lib/cdc -e CDC_SOURCE_PASSWORD -e CDC_CONTROL_TOKEN \
#     -p 8080:8080 --stop-timeout 45 cdc
#
# See docs/deploy.md.  tests/integration/test_packaging.py checks that the
# runtime stage installs a package for every library `ldd` lists.

FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY Makefile ./
COPY src src
RUN make -j"$(nproc)" WERROR=1 all

FROM debian:bookworm-slim
# Runtime libraries of build/release/cdc, CA certificates for TLS to
# databases and webhooks, and curl for the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      curl \
      libcurl4 \
      libmariadb3 \
      libnats3.4 \
      librdkafka1 \
      libpq5 \
      libsnappy1v5 \
      libsqlite3-0 \
      libssl3 \
      libyaml-0-2 \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 cdc \
 && useradd --system --uid 10001 --gid cdc --home-dir /var/lib/cdc --no-create-home \
      --shell /usr/sbin/nologin cdc \
 && install -d -o cdc -g cdc -m 0750 /var/lib/cdc \
 && install -d -m 0755 /etc/cdc
COPY --from=build /src/build/release/cdc /usr/local/bin/cdc
COPY examples/platform-kubernetes.yaml /etc/cdc/platform.yaml

USER 10001:10001
WORKDIR /var/lib/cdc
VOLUME ["/var/lib/cdc"]
EXPOSE 8080
# Liveness only (the process answers); /readyz tells whether it streams.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${CDC_HEALTH_PORT:-8080}/healthz" || exit 1
ENTRYPOINT ["cdc"]
CMD ["run", "/etc/cdc/pipeline.yaml", "--platform-config", "/etc/cdc/platform.yaml"]
