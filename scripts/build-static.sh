#!/usr/bin/env bash
# One binary to carry to the recovery room: builds `runbook` statically
# linked against musl, with OpenSSL built from source and linked in (cargo
# feature `static`), then checks it:
#   1. `ldd` finds no dynamic loader or library to name;
#   2. it runs the README's example (runbooks/datacenter-power-loss.yaml on
#      inventory/simulated.yaml, local transport through inventory/sim/bin)
#      in a chroot that holds nothing but the binary, the example's files,
#      zsh-static as /bin/sh, busybox-static for the other commands and
#      perl for the simulation's listeners (inventory/sim/serve.pl), kept
#      apart with its libraries in /opt/perl: nothing in the library
#      folders; then `status` there says every service is up, and `report`
#      writes the HTML report;
#   3. from that chroot, a step over SSH (libssh2 with the linked-in
#      OpenSSL) to a throwaway OpenSSH server on loopback.
# Not busybox's own sh: Debian builds it to run its applets before $PATH,
# so the simulator's `ip`, `mount` and `ping` would never be reached.
# Prints the build time and the binary's size.
#   scripts/build-static.sh [OUT_DIR]     (default target/static)
# Needs root for the chroot (as CI and these machines have). Installs
# musl-tools, busybox-static and zsh-static when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-unknown-linux-musl
OUT=${1:-target/static}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

missing=()
command -v musl-gcc >/dev/null || missing+=(musl-tools)
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || missing+=(busybox-static)
[ -x /bin/zsh-static ] || missing+=(zsh-static)
command -v perl >/dev/null || missing+=(perl)
command -v make >/dev/null || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-static: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  rustup target add "$TARGET"
fi
# The chroot's programs must themselves be static, or it would need their
# libraries.
for prog in /bin/busybox /bin/zsh-static; do
  if ! file -L "$prog" | grep -q "statically linked"; then
    echo "build-static: $prog is not statically linked" >&2
    exit 1
  fi
done

# musl-gcc compiles the C parts (libssh2, zlib, OpenSSL) against musl;
# the symbols are stripped to halve the binary (panics still name the
# function of each frame only in debug builds, which this is not).
export CC_x86_64_unknown_linux_musl=musl-gcc
export CARGO_PROFILE_RELEASE_STRIP=symbols
start=$(date +%s)
cargo build --locked --release --target "$TARGET" --features static
build_secs=$(( $(date +%s) - start ))
BIN="${CARGO_TARGET_DIR:-target}/$TARGET/release/runbook"
install -m 0755 "$BIN" "$OUT/runbook"
BIN="$OUT/runbook"

# 1. No dynamic loader, no shared library.
ldd_out=$(ldd "$BIN" 2>&1 || true)
case "$ldd_out" in
  *"not a dynamic executable"*|*"statically linked"*) ;;
  *) echo "build-static: ldd lists libraries:" >&2; echo "$ldd_out" >&2; exit 1 ;;
esac
if readelf -lW "$BIN" | grep -q "Requesting program interpreter"; then
  echo "build-static: the binary asks for a program interpreter" >&2
  exit 1
fi

# 2. The example, in a chroot with the binary, the example's files, zsh,
# busybox and perl: nothing else.
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/bin" "$ROOT/tmp" "$ROOT/dev" "$ROOT/work"
chmod 1777 "$ROOT/tmp"
cp /bin/busybox "$ROOT/bin/busybox"
cp /bin/zsh-static "$ROOT/bin/zsh"
ln -s zsh "$ROOT/bin/sh"
for applet in $(/bin/busybox --list); do
  [ -e "$ROOT/bin/$applet" ] || ln -s busybox "$ROOT/bin/$applet"
done
# The simulator's shims read /dev/urandom; commands write to /dev/null.
mknod -m 0666 "$ROOT/dev/null" c 1 3
mknod -m 0666 "$ROOT/dev/urandom" c 1 9
cp "$BIN" "$ROOT/bin/runbook"
cp -r runbooks inventory "$ROOT/work/"
# The simulation's listeners need perl: the binary, the libraries it and
# its XS modules link, and perl-base's modules (the Essential set serve.pl
# keeps to), in /opt/perl, started by its own loader. /lib and /usr/lib stay
# absent: the binary under test finds no library to load.
PERL=$(command -v perl)
mkdir -p "$ROOT/opt/perl/lib"
cp "$PERL" "$ROOT/opt/perl/perl"
cp -r "$(perl -MPOSIX -e 'print $INC{"POSIX.pm"} =~ s{/POSIX\.pm$}{}r')" "$ROOT/opt/perl/modules"
loader=$(readelf -lW "$PERL" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
{
  echo "$loader"
  find "$ROOT/opt/perl/modules" -name '*.so' -exec ldd "$PERL" {} + |
    awk '$2 == "=>" && $3 ~ /^\// {print $3}'
} | sort -u | xargs cp -L -t "$ROOT/opt/perl/lib/"
cat > "$ROOT/bin/perl" <<PERL
#!/bin/sh
exec /opt/perl/lib/${loader##*/} --library-path /opt/perl/lib /opt/perl/perl -I/opt/perl/modules "\$@"
PERL
chmod 0755 "$ROOT/bin/perl"
in_root() {
  chroot "$ROOT" /bin/env -i PATH=/work/inventory/sim/bin:/bin HOME=/work USER=operator \
    TMPDIR=/tmp sh -c "cd /work && $*"
}
in_root runbook --version
if in_root "ls /lib /usr/lib" >/dev/null 2>&1; then
  echo "build-static: the chroot has library folders; it must not" >&2
  exit 1
fi
in_root runbook run runbooks/datacenter-power-loss.yaml -i inventory/simulated.yaml --yes -q
in_root runbook status runbooks/datacenter-power-loss.yaml -i inventory/simulated.yaml -q
in_root runbook report --format html -o /work/report.html
grep -q "succeeded" "$ROOT/work/report.html"
in_root sim reset >/dev/null

# 3. SSH (libssh2 and the linked-in OpenSSL), from the chroot to a
# throwaway OpenSSH server on loopback: a key login, the host key checked.
SSHD=$(mktemp -d)
trap 'rm -rf "$ROOT"; [ -f "$SSHD/pid" ] && kill "$(cat "$SSHD/pid")" 2>/dev/null; rm -rf "$SSHD"' EXIT
chmod 0755 "$SSHD"
ssh-keygen -q -t ed25519 -N "" -f "$SSHD/host_key"
ssh-keygen -q -t ed25519 -N "" -f "$SSHD/client_key"
cp "$SSHD/client_key.pub" "$SSHD/authorized_keys"
port=$(( 20000 + RANDOM % 20000 ))
cat > "$SSHD/sshd_config" <<CONFIG
Port $port
ListenAddress 127.0.0.1
HostKey $SSHD/host_key
AuthorizedKeysFile $SSHD/authorized_keys
PidFile $SSHD/pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
CONFIG
mkdir -p /run/sshd
/usr/sbin/sshd -f "$SSHD/sshd_config" -E "$SSHD/log"
mkdir -p "$ROOT/work/ssh"
cp "$SSHD/client_key" "$ROOT/work/ssh/"
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$SSHD/host_key.pub")" > "$ROOT/work/ssh/known_hosts"
cat > "$ROOT/work/ssh/inventory.yaml" <<INVENTORY
version: 1
hosts:
  loopback: {address: 127.0.0.1, port: $port, user: root, identity_file: client_key, known_hosts: known_hosts}
INVENTORY
cat > "$ROOT/work/ssh/runbook.yaml" <<'RUNBOOK'
version: 1
name: static-ssh
steps:
  - id: hello
    targets: [loopback]
    run: echo "static ssh $((6 * 7))"
    verify: {command: "true"}
    timeout: 30s
RUNBOOK
in_root runbook run ssh/runbook.yaml -i ssh/inventory.yaml --state-dir ssh/state -q
grep -rq "static ssh 42" "$ROOT/work/ssh/state/runs/"*/logs/hello/

size=$(stat -c %s "$BIN")
echo "build-static: $BIN"
echo "build-static: $(file -b "$BIN")"
echo "build-static: ldd: $ldd_out"
echo "build-static: built in ${build_secs}s; $size bytes ($(( size / 1024 / 1024 )) MiB)"
echo "build-static: ran the example, status and report in a chroot with only the binary, zsh, busybox and perl"
echo "build-static: and a step over SSH from that chroot to an OpenSSH server on loopback"
