# syntax=docker/dockerfile:1.7
# The api service's image, in stages:
#   chef     the Rust toolchain with cargo-chef, shared by the build stages
#   planner  reduces the workspace to a recipe of its dependencies
#   builder  builds the dependencies (cached until Cargo.lock changes), then
#            the api and loadgen binaries with the command CI runs natively
#   test     runs the test suite: docker build --target test .
#   runtime  the default: the two binaries on distroless, as a non-root user

ARG RUST_VERSION=1.95

# --- chef: toolchain and cargo-chef, pinned by crate version ---------------
FROM rust:${RUST_VERSION}-bookworm AS chef
WORKDIR /src
RUN cargo install cargo-chef --locked --version 0.1.78

# --- planner: the dependency recipe, which changes only with manifests ------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- builder: dependencies in their own layer, then the service -------------
FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The registry and the target folder are BuildKit caches shared by every
# cargo step (same ids), so a rebuild recompiles only what changed.
RUN --mount=type=cache,id=cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=api-target,target=/src/target,sharing=locked \
    cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
# The commit the image is built from; .git is not in the build context.
ARG GIT_REVISION=unknown
ENV GIT_REVISION=${GIT_REVISION}
# The binary is copied out of the cached target folder, which does not
# persist in the image layer.
RUN --mount=type=cache,id=cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=api-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p api -p loadgen \
    && install -D --mode=0755 target/release/api /out/usr/local/bin/api \
    && install -D --mode=0755 target/release/loadgen /out/usr/local/bin/loadgen \
    && install -d --mode=0750 /out/var/lib/api

# --- test: the README's test command, with promtool for the metrics lint ----
FROM builder AS test
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus=2.42.0+ds-5+deb12u1 \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,id=cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=api-target,target=/src/target,sharing=locked \
    cargo test --workspace --locked

# --- runtime: distroless with glibc, no shell, uid 65532 --------------------
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="api" \
      org.opencontainers.image.description="A users API on SQLite, instrumented for Prometheus and Grafana" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=builder /out/usr/local/bin/api /out/usr/local/bin/loadgen /usr/local/bin/
COPY --from=builder --chown=65532:65532 /out/var/lib/api /var/lib/api
ENV DATABASE_URL=sqlite:///var/lib/api/api.db \
    LOG_FORMAT=json \
    PORT=8000
USER 65532:65532
# The public port: the API, its health checks and /metrics.
EXPOSE 8000
VOLUME ["/var/lib/api"]
# The image has no shell or curl; the binary probes its own /health.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/api", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/api"]
CMD ["serve"]
