# crossgate's container image. `docker run -p 8080:8080 crossgate` serves the demo on the built-in
# simulator; a mounted config runs for real (README, "Docker"). The build context is filtered by
# .dockerignore.

# Build stage: compile the release binary from the whole source tree (the manifest names benches and
# other targets, so the tree goes in whole rather than file by file).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin crossgate

# Runtime stage: the binary and the mapping tables, as an unprivileged user with a fixed uid.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group --create-home --home-dir /var/lib/crossgate \
       --shell /usr/sbin/nologin crossgate
COPY --from=build /src/target/release/crossgate /usr/local/bin/crossgate
COPY mappings /etc/crossgate/mappings
USER 10001:10001
# The audit trail and any state live here: mount a volume (owned by uid 10001) to keep them.
WORKDIR /var/lib/crossgate
VOLUME ["/var/lib/crossgate"]
# Every interface inside the container, so that `-p` reaches it. An empty CROSSGATE_LISTEN keeps the
# mounted config's own `listen`; CROSSGATE_CONFIG names that config (none: the demo).
ENV CROSSGATE_LISTEN=0.0.0.0:8080
EXPOSE 8080
# The binary checks itself, on the address and scheme serve uses (same environment, same config).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["crossgate", "health"]
ENTRYPOINT ["crossgate"]
CMD ["serve"]
