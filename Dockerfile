# syntax=docker/dockerfile:1
# phonepipe: one static binary, every role (see docs/BACKENDS.md).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" \
      -o /out/phonepipe ./cmd/phonepipe

FROM alpine:3.22
# wget (busybox) is for health checks; nothing else is needed at run time.
RUN apk add --no-cache ca-certificates tzdata \
 && adduser -D -H -u 10001 phonepipe \
 && mkdir -p /data && chown phonepipe /data
COPY --from=build /out/phonepipe /usr/local/bin/phonepipe
USER 10001:10001
ENV PHONEPIPE_ADDR=0.0.0.0:8080 \
    PHONEPIPE_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD wget -q -O /dev/null http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["phonepipe"]
CMD ["serve"]
