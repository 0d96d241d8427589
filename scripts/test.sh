#!/usr/bin/env bash
# The whole test suite. Installs what the tests need first: the SSH tests
# start a real OpenSSH server on loopback and fail loudly without one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null; then
  echo "installing openssh-server and openssh-client for the SSH tests" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssh-server openssh-client >/dev/null
fi
cargo test --locked "$@"
