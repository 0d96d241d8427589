#!/usr/bin/env bash
# A lab of real services for rehearsing runbooks/datacenter-power-loss.yaml:
# real Debian daemons on 127.42.x.y addresses, each lab host reached over its
# own SSH address, with an inventory in the state dir. See docs/lab.md.
#
#   scripts/hospital-lab.sh up   [--state DIR]   start the lab (as root)
#   scripts/hospital-lab.sh cut  [--state DIR]   the power cut: stop every service
#   scripts/hospital-lab.sh down [--state DIR]   stop everything, remove DIR
#
# THE MAPPING, the one place to reconcile with the runbook: which lab host
# runs which real daemon, under the unit name the runbook's `systemctl`
# commands use, and the ports it serves on its own address. Every other host
# of inventory/simulated.yaml gets an address of 127.42.9.0/24 and the
# simulation shims (inventory/sim/bin) on its PATH, over SSH all the same;
# on the hosts below, units other than their own are simulated too.
LAB_MAP='
# host     address       unit        daemon            ports
dns-1      127.42.1.53   unbound     dnsmasq           53
dns-2      127.42.1.54   unbound     dnsmasq           53
ntp-1      127.42.1.123  chrony      chronyd           123
mail-1     127.42.3.25   postfix     exim4             25
pbx-1      127.42.3.50   asterisk    kamailio          5060
pr-db-1    127.42.4.11   postgresql  postgres-primary  5432
pr-db-2    127.42.4.12   postgresql  postgres-standby  5432
pr-app-1   127.42.4.21   dpi-app     nginx             8443,443
pr-app-2   127.42.4.22   dpi-app     nginx             8443,443
pacs-1     127.42.4.31   orthanc     nginx             8042,443
lab-1      127.42.4.41   lab-portal  nginx             8443,443
'
# Names the lab's DNS answers besides HOST.lab.hospital.example (name=host),
# the primary the standby streams from, the database (vars.records_db).
DNS_NAMES='intranet.hospital.example=pr-app-1'
DB_PRIMARY=pr-db-1
DB_NAME=patient_records
# Stand-ins: the runbook names the daemons of the production hosts (unbound,
# postfix, asterisk); Debian's exim4 conflicts with postfix and has no
# asterisk, so the lab answers their tools from the real daemon it runs:
# `postqueue -p|-f` asks exim4's queue, `asterisk -rx 'sip show registry'`
# sends a real SIP OPTIONS to kamailio. On the lab hosts `127.0.0.1` in
# `dig`, `curl` (ports of the table) means the host's own address, and
# PG* variables point psql and pg_isready at the host's PostgreSQL.
SIM_NET=127.42.9
DOMAIN=lab.hospital.example
SSH_PORT=22
set -euo pipefail

die() { echo "hospital-lab: $*" >&2; exit 1; }

map_rows() { printf '%s\n' "$LAB_MAP" | awk 'NF == 5 && $1 !~ /^#/'; }
# The table's row of a host: "host address unit daemon ports", or nothing.
map_row() { map_rows | awk -v h="$1" '$1 == h'; }

# ---------------------------------------------------------------------------
# Daemons: start (returns once the daemon answers), stop, running.
# Each keeps its configuration, data, log and pid file in $S/svc/HOST.

ss_listening() { # address port: some TCP or UDP socket bound there
  ss -Hlntu | awk '{print $5}' | grep -qxF "$1:$2"
}

wait_ports() { # host address ports log
  local host=$1 addr=$2 ports=$3 log=$4 p i
  for p in ${ports//,/ }; do
    for ((i = 0; i < 150; i++)); do
      ss_listening "$addr" "$p" && continue 2
      sleep 0.1
    done
    echo "hospital-lab: $host did not listen on $addr:$p; its log ($log):" >&2
    tail -n 20 "$log" >&2 || true
    return 1
  done
}

pid_of() { # host daemon
  local d=$S/svc/$1
  case $2 in
    postgres-*) head -n 1 "$d/data/postmaster.pid" 2>/dev/null ;;
    *) cat "$d/$2.pid" 2>/dev/null ;;
  esac
}

# A process that exists and is not a zombie: the init of a container may
# reap the daemons it inherits only now and then.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

running() { # host daemon
  local pid
  pid=$(pid_of "$1" "$2") || return 1
  [ -n "$pid" ] && alive "$pid"
}

as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"; }

start_daemon() { # host address daemon ports
  local host=$1 addr=$2 daemon=$3 ports=$4 d=$S/svc/$1
  running "$host" "$daemon" && return 0
  local run
  case $daemon in
    dnsmasq) run=(dnsmasq --conf-file="$d/dnsmasq.conf") ;;
    chronyd) run=(chronyd -x -u _chrony -f "$d/chrony.conf") ;;
    exim4) run=(exim4 -C "$d/exim.conf" -bd -q30m) ;;
    kamailio) run=(kamailio -f "$d/kamailio.cfg" -P "$d/kamailio.pid" -w "$d" -m 16 -M 4 -E
      -u kamailio -g kamailio) ;;
    postgres-*) run=(setpriv --reuid=postgres --regid=postgres --init-groups --
      "$PGBIN/pg_ctl" -D "$d/data" -l "$d/daemon.log" -w -t 60
      -o "-c listen_addresses=$addr -c port=5432 -c unix_socket_directories=$d" start) ;;
    nginx) run=(nginx -p "$d" -e "$d/daemon.log" -c "$d/nginx.conf") ;;
    *) die "unknown daemon $daemon in the table" ;;
  esac
  # The log belongs to the daemon's user (pg_ctl -l writes it as postgres).
  touch "$d/daemon.log"
  chown --reference="$d" "$d/daemon.log"
  # Daemons leave the SSH session's process group and session: the
  # runbook's command deadline kills that group, and they must outlive it.
  if ! setsid "${run[@]}" </dev/null >>"$d/daemon.log" 2>&1; then
    echo "hospital-lab: $host: $daemon did not start; its log ($d/daemon.log):" >&2
    tail -n 20 "$d/daemon.log" >&2
    return 1
  fi
  wait_ports "$host" "$addr" "$ports" "$d/daemon.log"
}

stop_daemon() { # host daemon
  local host=$1 daemon=$2 pid i
  running "$host" "$daemon" || return 0
  pid=$(pid_of "$host" "$daemon")
  case $daemon in
    # Fast shutdown: what systemd's unit does; the WAL makes it safe either way.
    postgres-*) as_user postgres "$PGBIN/pg_ctl" -D "$S/svc/$host/data" -m fast -w stop >/dev/null ;;
    *) kill -TERM "$pid" ;;
  esac
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------
# Configuration, made once by `up`.

pki() { # the lab CA, and a certificate for a host's name and address
  local p=$S/pki
  mkdir -p "$p"
  if [ ! -e "$p/ca.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -keyout "$p/ca.key" -out "$p/ca.pem" -subj "/CN=Hospital lab CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
      2>/dev/null
  fi
  [ $# -eq 0 ] && return 0
  local host=$1 addr=$2
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$p/$host.key" -out "$p/$host.csr" -subj "/CN=$host.$DOMAIN" 2>/dev/null
  openssl x509 -req -in "$p/$host.csr" -CA "$p/ca.pem" -CAkey "$p/ca.key" -CAcreateserial \
    -days 30 -out "$p/$host.pem" \
    -extfile <(printf 'subjectAltName=DNS:%s.%s,IP:%s\nextendedKeyUsage=serverAuth\n' \
      "$host" "$DOMAIN" "$addr") 2>/dev/null
}

configure() { # host address daemon ports
  local host=$1 addr=$2 daemon=$3 ports=$4 d=$S/svc/$1 owner=root
  mkdir -p "$d"
  case $daemon in
    dnsmasq)
      {
        printf 'port=53\nlisten-address=%s\nbind-interfaces\nno-resolv\nno-hosts\n' "$addr"
        printf 'user=nobody\ngroup=nogroup\npid-file=%s/dnsmasq.pid\nlog-facility=%s/dnsmasq.log\n' "$d" "$d"
        # The name the runbook's dc-dns step asks for, and every lab host.
        local pair
        for pair in $DNS_NAMES; do
          printf 'host-record=%s,%s\n' "${pair%%=*}" "$(map_row "${pair#*=}" | awk '{print $2}')"
        done
        awk -v dom="$DOMAIN" '{printf "host-record=%s.%s,%s\n", $1, dom, $2}' "$S/hosts.txt"
      } >"$d/dnsmasq.conf" ;;
    chronyd)
      owner=_chrony
      # A server of local time at stratum 8 that never touches the clock
      # (chronyd -x): the lab has no upstream and no CAP_SYS_TIME.
      printf 'bindaddress %s\nport 123\ncmdport 0\nbindcmdaddress /\nallow 127.0.0.0/8\nlocal stratum 8\npidfile %s/chronyd.pid\ndriftfile %s/drift\n' \
        "$addr" "$d" "$d" >"$d/chrony.conf" ;;
    exim4)
      owner=Debian-exim
      pki "$host" "$addr"
      chgrp Debian-exim "$S/pki/$host.key"
      chmod 0640 "$S/pki/$host.key"
      printf '%s\n' "primary_hostname = $host.$DOMAIN" "exim_user = Debian-exim" \
        "exim_group = Debian-exim" "keep_environment =" "spool_directory = $d/spool" \
        "log_file_path = $d/%slog" "pid_file_path = $d/exim4.pid" \
        "local_interfaces = <; $addr" "daemon_smtp_ports = 25" "tls_advertise_hosts = *" \
        "tls_certificate = $S/pki/$host.pem" "tls_privatekey = $S/pki/$host.key" \
        "begin acl" "begin routers" "begin transports" >"$d/exim.conf.new" ;;
    kamailio)
      owner=kamailio
      cat >"$d/kamailio.cfg" <<EOF
#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:$addr:5060
listen=tcp:$addr:5060
loadmodule "sl.so"
request_route {
  if (method == "OPTIONS") { sl_send_reply("200", "OK"); exit; }
  sl_send_reply("404", "Not Here");
  exit;
}
EOF
      ;;
    postgres-primary)
      owner=postgres
      chown postgres: "$d"
      as_user postgres "$PGBIN/initdb" -D "$d/data" -U postgres -A trust --no-sync >"$d/initdb.log"
      printf '%s\n' 'local all all trust' 'host all all 127.0.0.0/8 trust' \
        'host replication all 127.0.0.0/8 trust' >"$d/data/pg_hba.conf"
      start_daemon "$host" "$addr" "$daemon" "$ports"
      as_user postgres "$PGBIN/createdb" -h "$addr" -U postgres "$DB_NAME"
      as_user postgres "$PGBIN/psql" -h "$addr" -U postgres -d "$DB_NAME" -qc \
        "create table patient (id text primary key, name text);
         insert into patient values ('TEST-0001', 'Test Patient');" ;;
    postgres-standby)
      owner=postgres
      chown postgres: "$d"
      # A real streaming replica of the primary (made after it, in table order).
      as_user postgres "$PGBIN/pg_basebackup" -h "$(map_row "$DB_PRIMARY" | awk '{print $2}')" \
        -U postgres -D "$d/data" -R -X stream -c fast --no-sync ;;
    nginx)
      pki "$host" "$addr"
      local http=${ports%%,*}
      mkdir -p "$d/tmp"
      cat >"$d/nginx.conf" <<EOF
daemon on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/daemon.log;
events { worker_connections 64; }
http {
  access_log off;
  default_type application/json;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server {
    listen $addr:$http;
    listen $addr:443 ssl;
    server_name $host.$DOMAIN;
    ssl_certificate $S/pki/$host.pem;
    ssl_certificate_key $S/pki/$host.key;
    location = /health { return 200 '{"status":"up","host":"$host"}\n'; }
    location = /api/patients/TEST-0001 { return 200 '{"id":"TEST-0001","name":"Test Patient"}\n'; }
    location = /status { return 200 '{"instruments":"connected"}\n'; }
    location = /system { return 200 '{"Name":"$host","DicomAet":"PACS"}\n'; }
    location / { return 200 '{"host":"$host"}\n'; }
  }
}
EOF
      ;;
  esac
  chown -R "$owner:" "$d"
  # Exim reads only a configuration that root owns.
  [ -e "$d/exim.conf.new" ] && chown root: "$d/exim.conf.new" && mv "$d/exim.conf.new" "$d/exim.conf"
  return 0
}

# The per-host commands that stand for the production tools, and the
# environment every SSH login of that host gets.
host_env() { # host address [daemon]
  local host=$1 addr=$2 daemon=${3:-} h=$S/hosts/$1 tool tools=()
  mkdir -p "$h/bin" "$h/sim"
  case $daemon in
    "") ;;
    dnsmasq) tools=(systemctl dig) ;;
    exim4) tools=(systemctl postqueue) ;;
    kamailio) tools=(systemctl asterisk) ;;
    postgres-*) tools=(systemctl pg:pg_isready pg:psql) ;;
    nginx) tools=(systemctl curl) ;;
    *) tools=(systemctl) ;;
  esac
  for tool in "${tools[@]}"; do
    case $tool in
      pg:*) ln -sf "$PGBIN/${tool#pg:}" "$h/bin/${tool#pg:}" ;;
      *) ln -sf ../../../lab.sh "$h/bin/$tool" ;;
    esac
  done
  {
    printf 'export LAB_STATE=%q LAB_HOST=%q LAB_ADDR=%q\n' "$S" "$host" "$addr"
    printf 'export RUNBOOK_SIM_STATE=%q\n' "$h/sim"
    printf 'export PATH=%q\n' "$h/bin:$S/sim-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    case $daemon in
      postgres-*) printf 'export PGHOST=%q PGPORT=5432 PGUSER=postgres PGDATABASE=%q\n' "$addr" "$DB_NAME" ;;
    esac
  } >"$h/env"
  ln -sfn "$h" "$S/by-address/$addr"
}

# The lab inventory: inventory/simulated.yaml with `transport: ssh`, an
# address for every host, and the hosts of the table it lacks. Hosts must be
# written one per line (`  name: {...}`), as that file writes them.
inventory() {
  local out=$S/lab-inventory.yaml
  awk -v map="$(map_rows)" -v net="$SIM_NET" -v hosts="$S/hosts.txt" -v port="$SSH_PORT" '
    BEGIN {
      n = split(map, rows, "\n")
      for (i = 1; i <= n; i++) { split(rows[i], f, " "); addr[f[1]] = f[2]; order[++m] = f[1] }
      print "# Generated by scripts/hospital-lab.sh up: the lab hosts over SSH (docs/lab.md)."
    }
    function emit(h, body,   a) {
      a = (h in addr) ? addr[h] : net "." (++sim)
      if (sim > 254) { print "hospital-lab: more than 254 simulated hosts" > "/dev/stderr"; exit 1 }
      seen[h] = 1
      print h, a > hosts
      return "  " h ": {address: " a (body == "" ? "" : ", " body) "}"
    }
    function rest(   i) { for (i = 1; i <= m; i++) if (!(order[i] in seen)) print emit(order[i], "") }
    /^[a-z_]+:/ {
      if (section == "hosts") rest()
      section = $1; sub(":.*", "", section)
    }
    section == "defaults" {
      if ($0 ~ /^defaults:/) {
        print "defaults:\n  transport: ssh\n  user: root\n  port: " port
        print "  identity_file: ssh/client_key\n  known_hosts: ssh/known_hosts\n  connect_timeout: 10s"
      }
      next
    }
    section == "hosts" && /^  [^ #][^:]*: \{.*\}[ ]*$/ {
      h = $1; sub(":$", "", h)
      body = $0; sub(/^[^{]*\{/, "", body); sub(/\}[ ]*$/, "", body)
      print emit(h, body); next
    }
    section == "hosts" && !/^hosts:/ && !/^[ ]*(#.*)?$/ {
      print "hospital-lab: inventory/simulated.yaml:" NR ": expected one host per line as `  name: {...}`" > "/dev/stderr"
      exit 1
    }
    section == "" { next }
    { print }
    END { if (section == "hosts") rest() }
  ' "$REPO/inventory/simulated.yaml" >"$out"
}

ssh_setup() { # keys, one sshd per 16 addresses (sshd's limit), known_hosts
  local k=$S/ssh n=0 i addrs
  mkdir -p "$k" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -C hospital-lab -f "$k/host_key"
  ssh-keygen -q -t ed25519 -N '' -C hospital-lab -f "$k/client_key"
  cp "$k/client_key.pub" "$k/authorized_keys"
  # Every login runs the command of the runbook in its host's environment,
  # found by the address the client connected to.
  cat >"$k/login" <<EOF
#!/bin/sh
set -- \$SSH_CONNECTION
. $S/by-address/\$3/env || exit 255
exec /bin/sh -c "\$SSH_ORIGINAL_COMMAND"
EOF
  chmod 0755 "$k/login"
  mapfile -t addrs < <(awk '{print $2}' "$S/hosts.txt")
  : >"$k/known_hosts"
  for ((i = 0; i < ${#addrs[@]}; i += 16)); do
    n=$((n + 1))
    {
      printf 'ListenAddress %s\n' "${addrs[@]:i:16}"
      printf '%s\n' "Port $SSH_PORT" "HostKey $k/host_key" "AuthorizedKeysFile $k/authorized_keys" \
        "PidFile $k/sshd-$n.pid" "ForceCommand $k/login" "PermitRootLogin prohibit-password" \
        "PasswordAuthentication no" "KbdInteractiveAuthentication no" "UsePAM no" \
        "StrictModes no" "MaxStartups 200" "MaxSessions 200" "AllowTcpForwarding yes" \
        "LogLevel INFO"
    } >"$k/sshd-$n.conf"
  done
  for a in "${addrs[@]}"; do
    if [ "$SSH_PORT" = 22 ]; then printf '%s ' "$a"; else printf '[%s]:%s ' "$a" "$SSH_PORT"; fi
    cut -d' ' -f1,2 "$k/host_key.pub"
  done >>"$k/known_hosts"
}

ssh_start() {
  local c n
  for c in "$S"/ssh/sshd-*.conf; do
    n=${c##*/sshd-}; n=${n%.conf}
    running_pidfile "$S/ssh/sshd-$n.pid" && continue
    /usr/sbin/sshd -f "$c" -E "$S/ssh/sshd-$n.log"
  done
  local a
  while read -r _ a _; do wait_ports ssh "$a" "$SSH_PORT" "$S/ssh/sshd-1.log"; done <"$S/hosts.txt"
}

running_pidfile() { local pid; pid=$(cat "$1" 2>/dev/null) && alive "$pid"; }

ssh_stop() {
  local p pid
  for p in "$S"/ssh/sshd-*.pid; do
    [ -e "$p" ] || continue
    pid=$(cat "$p")
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  done
}

# ---------------------------------------------------------------------------
# Commands.

require() {
  [ "$(id -u)" -eq 0 ] || die "must run as root: the lab binds ports 22, 25, 53, 123, 443, 5060 and 5432 of 127.42.x.y addresses and runs each daemon as its own system user"
  local missing=() pair
  for pair in /usr/sbin/sshd:openssh-server ssh-keygen:openssh-client /usr/sbin/dnsmasq:dnsmasq-base \
    /usr/sbin/chronyd:chrony /usr/sbin/exim4:exim4-daemon-light /usr/sbin/kamailio:kamailio \
    /usr/sbin/nginx:nginx openssl:openssl dig:bind9-dnsutils ss:iproute2 setpriv:util-linux \
    "$PGBIN/initdb:postgresql" "$PGBIN/pg_basebackup:postgresql"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing Debian packages: apt-get install ${missing[*]} (scripts/test.sh installs them)"
}

cmd_up() {
  require
  [ -e "$S/lab-inventory.yaml" ] && die "$S already holds a lab: run \`$0 down --state $S\` first"
  mkdir -p "$(dirname "$S")"
  setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$(dirname "$S")" ||
    die "$(dirname "$S") is out of reach of other users, and the daemons run as their own users: choose a --state whose parent dirs are 0755"
  mkdir -p "$S/by-address" "$S/svc"
  chmod 0755 "$S"
  cp "$0" "$S/lab.sh"
  cp -a "$REPO/inventory/sim/bin" "$S/sim-bin"
  : >"$S/hosts.txt"
  inventory
  pki
  local host addr unit daemon ports
  while read -r host addr _; do
    row=$(map_row "$host")
    host_env "$host" "$addr" "$(awk '{print $4}' <<<"$row")"
  done <"$S/hosts.txt"
  while read -r host addr unit daemon ports; do
    configure "$host" "$addr" "$daemon" "$ports"
    start_daemon "$host" "$addr" "$daemon" "$ports"
  done < <(map_rows)
  ssh_setup
  ssh_start
  echo "lab up in $S: runbook run runbooks/datacenter-power-loss.yaml -i $S/lab-inventory.yaml"
}

cmd_cut() {
  [ -e "$S/lab-inventory.yaml" ] || die "no lab in $S (run \`$0 up\` first)"
  local host daemon
  # Reverse order: the standby before its primary, as a power cut does not.
  while read -r host _ _ daemon _; do stop_daemon "$host" "$daemon"; done < <(map_rows | tac)
  rm -rf "$S"/hosts/*/sim/*
  echo "power cut: every service of the lab in $S is down"
}

cmd_down() {
  [ -d "$S" ] || return 0
  [ -e "$S/lab-inventory.yaml" ] || [ -e "$S/lab.sh" ] || die "$S is not a lab's state dir: not removing it"
  local host daemon
  while read -r host _ _ daemon _; do stop_daemon "$host" "$daemon"; done < <(map_rows | tac)
  ssh_stop
  rm -rf "$S"
}

# The tools of a lab host, run over SSH with its environment (see host_env).
host_tool() {
  local tool=$1 row unit daemon ports
  shift
  row=$(map_row "$LAB_HOST")
  read -r _ _ unit daemon ports <<<"$row"
  local sim=$S/sim-bin/$tool
  case $tool in
    systemctl)
      local action=${1:-} u quiet=
      shift || true
      [ "${1:-}" = --quiet ] || [ "${1:-}" = -q ] && { quiet=1; shift; }
      u=${1:-}; u=${u%.service}
      [ "$u" = "$unit" ] || exec "$sim" "$action" ${quiet:+--quiet} "$@"
      case $action in
        start) start_daemon "$LAB_HOST" "$LAB_ADDR" "$daemon" "$ports" ;;
        restart) stop_daemon "$LAB_HOST" "$daemon"; start_daemon "$LAB_HOST" "$LAB_ADDR" "$daemon" "$ports" ;;
        stop) stop_daemon "$LAB_HOST" "$daemon" ;;
        is-active|status)
          if running "$LAB_HOST" "$daemon"; then [ -n "$quiet" ] || echo active
          else [ -n "$quiet" ] || echo inactive; exit 3; fi ;;
        *) echo "systemctl (hospital lab): $action is not supported" >&2; exit 1 ;;
      esac ;;
    dig) exec /usr/bin/dig "${@//@127.0.0.1/@$LAB_ADDR}" ;;
    curl)
      # The ports of this host's real daemon go to it; any other is simulated.
      local a url=
      for a; do case $a in http://* | https://*) url=$a ;; esac; done
      local port=${url#*://}; port=${port%%/*}
      case $port in *:*) port=${port##*:} ;; *) [ "${url%%://*}" = https ] && port=443 || port=80 ;; esac
      case ",$ports," in
        *",$port,"*) exec /usr/bin/curl --cacert "$S/pki/ca.pem" "${@//127.0.0.1/$LAB_ADDR}" ;;
        *) exec "$sim" "$@" ;;
      esac ;;
    postqueue)
      local conf=$S/svc/$LAB_HOST/exim.conf
      running "$LAB_HOST" "$daemon" || { echo "postqueue: fatal: Queue report unavailable - mail system is down" >&2; exit 69; }
      case ${1:-} in
        -f) exec exim4 -C "$conf" -qff ;;
        -p) if [ "$(exim4 -C "$conf" -bpc)" = 0 ]; then echo "Mail queue is empty"; else exim4 -C "$conf" -bp; fi ;;
        *) echo "postqueue (hospital lab): only -p and -f" >&2; exit 64 ;;
      esac ;;
    asterisk)
      # `sip show registry`: the lab's SIP server answers a real OPTIONS.
      local reply
      reply=$(timeout 5 bash -c '
        exec 3<>"/dev/tcp/$1/5060" || exit 1
        printf "OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-lab%s\r\nMax-Forwards: 70\r\nFrom: <sip:lab@%s>;tag=lab\r\nTo: <sip:%s>\r\nCall-ID: lab-%s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" \
          "$1" "$1" "$$" "$1" "$1" "$$" >&3
        head -n 1 <&3' _ "$LAB_ADDR" 2>/dev/null) || true
      case $reply in
        "SIP/2.0 200"*) printf 'Host  Username  Refresh  State\n%s:5060 N hospital 120 Registered\n' "$LAB_ADDR" ;;
        *) echo "Unable to connect to remote asterisk (SIP server $LAB_ADDR:5060 did not answer OPTIONS)" >&2; exit 1 ;;
      esac ;;
    *) echo "hospital lab: no tool $tool" >&2; exit 127 ;;
  esac
}

PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

case ${0##*/} in
  systemctl | dig | curl | postqueue | asterisk) S=${LAB_STATE:?"hospital lab: no LAB_STATE: run over the lab's SSH"}; host_tool "${0##*/}" "$@"; exit ;;
esac

cmd=${1:-}
shift || true
S=${TMPDIR:-/tmp}/hospital-lab
while [ $# -gt 0 ]; do
  case $1 in
    --state) S=${2:?--state needs a directory}; shift 2 ;;
    --state=*) S=${1#--state=}; shift ;;
    *) die "unknown argument $1 (usage: $0 up|cut|down [--state DIR])" ;;
  esac
done
S=$(realpath -m "$S")
REPO=$(cd "$(dirname "$(realpath "$0")")/.." && pwd)
case $cmd in
  up) cmd_up ;;
  cut) cmd_cut ;;
  down) cmd_down ;;
  *) die "usage: $0 up|cut|down [--state DIR]" ;;
esac
