# syntax=docker/dockerfile:1
# Multi-stage build: a static paygate binary on a small non-root runtime image.
# .ci/build-image.sh runs these same build steps outside Docker in CI (there is
# no Docker engine there), so the recipe cannot rot unnoticed.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/paygate ./cmd/paygate
RUN /out/paygate check-config -config /src/config.yaml

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/paygate /usr/local/bin/paygate
COPY --from=build /src/config.yaml /etc/paygate/config.yaml
# Config and data are mounts: /etc/paygate (read-only) and /var/lib/paygate.
WORKDIR /var/lib/paygate
USER nonroot:nonroot
ENV PAYGATE_LISTEN=0.0.0.0:8080 PAYGATE_STORE_PATH=/var/lib/paygate/paygate.db
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/usr/local/bin/paygate", "healthcheck", "-url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/paygate"]
CMD ["serve", "-config", "/etc/paygate/config.yaml"]
