#!/usr/bin/env bash
# Builds every image docker-compose.yml needs, without any registry.
#
# No image is pulled: a base image is assembled from this machine's own files
# (the dynamic loader and the shared libraries `ldd` lists for merklekv,
# mosquitto and mosquitto_sub, plus minimal /etc files) and loaded with
# `docker import`; the two runtime images are then built on top of it:
#
#   $MERKLEKV_IMAGE   (default merklekv:latest)          Dockerfile.runtime
#   $MOSQUITTO_IMAGE  (default merklekv-mosquitto:offline) tests/cluster/mosquitto.Dockerfile
#
# Inputs (environment):
#   MERKLEKV_BINARY  merklekv binary to package as is; unset: target/release/merklekv,
#                    brought up to date with `cargo build --release --locked` first.
#   MOSQUITTO_BIN    broker binary; default: `command -v mosquitto` or /usr/sbin/mosquitto.
#   MERKLEKV_BASE_IMAGE  tag of the imported base (default merklekv-base:offline).
#
# mosquitto_sub (the broker's healthcheck) comes from the host when installed,
# otherwise from Debian's mosquitto-clients package fetched with
# `apt-get download` (no installation) into a cache directory.
#
# Usage: bash tests/cluster/images.sh          (prints the image names at the end)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

MERKLEKV_IMAGE="${MERKLEKV_IMAGE:-merklekv:latest}"
MOSQUITTO_IMAGE="${MOSQUITTO_IMAGE:-merklekv-mosquitto:offline}"
BASE_IMAGE="${MERKLEKV_BASE_IMAGE:-merklekv-base:offline}"
BINARY="${MERKLEKV_BINARY:-$ROOT/target/release/merklekv}"
CACHE="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/merklekv-cluster"

log() { echo "images.sh: $*" >&2; }
die() { echo "images.sh: error: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker is not installed"

# --- the merklekv binary --------------------------------------------------
if [ -z "${MERKLEKV_BINARY:-}" ]; then
  # Builds when missing or stale; a no-op (seconds) when up to date.
  log "cargo build --release --locked --bin merklekv"
  cargo build --release --locked --bin merklekv >&2
fi
[ -x "$BINARY" ] || die "no merklekv binary at $BINARY"

# --- the broker and its healthcheck client --------------------------------
MOSQUITTO="${MOSQUITTO_BIN:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}"
[ -x "$MOSQUITTO" ] || die "mosquitto not found (apt-get install mosquitto, or set MOSQUITTO_BIN)"

EXTRA_LIB_DIRS=""
MOSQUITTO_SUB=""
resolve_mosquitto_sub() {
  if command -v mosquitto_sub >/dev/null 2>&1; then
    MOSQUITTO_SUB="$(command -v mosquitto_sub)"
    return
  fi
  local debs="$CACHE/debs" tree="$CACHE/clients-root"
  if [ ! -x "$tree/usr/bin/mosquitto_sub" ]; then
    command -v apt-get >/dev/null 2>&1 \
      || die "mosquitto_sub is missing and apt-get is unavailable (install mosquitto-clients)"
    rm -rf "$debs" "$tree"
    mkdir -p "$debs" "$tree"
    log "fetching Debian's mosquitto-clients (apt-get download, not installed)"
    (cd "$debs" && apt-get download -q mosquitto-clients libmosquitto1 libcjson1 >&2) \
      || die "apt-get download mosquitto-clients failed (run apt-get update, or install mosquitto-clients)"
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$tree"; done
  fi
  MOSQUITTO_SUB="$tree/usr/bin/mosquitto_sub"
  local dir
  for dir in "$tree"/usr/lib/*-linux-gnu* "$tree"/lib/*-linux-gnu*; do
    [ -d "$dir" ] && EXTRA_LIB_DIRS="${EXTRA_LIB_DIRS:+$EXTRA_LIB_DIRS:}$dir"
  done
  return 0
}
resolve_mosquitto_sub

# --- staging ---------------------------------------------------------------
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/merklekv-images.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
ROOTFS="$STAGE/rootfs"
mkdir -p "$ROOTFS"/{etc,tmp,lib64,usr/local/bin}
chmod 1777 "$ROOTFS/tmp"

# Copies every shared library `ldd` resolves for the given binaries (and the
# loader) into the rootfs at the same path.
copy_libraries() {
  local bin line lib dest
  for bin in "$@"; do
    while IFS= read -r line; do
      case "$line" in
        *"not found"*) die "ldd: $bin: $line" ;;
      esac
      lib="$(echo "$line" | awk '{ if ($2 == "=>") print $3; else if ($1 ~ /^\//) print $1 }')"
      [ -n "$lib" ] && [ -e "$lib" ] || continue
      # Libraries unpacked from a fetched package go where Debian puts them.
      dest="${lib#"$CACHE/clients-root"}"
      mkdir -p "$ROOTFS$(dirname "$dest")"
      cp -L "$lib" "$ROOTFS$dest"
    done < <(LD_LIBRARY_PATH="$EXTRA_LIB_DIRS" ldd "$bin")
  done
}
copy_libraries "$BINARY" "$MOSQUITTO" "$MOSQUITTO_SUB"

cat >"$ROOTFS/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/usr/sbin/nologin
merklekv:x:10001:10001:MerkleKV:/data:/usr/sbin/nologin
mosquitto:x:1883:1883:Mosquitto:/mosquitto:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat >"$ROOTFS/etc/group" <<'GROUP'
root:x:0:
merklekv:x:10001:
mosquitto:x:1883:
nogroup:x:65534:
GROUP
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$ROOTFS/etc/nsswitch.conf"
# Every directory a library was copied to (multiarch paths differ per CPU).
(cd "$ROOTFS" && find . -path ./etc -prune -o -name '*.so*' -type f -printf '/%h\n' | sed 's|^/\./|/|' | sort -u) \
  >"$ROOTFS/etc/ld.so.conf"
# The loader's cache, so libraries are found without LD_LIBRARY_PATH.
if command -v ldconfig >/dev/null 2>&1; then
  ldconfig -r "$ROOTFS" || log "ldconfig -r failed; relying on the loader's default paths"
elif [ -x /sbin/ldconfig ]; then
  /sbin/ldconfig -r "$ROOTFS" || log "ldconfig -r failed; relying on the loader's default paths"
fi

# Images made here carry this label, so the copies they replace can be
# pruned without touching anyone else's images.
LABEL="org.merklekv.offline-build=1"

# docker build, quiet unless it fails (the legacy builder's notices go away).
build() {
  local out="$STAGE/build.log"
  if ! docker build -q --label "$LABEL" "$@" >"$out" 2>&1; then
    cat "$out" >&2
    die "docker build $* failed"
  fi
}

log "importing the base image $BASE_IMAGE ($(du -sh "$ROOTFS" | cut -f1) of libraries)"
tar --numeric-owner --owner=0 --group=0 -C "$ROOTFS" -cf - . \
  | docker import --change "LABEL $LABEL" --message "merklekv offline base (host libraries)" \
      - "$BASE_IMAGE" >/dev/null

# --- merklekv image (Dockerfile.runtime, same file users build with) -----
CTX="$STAGE/merklekv"
mkdir -p "$CTX/target/release" "$CTX/configs/docker"
cp "$BINARY" "$CTX/target/release/merklekv"
# The release profile keeps line tables (debug = 1); the image doesn't need them.
if command -v strip >/dev/null 2>&1; then strip --strip-debug "$CTX/target/release/merklekv"; fi
cp configs/docker/standalone.toml "$CTX/configs/docker/"
log "building $MERKLEKV_IMAGE"
build -f Dockerfile.runtime --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$MERKLEKV_IMAGE" "$CTX"

# --- mosquitto image -------------------------------------------------------
CTX="$STAGE/mosquitto"
mkdir -p "$CTX"
cp -L "$MOSQUITTO" "$CTX/mosquitto"
cp -L "$MOSQUITTO_SUB" "$CTX/mosquitto_sub"
cp configs/docker/mosquitto.conf "$CTX/mosquitto.conf"
log "building $MOSQUITTO_IMAGE"
build -f tests/cluster/mosquitto.Dockerfile --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  -t "$MOSQUITTO_IMAGE" "$CTX"

# Earlier builds' images, now untagged.
docker image prune -f --filter "label=$LABEL" >/dev/null 2>&1 || true

echo "MERKLEKV_IMAGE=$MERKLEKV_IMAGE"
echo "MOSQUITTO_IMAGE=$MOSQUITTO_IMAGE"
