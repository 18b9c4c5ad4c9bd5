# Build stage: compile the release binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY mappings ./mappings
RUN cargo build --release --locked

# Runtime stage: the binary and the mapping tables, as a non-root user.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/crossgate --create-home crossgate
COPY --from=build /src/target/release/crossgate /usr/local/bin/crossgate
COPY mappings /etc/crossgate/mappings
USER crossgate
WORKDIR /var/lib/crossgate
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["crossgate"]
CMD ["serve", "--config", "/etc/crossgate/crossgate.toml"]
