#!/usr/bin/env bash
# scale-lab.sh up|down - a loopback lab of N SSH "hosts" (up to 4,000), laid
# out like ../shared/bench/lab-up.sh (same files under $LAB, so its bench.sh,
# lab-cpu.sh, lab-down.sh and wl/pyinfra.sh work on it), for more hosts than
# its 240.
#
#   LAB=/tmp/drlab-scale N=1000 PORT=2422 bench/scale-lab.sh up    (defaults)
#   LAB=/tmp/drlab-scale bench/scale-lab.sh down
#
# Host i (h0001..) is 127.1.A.B:$PORT with A = (i-1)/200, B = 10 + (i-1)%200.
# Nothing listens beyond loopback: each private sshd listens on 16 of those
# addresses (OpenSSH's MAX_LISTEN_SOCKS), so 1,000 hosts take 63 sshd
# ($LAB/sshd-J.{config,pid,log}). Server settings are those of lab-up.sh
# (curve25519 key exchange, `SetEnv SHLVL=1`, pubkey only, strict host keys).
# Writes for clients, under $LAB: id_ed25519, known_hosts, hosts.txt,
# pyinfra_inventory.py (group "lab"), inventory.yaml (runbook's, group
# "lab"), env.sh.
set -euo pipefail
LAB=${LAB:-/tmp/drlab-scale}
N=${N:-1000}
PORT=${PORT:-2422}
SSHD=${SSHD:-/usr/sbin/sshd}
PER=16
case $LAB in /*) ;; *) LAB=$PWD/$LAB;; esac

addr() { echo "127.1.$((($1 - 1) / 200)).$((10 + ($1 - 1) % 200))"; }
name() { printf 'h%04d' "$1"; }

running_pid() { # $1 = PID file; prints the PID if that sshd still runs
  local pid cfg=${1%.pid}.config
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$cfg " || return 1
  echo "$pid"
}

down() {
  local f pid stopped=0
  for f in "$LAB"/sshd-*.pid; do
    [ -e "$f" ] || continue
    if pid=$(running_pid "$f"); then
      # its sessions still open go too
      for k in $(ps -o pid= --ppid "$pid" 2>/dev/null || true); do kill "$k" 2>/dev/null || true; done
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      stopped=$((stopped + 1))
    fi
    rm -f "$f"
  done
  echo "scale-lab: stopped $stopped sshd under $LAB"
}

up() {
  case $N in ''|*[!0-9]*) echo "N must be a number" >&2; exit 2;; esac
  if [ "$N" -lt 1 ] || [ "$N" -gt 4000 ]; then echo "N must be 1..4000" >&2; exit 2; fi
  local K=$(( (N + PER - 1) / PER )) j i first last cfg user
  user=$(id -un)
  mkdir -p "$LAB"; chmod 700 "$LAB"
  [ -s "$LAB/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C drlab-host -f "$LAB/ssh_host_ed25519_key"
  [ -s "$LAB/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C drlab-client -f "$LAB/id_ed25519"
  printf 'from="127.0.0.0/8" %s\n' "$(cat "$LAB/id_ed25519.pub")" > "$LAB/authorized_keys"
  chmod 600 "$LAB/authorized_keys" "$LAB/id_ed25519" "$LAB/ssh_host_ed25519_key"
  if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then mkdir -p -m 0755 /run/sshd; fi
  down >/dev/null
  for j in $(seq 1 "$K"); do
    first=$(( (j - 1) * PER + 1 )); last=$(( j * PER )); [ "$last" -le "$N" ] || last=$N
    cfg=$LAB/sshd-$j.config
    {
      echo "Port $PORT"
      echo "AddressFamily inet"
      for i in $(seq "$first" "$last"); do echo "ListenAddress $(addr "$i"):$PORT"; done
      cat <<EOF
HostKey $LAB/ssh_host_ed25519_key
PidFile $LAB/sshd-$j.pid
AuthorizedKeysFile $LAB/authorized_keys
AllowUsers $user
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowAgentForwarding no
AllowTcpForwarding no
MaxStartups 300
MaxSessions 300
LoginGraceTime 60
LogLevel ERROR
SetEnv SHLVL=1
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
EOF
    } > "$cfg"
    "$SSHD" -f "$cfg" -E "$LAB/sshd-$j.log"
  done
  for j in $(seq 1 "$K"); do
    for _ in $(seq 100); do [ -s "$LAB/sshd-$j.pid" ] && break; sleep 0.05; done
  done
  local hostkey
  hostkey=$(cut -d' ' -f1,2 "$LAB/ssh_host_ed25519_key.pub")
  for i in $(seq 1 "$N"); do echo "[$(addr "$i")]:$PORT $hostkey"; done > "$LAB/known_hosts"
  for i in $(seq 1 "$N"); do name "$i"; echo; done > "$LAB/hosts.txt"
  {
    echo "_common = {'ssh_port': $PORT, 'ssh_user': '$user', 'ssh_key': '$LAB/id_ed25519',"
    echo "           'ssh_known_hosts_file': '$LAB/known_hosts', 'ssh_strict_host_key_checking': 'yes'}"
    echo "lab = ["
    for i in $(seq 1 "$N"); do echo "    ('$(name "$i")', dict(_common, ssh_hostname='$(addr "$i")')),"; done
    echo "]"
  } > "$LAB/pyinfra_inventory.py"
  {
    echo "version: 1"
    echo "defaults: {port: $PORT, user: $user, identity_file: $LAB/id_ed25519, known_hosts: $LAB/known_hosts, ssh_config: none}"
    echo "hosts:"
    for i in $(seq 1 "$N"); do echo "  $(name "$i"): {address: $(addr "$i")}"; done
    echo "groups:"
    echo "  lab:"
    echo "    hosts:"
    for i in $(seq 1 "$N"); do echo "      - $(name "$i")"; done
  } > "$LAB/inventory.yaml"
  printf 'LAB=%q\nN=%q\nPORT=%q\n' "$LAB" "$N" "$PORT" > "$LAB/env.sh"
  local ssh_opts=(-p "$PORT" -i "$LAB/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes
    -o UserKnownHostsFile="$LAB/known_hosts" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -F /dev/null)
  for _ in $(seq 50); do
    if ssh "${ssh_opts[@]}" "$(addr 1)" true 2>/dev/null && ssh "${ssh_opts[@]}" "$(addr "$N")" true 2>/dev/null; then
      echo "scale-lab: $K sshd, $N hosts $(addr 1)..$(addr "$N"):$PORT, LAB=$LAB"
      return 0
    fi
    sleep 0.1
  done
  echo "scale-lab: no answer from $(addr 1) or $(addr "$N"); see $LAB/sshd-*.log" >&2
  exit 1
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) echo "usage: scale-lab.sh up|down" >&2; exit 2 ;;
esac
