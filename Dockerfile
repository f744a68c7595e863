# syntax=docker/dockerfile:1

# The Common Grounds server as a small, static, non-root image.
#
#   docker build -t commongrounds .
#   docker run --rm -p 8080:8080 -e DATABASE_URL=... -e JWT_KEYS=... -e PHONE_PEPPERS=... commongrounds
#
# The image has no shell: health is checked from outside (the proxy polls /readyz; see
# docker-compose.yml and deploy/Caddyfile).

ARG GO_VERSION=1.26

# ---- build: one static binary; modules and build results stay cached between builds --------
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src

# Dependencies first, so that a change to the code does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/commongrounds ./cmd/commongrounds

# ---- run: distroless static (CA certificates, time zones, /etc/passwd; no shell) ------------
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/commongrounds /usr/local/bin/commongrounds

# 65532 is "nonroot" in the base image; a numeric user lets orchestrators verify runAsNonRoot.
USER 65532:65532
# The working directory is the user's home, writable, for SECRETS_FILE when secrets are not set.
WORKDIR /home/nonroot

ENV HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
# The server shuts down gracefully on SIGTERM: sockets close with 1012 after a flush.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/commongrounds"]
CMD ["serve"]
