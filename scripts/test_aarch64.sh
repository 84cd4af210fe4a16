#!/usr/bin/env bash
# Build and test the phone runtime for aarch64-unknown-linux-gnu without ARM hardware, and report
# the stripped size of the arm64 `mobile`-profile library.
#
# rustup cannot add targets on this machine, so this uses Debian sid's own Rust (which ships an
# arm64 standard library, libstd-rust-dev:arm64) inside a debootstrap chroot, links with
# aarch64-linux-gnu-gcc and runs the test binaries under qemu-user as a Cortex-A53
# (see the last section of DESIGN.md). Timings under qemu mean nothing; correctness and sizes do.
#
# Needs root (debootstrap, mount, chroot). Steps:
#   1. set up the chroot at $TIERFORGE_SID (default /opt/sid) if missing (idempotent);
#   2. bind-mount the repo (read-only), a writable target dir ($REPO/target/aarch64-sid) and the
#      host's cargo registry into it, then
#      cargo test --release --offline -p <each of $PACKAGES> --target aarch64-unknown-linux-gnu;
#   3. cargo build --profile mobile -p runtime (skipped with a note if [profile.mobile] is absent)
#      and print the sizes of libruntime.so / libruntime.a, stripped with aarch64-linux-gnu-strip
#      into copies;
#   4. if examples/c/app_startup.c exists, compile it against the arm64 libruntime and run it
#      under qemu on the bundle named by $C_CLIENT_BUNDLE (skipped with a note if unset);
#   5. print a summary; exit non-zero if any test, build or the C client failed.
# Everything mounted is unmounted on exit, failure or Ctrl-C (trap).
#
# Environment:
#   PACKAGES         crates to test, space- or comma-separated (default: runtime)
#   TEST_ARGS        extra arguments for the test binaries (after `--`), e.g. a name filter
#   TIERFORGE_SID    chroot directory (default /opt/sid)
#   TIERFORGE_MIRROR Debian mirror for debootstrap (default http://deb.debian.org/debian)
#   NICE             niceness of the builds (default 10)
#   CARGO_BUILD_JOBS passed through to cargo when set
#   C_CLIENT_BUNDLE  bundle (file or directory) given to the C client as its first argument
#   C_CLIENT_LDLIBS  libraries to link the C client with (default: what Rust's std needs)
#   MOBILE_CRATE     crate built in step 3 and linked by the C client (default: runtime)
#   SKIP_MOBILE=1    skip step 3;  SKIP_C=1 skip step 4
#
# Examples:
#   sudo scripts/test_aarch64.sh
#   sudo PACKAGES="device-profiles runtime" scripts/test_aarch64.sh
#   sudo C_CLIENT_BUNDLE=runs/full-bundle scripts/test_aarch64.sh
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SID=${TIERFORGE_SID:-/opt/sid}
SID=${SID%/}
MIRROR=${TIERFORGE_MIRROR:-http://deb.debian.org/debian}
TARGET=aarch64-unknown-linux-gnu
NICE=${NICE:-10}
HOST_CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
HOST_TARGET_DIR=$REPO/target/aarch64-sid           # ignored by git (/target)
LOGDIR=$HOST_TARGET_DIR/logs
QEMU_RUN="qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu"
APT_OPTS=(-o Acquire::Check-Valid-Until=false)
# Paths inside the chroot.
C_REPO=/work/tierforge
C_TARGET=/work/target
C_REGISTRY=/root/.cargo/registry
C_BUNDLE_DIR=/work/c-bundle
MOBILE_CRATE=${MOBILE_CRATE:-runtime}
LIB=lib${MOBILE_CRATE//-/_}                        # libruntime

die() { echo "test_aarch64: error: $*" >&2; exit 2; }
note() { echo "test_aarch64: $*"; }
step() { echo; echo "== $* =="; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, mount and chroot need it): sudo $0"
[ -f "$REPO/Cargo.toml" ] || die "no Cargo.toml in $REPO"

# One run at a time: the mounts below are shared state.
LOCK=/run/lock/tierforge-aarch64.lock
[ -d /run/lock ] && [ -w /run/lock ] || LOCK=/tmp/tierforge-aarch64.lock
exec 9>"$LOCK"
flock -n 9 || die "another test_aarch64.sh run holds $LOCK"

# ---- mounts, always undone --------------------------------------------------------------------
MOUNTED=()
cleanup() {
  local i mp
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    mp=${MOUNTED[i]}
    umount "$mp" 2>/dev/null || umount -l "$mp" || echo "test_aarch64: could not unmount $mp" >&2
  done
  MOUNTED=()
}
trap cleanup EXIT
trap 'echo "test_aarch64: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM HUP

# Unmount leftovers of a run that was killed before its trap ran (we hold the lock, so no other
# run owns them). Deepest first.
unmount_stale() {
  local mp
  for mp in $C_BUNDLE_DIR $C_REGISTRY $C_TARGET $C_REPO /sys /dev /proc; do
    while mountpoint -q "$SID$mp" 2>/dev/null; do
      note "unmounting stale $SID$mp"
      umount "$SID$mp" 2>/dev/null || umount -l "$SID$mp"
    done
  done
}

# bind SRC DST [ro]
bind() {
  mkdir -p "$2"
  mount --bind "$1" "$2"
  MOUNTED+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}
mount_system() {
  mountpoint -q "$SID/proc" || { mount -t proc proc "$SID/proc"; MOUNTED+=("$SID/proc"); }
  mountpoint -q "$SID/dev" || bind /dev "$SID/dev"
  mountpoint -q "$SID/sys" || bind /sys "$SID/sys" ro
}

# Run a command in the chroot with a clean environment.
in_sid() {
  chroot "$SID" /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    "$@"
}

if [ -d "$SID" ] && [ "$SID" != / ]; then unmount_stale; fi

# ---- 1. the chroot ----------------------------------------------------------------------------
T0=$SECONDS
step "1. chroot at $SID"
if [ -x "$SID/usr/bin/apt-get" ] && [ ! -d "$SID/debootstrap" ]; then
  note "base system present"
else
  if ! command -v debootstrap >/dev/null; then
    note "installing debootstrap"
    apt-get install -y debootstrap >/dev/null || die "apt-get install debootstrap failed"
  fi
  [ -d "$SID/debootstrap" ] && note "$SID holds an unfinished debootstrap; retrying (rm -rf $SID if it keeps failing)"
  mkdir -p "$SID" "$LOGDIR"
  note "debootstrap sid into $SID from $MIRROR (a few minutes; log: $LOGDIR/debootstrap.log)"
  if ! nice -n "$NICE" debootstrap --variant=minbase --arch=amd64 sid "$SID" "$MIRROR" \
      >"$LOGDIR/debootstrap.log" 2>&1; then
    tail -n 5 "$LOGDIR/debootstrap.log" >&2
    die "debootstrap failed: cannot reach $MIRROR? (set TIERFORGE_MIRROR; full log: $LOGDIR/debootstrap.log)"
  fi
fi

have_toolchain() {
  [ -x "$SID/usr/bin/cargo" ] && [ -x "$SID/usr/bin/rustc" ] &&
    compgen -G "$SID/usr/lib/rustlib/$TARGET/lib/libstd-*.rlib" >/dev/null &&
    [ -x "$SID/usr/bin/aarch64-linux-gnu-gcc" ] && [ -x "$SID/usr/bin/aarch64-linux-gnu-strip" ] &&
    [ -x "$SID/usr/bin/qemu-aarch64" ] && [ -e "$SID/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1" ]
}
mount_system
if have_toolchain; then
  note "toolchain present"
else
  mkdir -p "$LOGDIR"
  note "installing rustc, cargo, libstd-rust-dev:arm64, the aarch64 gcc and qemu-user in the chroot (log: $LOGDIR/apt.log)"
  cp -L /etc/resolv.conf "$SID/etc/resolv.conf" 2>/dev/null || true
  if ! { in_sid dpkg --add-architecture arm64 &&
         in_sid DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" update &&
         in_sid DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y --no-install-recommends \
           rustc cargo libstd-rust-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
           ca-certificates; } >"$LOGDIR/apt.log" 2>&1; then
    tail -n 15 "$LOGDIR/apt.log" >&2
    die "installing the toolchain in the chroot failed (mirror unreachable? full log: $LOGDIR/apt.log)"
  fi
  have_toolchain || die "toolchain still incomplete after apt-get (see $LOGDIR/apt.log)"
fi
RUSTC_V=$(in_sid rustc -V)
note "$RUSTC_V, $(in_sid cargo -V), $(in_sid qemu-aarch64 -version | head -n 1)"
SETUP_S=$((SECONDS - T0))

# ---- 2. mounts and tests ----------------------------------------------------------------------
mkdir -p "$HOST_TARGET_DIR" "$LOGDIR"
[ -d "$HOST_CARGO_HOME/registry" ] || die "no cargo registry at $HOST_CARGO_HOME/registry (run cargo fetch on the host first)"
bind "$REPO" "$SID$C_REPO" ro
bind "$HOST_TARGET_DIR" "$SID$C_TARGET"
bind "$HOST_CARGO_HOME/registry" "$SID$C_REGISTRY"

CARGO_ENV=(
  CARGO_HOME=/root/.cargo CARGO_TARGET_DIR=$C_TARGET CARGO_TERM_COLOR=never
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=$QEMU_RUN"
  CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
  AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
)
for v in CARGO_BUILD_JOBS RUST_BACKTRACE RUST_LOG RUST_TEST_THREADS; do
  if [ -n "${!v:-}" ]; then CARGO_ENV+=("$v=${!v}"); fi
done
cargo_sid() { in_sid "${CARGO_ENV[@]}" /usr/bin/env --chdir=$C_REPO nice -n "$NICE" cargo "$@"; }

PKG_ARGS=()
PKG_LIST=()
for p in ${PACKAGES:-runtime}; do
  for q in ${p//,/ }; do PKG_ARGS+=(-p "$q"); PKG_LIST+=("$q"); done
done
[ ${#PKG_ARGS[@]} -gt 0 ] || die "PACKAGES is empty"
read -r -a TEST_ARGV <<<"${TEST_ARGS:-}"

step "2. cargo test --release -p ${PKG_LIST[*]} --target $TARGET (under qemu, cortex-a53)"
T0=$SECONDS
set +e
# Under qemu-user a test cannot build and exec an arm64 C/JNI client itself: those tests skip
# (TIERFORGE_SKIP_NATIVE_CLIENTS), and step 4 builds and runs the C client under qemu instead.
CARGO_ENV+=(TIERFORGE_SKIP_NATIVE_CLIENTS=1)
cargo_sid test --release --offline "${PKG_ARGS[@]}" --target $TARGET -- "${TEST_ARGV[@]}" 2>&1 |
  tee "$LOGDIR/test.log"
TEST_RC=${PIPESTATUS[0]}
set -e
TEST_S=$((SECONDS - T0))
read -r PASSED FAILED IGNORED SUITES < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i;
      if ($(i+1) ~ /^ignored/) g += $i }
    n++ } END { print p + 0, f + 0, g + 0, n + 0 }' "$LOGDIR/test.log")
ARCH_OK=""
# Check that what ran really is arm64: the newest test binary.
TBIN=$(find "$HOST_TARGET_DIR/$TARGET/release/deps" -maxdepth 1 -type f -executable ! -name '*.*' \
  -printf '%T@ %f\n' 2>/dev/null | sort -rn | awk 'NR == 1 {print $2}')
if [ -n "$TBIN" ]; then
  ARCH_OK=$(in_sid aarch64-linux-gnu-readelf -h "$C_TARGET/$TARGET/release/deps/$TBIN" 2>/dev/null |
    awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}' || true)
fi

# ---- 3. mobile-profile library size -----------------------------------------------------------
step "3. $LIB, --profile mobile, $TARGET"
MOBILE_RC=0
MOBILE_NOTE=""
LIBDIR=""
have_mobile() { grep -Eqs '^\[profile\.mobile\]' "$REPO/Cargo.toml" "$REPO/.cargo/config.toml"; }
if [ "${SKIP_MOBILE:-0}" = 1 ]; then
  MOBILE_NOTE="skipped (SKIP_MOBILE=1)"
elif ! have_mobile; then
  MOBILE_NOTE="skipped: no [profile.mobile] in Cargo.toml yet"
else
  T0=$SECONDS
  set +e
  cargo_sid build --profile mobile -p "$MOBILE_CRATE" --target $TARGET --offline 2>&1 | tee "$LOGDIR/mobile.log"
  MOBILE_RC=${PIPESTATUS[0]}
  set -e
  MOBILE_S=$((SECONDS - T0))
  if [ "$MOBILE_RC" != 0 ]; then
    MOBILE_NOTE="FAILED: cargo build --profile mobile (exit $MOBILE_RC, log $LOGDIR/mobile.log)"
  else
    LIBDIR=$TARGET/mobile
    MOBILE_NOTE="built in ${MOBILE_S}s"
  fi
fi
kib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }
SIZES=()
if [ -n "$LIBDIR" ]; then
  mkdir -p "$HOST_TARGET_DIR/stripped"
  for lib in $LIB.so $LIB.a; do
    f=$HOST_TARGET_DIR/$LIBDIR/$lib
    if [ ! -f "$f" ]; then
      SIZES+=("$lib: not built ($MOBILE_CRATE/Cargo.toml [lib] crate-type lacks $([ "$lib" = $LIB.so ] && echo cdylib || echo staticlib))")
      continue
    fi
    # A full strip of an archive drops the symbol table a linker needs: strip debug info only.
    if [ "$lib" = $LIB.a ]; then sflag=--strip-debug; else sflag=--strip-all; fi
    in_sid aarch64-linux-gnu-strip $sflag -o "$C_TARGET/stripped/$lib" "$C_TARGET/$LIBDIR/$lib"
    raw=$(stat -c %s "$f")
    st=$(stat -c %s "$HOST_TARGET_DIR/stripped/$lib")
    machine=$(in_sid aarch64-linux-gnu-readelf -h "$C_TARGET/$LIBDIR/$lib" 2>/dev/null |
      awk -F: '/Machine:/ && !m {gsub(/^ +/, "", $2); print $2; m = 1}' || true)
    SIZES+=("$lib: $st bytes ($(kib "$st") KiB) after strip $sflag; $raw bytes ($(kib "$raw") KiB) as built; ${machine:-?}")
  done
  printf '  %s\n' "${SIZES[@]}"
else
  note "$MOBILE_NOTE"
fi

# ---- 4. the C client --------------------------------------------------------------------------
step "4. C client examples/c/app_startup.c"
C_RC=0
C_NOTE=""
if [ "${SKIP_C:-0}" = 1 ]; then
  C_NOTE="skipped (SKIP_C=1)"
elif [ ! -f "$REPO/examples/c/app_startup.c" ]; then
  C_NOTE="skipped: examples/c/app_startup.c does not exist yet"
else
  # The mobile libraries if built, else release ones.
  CLIB=""
  for d in ${LIBDIR:+$LIBDIR} $TARGET/release; do
    if [ "$d" = "$TARGET/release" ] && [ ! -f "$HOST_TARGET_DIR/$d/$LIB.a" ] &&
       [ ! -f "$HOST_TARGET_DIR/$d/$LIB.so" ]; then
      note "no mobile library; building $MOBILE_CRATE --release for the C client"
      cargo_sid build --release -p "$MOBILE_CRATE" --target $TARGET --offline 2>&1 | tail -n 3 || true
    fi
    if [ -f "$HOST_TARGET_DIR/$d/$LIB.a" ]; then CLIB=$C_TARGET/$d/$LIB.a; break; fi
    if [ -f "$HOST_TARGET_DIR/$d/$LIB.so" ]; then CLIB=$C_TARGET/$d/$LIB.so; break; fi
  done
  if [ -z "$CLIB" ]; then
    C_RC=1
    C_NOTE="FAILED: no $LIB.a or $LIB.so for $TARGET ($MOBILE_CRATE needs crate-type staticlib/cdylib)"
  else
    mkdir -p "$HOST_TARGET_DIR/c"
    LDLIBS=${C_CLIENT_LDLIBS:--lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}
    RPATH=()
    [ "${CLIB##*.}" = so ] && RPATH=(-Wl,-rpath,"$(dirname "$CLIB")")
    # shellcheck disable=SC2086
    if ! in_sid aarch64-linux-gnu-gcc -O2 -Wall -I $C_REPO/runtime/include \
        $C_REPO/examples/c/app_startup.c "$CLIB" "${RPATH[@]}" $LDLIBS -o $C_TARGET/c/app_startup \
        2>&1 | tee "$LOGDIR/c-build.log"; then  # pipefail: gcc's status
      C_RC=1
      C_NOTE="FAILED: compiling app_startup.c against $(basename "$CLIB") (log $LOGDIR/c-build.log)"
    elif [ -z "${C_CLIENT_BUNDLE:-}" ]; then
      C_NOTE="compiled against $CLIB; not run (set C_CLIENT_BUNDLE to a fixture bundle)"
    else
      B=$(realpath -e "$C_CLIENT_BUNDLE" 2>/dev/null) || die "C_CLIENT_BUNDLE=$C_CLIENT_BUNDLE does not exist"
      case "$B" in
        "$REPO"/*) CB=$C_REPO/${B#"$REPO"/} ;;
        *) bind "$(dirname "$B")" "$SID$C_BUNDLE_DIR" ro; CB=$C_BUNDLE_DIR/$(basename "$B") ;;
      esac
      # A fresh app-data folder: the first run is a cold launch, the second a warm one.
      rm -rf "$HOST_TARGET_DIR/c/app-data"
      C_RC=0
      for launch in cold warm; do
        echo "\$ $QEMU_RUN app_startup $CB $C_TARGET/c/app-data   # $launch"
        set +e
        # shellcheck disable=SC2086
        in_sid $QEMU_RUN $C_TARGET/c/app_startup "$CB" $C_TARGET/c/app-data 2>&1 |
          tee -a "$LOGDIR/c-run.log"
        rc=${PIPESTATUS[0]}
        set -e
        [ "$rc" = 0 ] || C_RC=$rc
        grep -q "^cache: $launch" "$LOGDIR/c-run.log" || C_RC=1
      done
      if [ "$C_RC" = 0 ]; then C_NOTE="ran OK on $C_CLIENT_BUNDLE (linked $(basename "$CLIB"))"
      else C_NOTE="FAILED: app_startup exited $C_RC on $C_CLIENT_BUNDLE (log $LOGDIR/c-run.log)"; fi
    fi
  fi
fi
note "$C_NOTE"

# ---- 5. summary -------------------------------------------------------------------------------
cleanup
echo
echo "== summary ($TARGET, qemu-user -cpu cortex-a53, $RUSTC_V) =="
echo "  setup:   ${SETUP_S}s (chroot $SID, $(du -sh --one-file-system "$SID" 2>/dev/null | cut -f1))"
if [ "$TEST_RC" = 0 ]; then res=ok; else res="FAILED (cargo exit $TEST_RC)"; fi
echo "  tests:   ${PKG_LIST[*]}: $res: $PASSED passed, $FAILED failed, $IGNORED ignored in $SUITES suites, ${TEST_S}s; binaries: ${ARCH_OK:-?}"
echo "  mobile:  $MOBILE_NOTE"
for s in "${SIZES[@]}"; do echo "           $s"; done
echo "  C:       $C_NOTE"
echo "  logs:    $LOGDIR"
if [ "$TEST_RC" != 0 ] || [ "$MOBILE_RC" != 0 ] || [ "$C_RC" != 0 ]; then exit 1; fi
