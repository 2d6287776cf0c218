# syntax=docker/dockerfile:1
# flagsync daemon image: a static binary on an empty base, running as uid 65532.
#   docker build -t flagsync/flagsync:dev .
#   docker run --rm -p 8080:8080 -v "$PWD/examples/quickstart:/etc/flagsync:ro" \
#     flagsync/flagsync:dev run --config /etc/flagsync/flagsync.yaml

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first so source edits do not re-download modules.
COPY go.mod go.sum ./
# The lean modules the daemon module replaces with these directories (docs/ARCHITECTURE.md).
COPY flagset/go.mod flagset/go.sum flagset/
COPY transport/go.mod transport/go.sum transport/
COPY provider/go.mod provider/go.sum provider/
COPY analytics/go.mod analytics/go.sum analytics/
COPY internal/testsvc/go.mod internal/testsvc/go.sum internal/testsvc/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go build -trimpath -ldflags "-s -w" -o /out/flagsync ./cmd/flagsync
# A passwd/group entry so tools in the cluster show a name for uid 65532, and the
# writable directories the daemon uses (read-only root filesystem otherwise).
RUN mkdir -p /out/etc /out/var/run/flagsync /out/tmp \
 && echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > /out/etc/passwd \
 && echo 'nonroot:x:65532:' > /out/etc/group \
 && chown 65532:65532 /out/var/run/flagsync \
 && chmod 1777 /out/tmp

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /usr/share/zoneinfo /usr/share/zoneinfo
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build --chown=65532:65532 /out/var/run/flagsync /var/run/flagsync
COPY --from=build /out/tmp /tmp
COPY --from=build /out/flagsync /usr/local/bin/flagsync
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/flagsync"]
CMD ["run", "--config", "/etc/flagsync/flagsync.yaml"]
