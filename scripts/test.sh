#!/usr/bin/env bash
# The whole test suite. Installs what the tests need first: the SSH tests
# start a real OpenSSH server on loopback and fail loudly without one.
set -euo pipefail
cd "$(dirname "$0")/.."
# sshd and ssh-keygen for the SSH tests; `script` (a pseudo-terminal for the
# operator-prompt tests), `pgrep` (orphaned-process checks) and `ss` (the
# jump-host test: who owns a TCP connection) are part of every Debian, but a
# slim image may lack them.
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v script >/dev/null || missing+=(bsdutils)
command -v pgrep >/dev/null || missing+=(procps)
command -v ss >/dev/null || missing+=(iproute2)
command -v sudo >/dev/null || missing+=(sudo)
command -v ssh-agent >/dev/null || missing+=(openssh-client)
# Real servers for the `smtp` and `sip` probe tests (started by the tests on
# loopback, as the test user, with configurations of their own); `openssl`
# makes their certificates.
[ -x /usr/sbin/exim4 ] || missing+=(exim4-daemon-light)
[ -x /usr/sbin/kamailio ] || missing+=(kamailio)
command -v openssl >/dev/null || missing+=(openssl)
# The TLS and https probe tests: certificates made with the openssl CLI,
# served by a real nginx.
[ -x /usr/sbin/nginx ] || missing+=(nginx)
# The probe tests: a real DNS server (dnsmasq-base is the binary without
# the system service), a real Redis for `tcp` send/expect, and `unshare`/
# `setpriv` to ping inside a network namespace of the test, as root and not.
[ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v unshare >/dev/null || missing+=(util-linux)
command -v setpriv >/dev/null || missing+=(util-linux)
# The hospital lab (tests/lab.rs, scripts/hospital-lab.sh): besides the
# servers above, an NTP server, PostgreSQL for the patient records (a
# primary and its streaming standby) and `dig`.
[ -x /usr/sbin/chronyd ] || missing+=(chrony)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v dig >/dev/null || missing+=(bind9-dnsutils)
# The programs that read what `runbook` writes, for tests/tools.rs: Graphviz
# (`plan --format dot`), headless Chromium (the HTML report), the shells of
# the completion scripts, groff (the man page), node and npm (Mermaid's
# parser, below).
command -v dot >/dev/null || missing+=(graphviz)
command -v chromium >/dev/null || missing+=(chromium)
command -v zsh >/dev/null || missing+=(zsh)
command -v fish >/dev/null || missing+=(fish)
command -v groff >/dev/null || missing+=(groff-base)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} for the tests" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The `become` and login tests log in as non-root accounts: `rb-nopw` may
# sudo without a password, `rb-pw` with its password (which is also its
# login password, for password authentication). Safe to run again.
for user in rb-nopw rb-pw; do
  id "$user" >/dev/null 2>&1 || $SUDO useradd --create-home --shell /bin/sh "$user"
done
# Without PAM, sshd refuses a locked account (`!`) even a key: `*` is no
# password, not a lock.
$SUDO usermod -p '*' rb-nopw
echo 'rb-pw:rb-pw-Sudo-4711' | $SUDO chpasswd
sudoers=$(mktemp)
printf '%s\n' 'rb-nopw ALL=(ALL:ALL) NOPASSWD: ALL' 'rb-pw ALL=(ALL:ALL) ALL' > "$sudoers"
$SUDO visudo -cqf "$sudoers"
$SUDO install -m 0440 "$sudoers" /etc/sudoers.d/runbook-tests
rm -f "$sudoers"
# ansible-core, for the tests that compare `runbook inventory --format json`
# with `ansible-inventory --list`: in a virtualenv under target/, made once.
venv="$PWD/target/ansible-venv"
if ! "$venv/bin/ansible-inventory" --version >/dev/null 2>&1; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    echo "installing python3-venv for the Ansible tests" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'ansible-core>=2.16,<2.20'
fi
export RUNBOOK_ANSIBLE_INVENTORY="$venv/bin/ansible-inventory"
# Mermaid's parser (the `mermaid` package, with jsdom to load it without a
# browser), at the versions of tests/mermaid/package-lock.json, under target/.
mermaid="$PWD/target/mermaid"
if ! cmp -s tests/mermaid/package-lock.json "$mermaid/package-lock.json" \
  || [ ! -d "$mermaid/node_modules/mermaid" ]; then
  rm -rf "$mermaid"
  mkdir -p "$mermaid"
  cp tests/mermaid/package.json tests/mermaid/package-lock.json "$mermaid/"
  (cd "$mermaid" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
# The README's first command leaves the simulated hospital listening (a
# second run finds it up); the tests need those addresses for their own.
if [ -d "${RUNBOOK_SIM_STATE:-${TMPDIR:-/tmp}/runbook-sim-$(id -u)}/run" ]; then
  echo "test.sh: stopping the simulation the README's first command left running (inventory/sim/bin/sim reset)"
  inventory/sim/bin/sim reset >/dev/null
fi
cargo test --locked "$@"
