#!/usr/bin/env bash
# A lab of real services for rehearsing runbooks/datacenter-power-loss.yaml:
# the hosts of inventory/simulated.yaml at its addresses (the hospital's
# 10.A.B.C is 127.(100+A).B.C), each reached over SSH, real Debian daemons
# where the table below says, with an inventory in the state dir. See
# docs/lab.md.
#
#   scripts/hospital-lab.sh up   [--state DIR]   start the lab (as root)
#   scripts/hospital-lab.sh cut  [--state DIR]   the power cut: stop every service
#   scripts/hospital-lab.sh down [--state DIR]   stop everything, remove DIR
#
# THE MAPPING, the one place to reconcile with the runbook: which host runs
# which real daemon, under the unit name the runbook's `systemctl` commands
# use, and the ports it serves on its inventory address (`/tls`: with a
# certificate of the lab CA), and on the addresses of `also`. Every other
# unit, on every host, is the simulation's (inventory/sim/bin, its listeners
# from inventory/sim/serve.pl), over SSH all the same.
LAB_MAP='
# host     unit           daemon            ports       also
dns-1      unbound        dnsmasq           53
dns-2      unbound        dnsmasq           53
ntp-1      chrony         chronyd           123
mail-1     postfix        exim4             25
pbx-1      asterisk       kamailio          5060
pr-db-1    postgresql     postgres-primary  5432
pr-db-2    postgresql     postgres-standby  5432
pr-app-1   dpi-app        nginx             8443/tls    127.102.0.20
pr-app-2   dpi-app        nginx             8443/tls
ed-1       ed-app         nginx             8443/tls
pharm-1    pharmacy-app   nginx             8443/tls
bb-1       bloodbank-app  nginx             8443/tls
ot-1       theatre-app    nginx             8443/tls
ris-1      ris-app        nginx             8443/tls
lab-1      lab-portal     nginx             8443/tls
pacs-1     orthanc        nginx             8042,4242
'
# pr-app-1 also holds the records address (records_url, records.hospital.example).
# The runbook's portals are https on their port 8443 (`portal_scheme`):
# the lab inventory turns its URLs of that port to https.
TLS_PORT=8443
# The primary the standby streams from, the database (vars.records_db).
DB_PRIMARY=pr-db-1
DB_NAME=patient_records
# Stand-ins: the runbook names the daemons of the production hosts (unbound,
# postfix, asterisk); Debian's exim4 conflicts with postfix and has no
# asterisk, so the lab answers their tools from the real daemon it runs:
# `postqueue -p|-f` asks exim4's queue, `asterisk -rx 'sip show registry'`
# sends a real SIP OPTIONS to kamailio; `chronyc` asks the real chronyd
# (`makestep` excepted: it runs with -x), `journalctl -u postgresql...`
# shows PostgreSQL's log since its last start, and PG* variables point
# psql and pg_isready at the host's server.
# What DNS and the portals answer is the simulation's (`sim zone`, `sim pages`).
DOMAIN=hospital.example
SSH_PORT=22
set -euo pipefail

die() { echo "hospital-lab: $*" >&2; exit 1; }

map_rows() { printf '%s\n' "$LAB_MAP" | awk 'NF >= 4 && $1 !~ /^#/'; }
# The table's row of a host: "host unit daemon ports [also]", or nothing.
map_row() { map_rows | awk -v h="$1" '$1 == h'; }
# A host's address in the lab inventory.
addr_of() { awk -v h="$1" '$1 == h {print $2}' "$S/hosts.txt"; }

# ---------------------------------------------------------------------------
# Daemons: start (returns once the daemon answers), stop, running.
# Each keeps its configuration, data, log and pid file in $S/svc/HOST.

ss_listening() { # address port: some TCP or UDP socket bound there
  ss -Hlntu | awk '{print $5}' | grep -qxF "$1:$2"
}

wait_ports() { # host address ports log
  local host=$1 addr=$2 ports=$3 log=$4 p i
  for p in ${ports//,/ }; do
    p=${p%/tls}
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

stop_daemon() { # host daemon [immediate]
  local host=$1 daemon=$2 mode=${3:-fast} pid i
  running "$host" "$daemon" || return 0
  pid=$(pid_of "$host" "$daemon")
  case $daemon in
    # Fast: what systemd's unit does. Immediate, for the power cut: no
    # checkpoint, the next start replays the WAL as after a real one.
    postgres-*) as_user postgres "$PGBIN/pg_ctl" -D "$S/svc/$host/data" -m "$mode" -w stop >/dev/null ;;
    *) kill -TERM "$pid" ;;
  esac
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# The simulation's listeners (inventory/sim/serve.pl), all hosts': stopped
# and waited for, their state forgotten, as `sim reset` does.
sim_stop() {
  local p pid
  for p in "$S"/sim/run/*.pid; do
    [ -e "$p" ] || continue
    pid=$(cat "$p")
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  done
  rm -rf "$S/sim"
}

# ---------------------------------------------------------------------------
# Configuration, made once by `up`.

pki() { # the lab CA, and a certificate for a host's name and addresses
  local p=$S/pki
  mkdir -p "$p"
  if [ ! -e "$p/ca.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -keyout "$p/ca.key" -out "$p/ca.pem" -subj "/CN=Hospital lab CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
      2>/dev/null
  fi
  [ $# -eq 0 ] && return 0
  local host=$1 a san="DNS:$1.$DOMAIN"
  shift
  for a; do san+=",IP:$a"; done
  # 30 days: the runbook's portal-certificates asks for 14 left.
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$p/$host.key" -out "$p/$host.csr" -subj "/CN=$host.$DOMAIN" 2>/dev/null
  openssl x509 -req -in "$p/$host.csr" -CA "$p/ca.pem" -CAkey "$p/ca.key" -CAcreateserial \
    -days 30 -out "$p/$host.pem" \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san") 2>/dev/null
}

# What the simulation answers, asked of its own script.
sim_says() { RUNBOOK_SIM_STATE=$S/sim "$S/sim-bin/sim" "$@"; }

configure() { # host address daemon ports unit also
  local host=$1 addr=$2 daemon=$3 ports=$4 unit=$5 also=${6:-} d=$S/svc/$1 owner=root
  mkdir -p "$d"
  case $daemon in
    dnsmasq)
      {
        printf 'port=53\nlisten-address=%s\nbind-interfaces\nno-resolv\nno-hosts\n' "$addr"
        printf 'user=nobody\ngroup=nogroup\npid-file=%s/dnsmasq.pid\nlog-facility=%s/dnsmasq.log\n' "$d" "$d"
        # The simulation's zone: "owner A address" or "owner SRV prio weight port target".
        sim_says zone | awk '
          $2 == "A" { printf "host-record=%s,%s\n", $1, $3 }
          $2 == "SRV" { printf "srv-host=%s,%s,%s,%s,%s\n", $1, $6, $5, $3, $4 }'
      } >"$d/dnsmasq.conf" ;;
    chronyd)
      owner=_chrony
      # A server of local time at stratum 8 that never touches the clock
      # (chronyd -x): the lab has no upstream and no CAP_SYS_TIME. chronyc
      # reaches it on its Unix socket only (makestep needs that).
      printf '%s\n' "bindaddress $addr" "port 123" "cmdport 0" "bindcmdaddress $d/run/chronyd.sock" \
        "allow 127.0.0.0/8" "local stratum 8" "pidfile $d/chronyd.pid" "driftfile $d/drift" \
        >"$d/chrony.conf" ;;
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
      as_user postgres "$PGBIN/pg_basebackup" -h "$(addr_of "$DB_PRIMARY")" \
        -U postgres -D "$d/data" -R -X stream -c fast --no-sync ;;
    nginx)
      # shellcheck disable=SC2086 # the addresses, one word each
      pki "$host" "$addr" $also
      mkdir -p "$d/tmp"
      {
        cat <<EOF
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
  ssl_certificate $S/pki/$host.pem;
  ssl_certificate_key $S/pki/$host.key;
EOF
        # One server per address and port, with the simulation's pages
        # of that address and port ("ADDRESS:PORT PATH BODY").
        local a p pages
        pages=$(sim_says pages "$unit")
        for a in $addr $also; do
          for p in ${ports//,/ }; do
            printf '  server {\n    listen %s:%s%s;\n    server_name %s.%s;\n' \
              "$a" "${p%/tls}" "$([ "$p" != "${p%/tls}" ] && echo ' ssl')" "$host" "$DOMAIN"
            awk -v at="$a:${p%/tls}" -v q="'" '$1 == at {
                path = $2; $1 = ""; $2 = ""; sub(/^ +/, "")
                printf "    location = %s { return 200 %s%s\\n%s; }\n", path, q, $0, q
              }' <<<"$pages"
            printf '    location / { return 404 "not found\\n"; }\n  }\n'
          done
        done
        echo '}'
      } >"$d/nginx.conf" ;;
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
  mkdir -p "$h/bin"
  case $daemon in
    "") ;;
    chronyd) tools=(systemctl chronyc) ;;
    exim4) tools=(systemctl postqueue) ;;
    kamailio) tools=(systemctl asterisk) ;;
    postgres-*) tools=(systemctl journalctl pg:pg_isready pg:psql) ;;
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
    # One simulation for all hosts, as inventory/simulated.yaml has it.
    printf 'export RUNBOOK_SIM_STATE=%q\n' "$S/sim"
    printf 'export PATH=%q\n' "$h/bin:$S/sim-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    case $daemon in
      postgres-*) printf 'export PGHOST=%q PGPORT=5432 PGUSER=postgres PGDATABASE=%q\n' "$addr" "$DB_NAME" ;;
    esac
  } >"$h/env"
  ln -sfn "$h" "$S/by-address/$addr"
}

# The lab inventory: inventory/simulated.yaml with `transport: ssh`, its
# addresses, and https on the portals' port. Hosts must be written one per
# line (`  name: {address: A, ...}`), as that file writes them; every host
# of the table must be one of them.
inventory() {
  local out=$S/lab-inventory.yaml
  awk -v map="$(map_rows)" -v hosts="$S/hosts.txt" -v port="$SSH_PORT" -v tls="$TLS_PORT" '
    BEGIN {
      n = split(map, rows, "\n")
      for (i = 1; i <= n; i++) { split(rows[i], f, " "); mapped[f[1]] = 1 }
      print "# Generated by scripts/hospital-lab.sh up: the lab hosts over SSH (docs/lab.md)."
    }
    function fail(why) { print "hospital-lab: inventory/simulated.yaml:" NR ": " why > "/dev/stderr"; bad = 1; exit 1 }
    /^[a-z_]+:/ { section = $1; sub(":.*", "", section) }
    section == "defaults" {
      if ($0 ~ /^defaults:/) {
        print "defaults:\n  transport: ssh\n  user: root\n  port: " port
        print "  identity_file: ssh/client_key\n  known_hosts: ssh/known_hosts\n  connect_timeout: 10s"
        next
      }
      # The simulation says why it has no TLS; the lab has.
      if ($0 ~ /^ *#/ || $0 ~ /^  transport:/) next
      if ($0 ~ /^    portal_scheme:/) { print "    # The portals serve TLS from the lab CA (SSL_CERT_FILE=STATE/pki/ca.pem)."; print "    portal_scheme: https"; next }
      if ($0 ~ "http://[0-9.]+:" tls "(/|$)") sub("http://", "https://")
      print; next
    }
    section == "hosts" && /^  [^ #][^:]*: \{.*\}[ ]*$/ {
      h = $1; sub(":$", "", h)
      if (!match($0, /address: [0-9.]+/)) fail("host " h " has no address")
      print h, substr($0, RSTART + 9, RLENGTH - 9) > hosts
      delete mapped[h]
      print; next
    }
    section == "hosts" && !/^hosts:/ && !/^[ ]*(#.*)?$/ { fail("expected one host per line as `  name: {...}`") }
    section == "" { next }
    { print }
    END {
      if (bad) exit 1
      for (h in mapped) { print "hospital-lab: " h " of the table is not a host of inventory/simulated.yaml" > "/dev/stderr"; exit 1 }
    }
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
  while read -r _ a; do wait_ports ssh "$a" "$SSH_PORT" "$S/ssh/sshd-1.log"; done <"$S/hosts.txt"
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
  [ "$(id -u)" -eq 0 ] || die "must run as root: the lab binds ports 22, 25, 53, 123, 5060 and 5432 of 127.100.0.0/14 addresses and runs each daemon as its own system user"
  local missing=() pair
  for pair in /usr/sbin/sshd:openssh-server ssh-keygen:openssh-client /usr/sbin/dnsmasq:dnsmasq-base \
    /usr/sbin/chronyd:chrony chronyc:chrony /usr/sbin/exim4:exim4-daemon-light /usr/sbin/kamailio:kamailio \
    /usr/sbin/nginx:nginx openssl:openssl perl:perl-base ss:iproute2 setpriv:util-linux \
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
  # The simulation's script finds serve.pl next to its folder.
  cp -a "$REPO/inventory/sim/bin" "$S/sim-bin"
  cp "$REPO/inventory/sim/serve.pl" "$S/serve.pl"
  : >"$S/hosts.txt"
  inventory
  pki
  local host addr unit daemon ports also
  while read -r host addr; do
    host_env "$host" "$addr" "$(map_row "$host" | awk '{print $3}')"
  done <"$S/hosts.txt"
  while read -r host unit daemon ports also; do
    addr=$(addr_of "$host")
    configure "$host" "$addr" "$daemon" "$ports" "$unit" "$also"
    start_daemon "$host" "$addr" "$daemon" "$ports"
  done < <(map_rows)
  ssh_setup
  ssh_start
  echo "lab up in $S: SSL_CERT_FILE=$S/pki/ca.pem runbook run runbooks/datacenter-power-loss.yaml -i $S/lab-inventory.yaml"
}

stop_all() { # fast|immediate
  local host daemon
  # Reverse order: the standby before its primary, as a power cut does not.
  while read -r host _ daemon _; do stop_daemon "$host" "$daemon" "$1"; done < <(map_rows | tac)
  sim_stop
}

cmd_cut() {
  [ -e "$S/lab-inventory.yaml" ] || die "no lab in $S (run \`$0 up\` first)"
  stop_all immediate
  echo "power cut: every service of the lab in $S is down"
}

cmd_down() {
  [ -d "$S" ] || return 0
  [ -e "$S/lab-inventory.yaml" ] || [ -e "$S/lab.sh" ] || die "$S is not a lab's state dir: not removing it"
  stop_all fast
  ssh_stop
  rm -rf "$S"
}

# The tools of a lab host, run over SSH with its environment (see host_env).
host_tool() {
  local tool=$1 row unit daemon ports
  shift
  row=$(map_row "$LAB_HOST")
  read -r _ unit daemon ports _ <<<"$row"
  local sim=$S/sim-bin/$tool d=$S/svc/$LAB_HOST
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
    chronyc)
      local a args=() real=(/usr/bin/chronyc -n -h "$d/run/chronyd.sock")
      for a; do [ "$a" = -n ] || args+=("$a"); done
      # The lab's chronyd never steps the clock (-x, whose makestep fails):
      # once it answers, there is nothing to step.
      if [ "${args[*]}" = makestep ]; then "${real[@]}" tracking >/dev/null && echo "200 OK"; exit; fi
      exec "${real[@]}" "${args[@]}" ;;
    journalctl)
      # The log of the PostgreSQL that runs, from its start: this "boot".
      case " $* " in *" -u postgresql"*) ;; *) exec "$sim" "$@" ;; esac
      running "$LAB_HOST" "$daemon" || exit 0
      awk '/starting PostgreSQL/ { n = 0 } { line[n++] = $0 } END { for (i = 0; i < n; i++) print line[i] }' "$d/daemon.log" ;;
    postqueue)
      local conf=$d/exim.conf
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
  systemctl | chronyc | journalctl | postqueue | asterisk) S=${LAB_STATE:?"hospital lab: no LAB_STATE: run over the lab's SSH"}; host_tool "${0##*/}" "$@"; exit ;;
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
