# kwait's own image: just the static binary, for `COPY --from=kwait` in
# other images (Dockerfile.example) and for Kubernetes init containers.
#   cargo build --release --target x86_64-unknown-linux-musl
#   docker build -t kwait -f examples/kwait.Dockerfile target/x86_64-unknown-linux-musl/release
FROM scratch
COPY kwait /kwait
ENTRYPOINT ["/kwait"]
