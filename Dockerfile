# syntax=docker/dockerfile:1
#
# paygate's container image: a static binary on distroless, running as uid
# 65532 (distroless "nonroot"), with CA certificates for the providers and
# WeChat Pay.
#
#   docker build --build-arg VERSION=$(git describe --always) -t paygate .
#   docker run --stop-timeout 40 -p 8080:8080 -e OPENROUTER_API_KEY -e PAYGATE_CLIENT_KEY \
#     -v paygate-data:/var/lib/paygate paygate
#   docker run --stop-timeout 40 -p 8080:8080 -e OPENROUTER_API_KEY -e PAYGATE_CLIENT_KEY \
#     -v paygate-data:/var/lib/paygate -v "$PWD/myconf:/etc/paygate:ro" paygate
#
# PAYGATE_CLIENT_KEY: the shipped config.yaml falls back to the public
# development key sk-paygate-dev, and the image listens on 0.0.0.0:8080, so
# without it anyone who reaches the port spends the provider keys you pass in.
# Export one of at least 16 characters first (a shorter one is refused on this
# address): export PAYGATE_CLIENT_KEY=sk-$(openssl rand -hex 16).
#
# --stop-timeout: docker stop sends SIGKILL 10 s after SIGTERM unless told
# otherwise, and paygate drains for up to server.shutdown_timeout (30 s), then
# closes in up to 2 s more. No Dockerfile instruction sets it.
#
# Mounts: /etc/paygate (config, read-only; the image ships config.yaml there
# so it runs as it is) and /var/lib/paygate (data: the embedded store; owned by
# 65532 so a fresh named volume is writable without a chown at start).
#
# scripts/build-image.sh runs this file outside Docker (CI has no Docker
# engine): the build stage's RUN lines verbatim, then checks of the runtime
# stage (COPY sources, user, data dir, health check, entry point), so the
# recipe cannot rot. It understands FROM, ARG, ENV, WORKDIR, COPY and RUN in
# the build stage and fails on anything else; keep it that way.

# go.mod's Go exactly: the golang image sets GOTOOLCHAIN=local, so a cached
# older golang:1.26 would refuse go.mod's "go 1.26.8" rather than fetch it.
FROM golang:1.26.8 AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
ARG VERSION=dev
# Static (no libc in the runtime image), reproducible paths, no symbol table.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/paygate ./cmd/paygate
# The shipped example config must load, or there is no image.
RUN /out/paygate check-config -config config.yaml
# The data directory, copied into the runtime image owned by 65532.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/paygate /usr/local/bin/paygate
COPY --from=build /src/config.yaml /etc/paygate/config.yaml
COPY --from=build --chown=65532:65532 /out/data /var/lib/paygate
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
WORKDIR /var/lib/paygate
# config.yaml reads ${PAYGATE_LISTEN:-127.0.0.1:8080}: in a container the bot
# is elsewhere, so listen on every interface. The admin listener stays on
# loopback unless PAYGATE_ADMIN_LISTEN is set.
ENV PAYGATE_LISTEN=0.0.0.0:8080 \
    PAYGATE_STORE_PATH=/var/lib/paygate/paygate.db
VOLUME ["/var/lib/paygate"]
EXPOSE 8080
# distroless has no shell or curl: the binary checks itself, on the
# server.listen of the config serve runs with (read with the container's
# environment, so PAYGATE_LISTEN or a mounted config moving the port moves the
# check too). Run serve with another config file, and give the health check
# that file as well.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/paygate", "healthcheck", "-config", "/etc/paygate/config.yaml"]
ENTRYPOINT ["/usr/local/bin/paygate"]
CMD ["serve", "-config", "/etc/paygate/config.yaml"]
