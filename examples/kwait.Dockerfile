# kwait's own image: just the static binary, for `COPY --from=kwait` in
# other images (Dockerfile.example) and for Kubernetes init containers.
# The build context is dist/, as scripts/release writes it (kwait-x86_64,
# kwait-aarch64, SHA256SUMS):
#
#   scripts/release
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/kwait --push -f examples/kwait.Dockerfile dist
#   docker build -t kwait -f examples/kwait.Dockerfile dist     # this machine's amd64 only
#
# buildx sets TARGETARCH (amd64, arm64) for each platform, and each
# platform's image gets its own binary, so `COPY --from=kwait /kwait` in a
# multi-arch image picks the right one. A plain `docker build` without
# BuildKit sets no TARGETARCH: the amd64 binary. TARGETARCH is declared
# without a default on purpose: a default would win over the value buildx
# passes (docker/buildx#510) and put the amd64 binary into the arm64 image.
ARG TARGETARCH

FROM scratch AS kwait-amd64
COPY kwait-x86_64 /kwait

FROM scratch AS kwait-arm64
COPY kwait-aarch64 /kwait

FROM kwait-${TARGETARCH:-amd64}
ENTRYPOINT ["/kwait"]
