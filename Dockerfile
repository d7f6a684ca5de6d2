# syntax=docker/dockerfile:1
#
# qingcloud-grpc server image: a static Go binary on distroless (no shell, no package manager; CA
# certificates included for HTTPS to api.qingcloud.com), running as the unprivileged user nonroot
# (uid/gid 65532).
#
#   docker build -t qingcloud-grpc .
#   docker run -p 9090:9090 -p 8080:8080 -e QINGCLOUD_ACCESS_KEY=... -e QINGCLOUD_SECRET_KEY=... qingcloud-grpc
#
# No Docker engine runs on our CI machines: scripts/image-build.sh runs the build stage's steps as plain
# commands and checks the result (static, runs), so keep the two in step.
#
# Listening addresses: the default command binds 0.0.0.0 so that the ports can be published. The
# server refuses to bind a non-loopback address without caller authentication, so configure bearer
# tokens (stored hashed, mapped to credential profiles; see the README's configuration section) in a
# config file mounted into the container (e.g. -config /etc/qingcloud-grpc/config.yaml) before running
# this image anywhere. Arguments given to `docker run` replace the default command, so repeat
# -grpc-addr/-http-addr when you pass other flags. Keep secrets out of arguments: QINGCLOUD_SECRET_KEY in
# the environment or -secret-key-file pointing at a mounted file.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that the download layer is cached while only sources change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static (no cgo, no libc), reproducible paths, no symbol tables. The binary must run on distroless
# static, which has no dynamic loader.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/server ./cmd/server
# Fail the build here, not at run time, if it is not a static executable that starts.
RUN go version -m /out/server | grep -q 'CGO_ENABLED=0' \
    && { /out/server -h >/dev/null 2>&1; test $? -lt 126; }

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="qingcloud-grpc" \
      org.opencontainers.image.description="gRPC and REST facade over the QingCloud IaaS API" \
      org.opencontainers.image.source="https://github.com/qingcloud-grpc/qingcloud-grpc"
COPY --from=build /out/server /server
USER nonroot:nonroot
# 9090: gRPC (health checking and reflection included). 8080: REST/JSON, GET /healthz, GET /openapi.json.
EXPOSE 9090 8080
# The server's own gRPC health check client: distroless has no shell or curl. It dials 127.0.0.1:9090.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["/server", "healthcheck"]
ENTRYPOINT ["/server"]
CMD ["-grpc-addr", "0.0.0.0:9090", "-http-addr", "0.0.0.0:8080"]
