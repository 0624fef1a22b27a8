# Build: docker build -t smsdesk .
# Run:   docker run -p 3000:3000 -v smsdesk-data:/data smsdesk
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
# benches/ is not built, but Cargo.toml names its files and cargo refuses a manifest without them.
COPY benches ./benches
COPY src ./src
COPY migrations ./migrations
COPY static ./static
# engineioxide as patched in Cargo.toml's [patch.crates-io] (vendor/README.md).
COPY vendor ./vendor
RUN cargo build --release --locked && strip target/release/smsdesk

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data --create-home smsdesk
COPY --from=build /src/target/release/smsdesk /usr/local/bin/smsdesk
USER smsdesk
WORKDIR /data
ENV HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_URL=sqlite:///data/smsdesk.db
EXPOSE 3000
VOLUME ["/data"]
ENTRYPOINT ["smsdesk"]
