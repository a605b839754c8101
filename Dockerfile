# MerkleKV container image, built from source.
#
#   docker build -t merklekv:latest .
#   docker run -p 7379:7379 -v merklekv-data:/data merklekv:latest
#
# Stage 1 compiles the release binary with the versions pinned in Cargo.lock
# (--locked); protoc comes from the protoc-bin-vendored crate, so the builder
# needs nothing beyond a Rust toolchain and a C linker. Stage 2 is a slim
# Debian with the binary, a default configuration and an unprivileged user.
# Without network inside `docker build`, or without any registry, build the
# binary on the host and use Dockerfile.runtime (docs/operations.md).
#
# Build arguments:
#   RUST_IMAGE     builder image (default rust:1-bookworm; needs Rust >= 1.85)
#   RUNTIME_IMAGE  runtime base (default debian:bookworm-slim; same glibc
#                  generation as the builder)
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Dependencies first, so editing src/ does not refetch them (the manifest
# names benches/hot_paths.rs, so that file comes along; loadgen/ is the
# load generator, a member of the workspace).
COPY Cargo.toml Cargo.lock ./
COPY benches benches
COPY loadgen loadgen
RUN cargo fetch --locked
COPY build.rs ./
COPY proto proto
COPY src src
RUN cargo build --release --locked --bin merklekv \
 && cp target/release/merklekv /usr/local/bin/merklekv \
 && strip --strip-debug /usr/local/bin/merklekv

FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 10001 merklekv \
 && useradd --system --uid 10001 --gid merklekv --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin merklekv \
 && mkdir -p /data /etc/merklekv \
 && chown merklekv:merklekv /data
COPY --from=builder /usr/local/bin/merklekv /usr/local/bin/merklekv
COPY configs/docker/standalone.toml /etc/merklekv/merklekv.toml
# Logs go to stderr (docker logs) without terminal colour codes.
ENV NO_COLOR=1
USER merklekv
WORKDIR /data
# client (text protocol + RESP2), anti-entropy gRPC, Prometheus metrics
EXPOSE 7379 7380 9379
VOLUME ["/data"]
# Healthy when the client port answers a GET (the binary's own load
# generator exits non-zero when the node refuses or does not reply).
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/merklekv", "bench", "--host", "127.0.0.1", "--port", "7379", "--clients", "1", "--requests", "1", "--workload", "get", "--keyspace", "1", "--key-prefix", "healthcheck:", "--timeout-ms", "3000", "--quiet"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/merklekv"]
CMD ["--config", "/etc/merklekv/merklekv.toml"]
