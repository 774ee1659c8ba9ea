# The distribute CLI in a small image; used by docker-compose.yml's "go" service.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/distribute ./cmd/distribute

FROM debian:bookworm-slim
COPY --from=build /out/distribute /usr/local/bin/distribute
COPY test/scenario /scenario
EXPOSE 4369 8080
CMD ["sh", "/scenario/cluster.sh", "go"]
