#!/usr/bin/env bash
# Local infrastructure without Docker: Apache Kafka (KRaft, one combined node) from
# Maven Central jars and FerretDB built from the Go module proxy, on PostgreSQL 15 from
# Debian's packages (default) or on SQLite (RCM_FERRETDB_BACKEND=sqlite).
#
#   deploy/local/infra.sh provision   download/build into the cache (idempotent, fast when warm);
#                                     as root also Debian's postgresql-15 and chromium
#   deploy/local/infra.sh up          provision, start them, wait until they really answer
#   deploy/local/infra.sh down        stop exactly the processes `up` started (pid files)
#   deploy/local/infra.sh status      what runs, and where
#   deploy/local/infra.sh kill kafka|ferretdb|postgresql
#                                     SIGKILL one of them (a crash: PostgreSQL's postmaster
#                                     and its children at once), keeping its data
#   deploy/local/infra.sh start kafka|ferretdb|postgresql
#                                     start that one again (same state dir, ports, backend)
#                                     and wait until it answers; for PostgreSQL also until a
#                                     running FerretDB answers through it
#
# Downloads and builds live in $RCM_CACHE (~/.cache/rcm-platform); data, logs and pid
# files in $RCM_STATE (~/.cache/rcm-platform/state). Nothing is written into the repo.
# `up` and `status` print KEY=value lines (the URLs) on stdout; everything else goes to stderr.
#
# Environment: RCM_FERRETDB_BACKEND (postgresql | sqlite), RCM_STATE, RCM_KAFKA_PORT (9092),
# RCM_KAFKA_CONTROLLER_PORT (9093), RCM_MONGO_PORT (27017), RCM_POSTGRES_PORT (54329),
# RCM_POSTGRES_USER (the OS user PostgreSQL runs as when this runs as root; postgres).
# PostgreSQL keeps its data in $RCM_STATE/postgresql, SQLite in $RCM_STATE/ferretdb/data:
# switching the backend never mixes data. Why the settings: docs/decisions.md §16.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

KAFKA_VERSION=4.3.1
FERRETDB_VERSION=1.24.2
RCM_CACHE=${RCM_CACHE:-$HOME/.cache/rcm-platform}
RCM_STATE=${RCM_STATE:-$RCM_CACHE/state}
case "$RCM_STATE" in /*) ;; *) RCM_STATE=$PWD/$RCM_STATE ;; esac
KAFKA_PORT=${RCM_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${RCM_KAFKA_CONTROLLER_PORT:-9093}
MONGO_PORT=${RCM_MONGO_PORT:-27017}
POSTGRES_PORT=${RCM_POSTGRES_PORT:-54329}
POSTGRES_BIN=/usr/lib/postgresql/15/bin
POSTGRES_OS_USER=${RCM_POSTGRES_USER:-postgres}
BACKEND=${RCM_FERRETDB_BACKEND:-postgresql}
PYTHON=${PYTHON:-$repo/.venv/bin/python}

kafka_lib=$RCM_CACHE/kafka-$KAFKA_VERSION/lib
ferretdb_bin=$RCM_CACHE/ferretdb-$FERRETDB_VERSION/ferretdb
kafka_dir=$RCM_STATE/kafka
ferretdb_dir=$RCM_STATE/ferretdb
pg_dir=$RCM_STATE/postgresql
pg_data=$pg_dir/data
pg_db=ferretdb

log() { printf '[infra] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

case "$BACKEND" in
  postgresql | sqlite) ;;
  *) die "RCM_FERRETDB_BACKEND must be postgresql or sqlite, not '$BACKEND'" ;;
esac

provision_kafka() {
  if [ -f "$kafka_lib/.complete" ]; then return; fi
  log "resolving Kafka $KAFKA_VERSION from Maven Central into $kafka_lib"
  rm -rf "$kafka_lib"
  mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$kafka_lib" >&2
  touch "$kafka_lib/.complete"
}

provision_ferretdb() {
  if [ -x "$ferretdb_bin" ]; then return; fi
  log "building FerretDB $FERRETDB_VERSION from the Go module proxy into $ferretdb_bin"
  # A binary built straight from the module cache panics at start: FerretDB embeds
  # build/version/version.txt, which the published module lacks. So: download the module
  # (checked against the pinned go.sum beside this script), copy it, add that file, build.
  local src
  src=$(cd "$here/ferretdb" && GOMODCACHE=$RCM_CACHE/go-mod GOFLAGS=-modcacherw \
    go mod download -json github.com/FerretDB/FerretDB |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf "$RCM_CACHE/ferretdb-src"
  cp -r "$src" "$RCM_CACHE/ferretdb-src"
  chmod -R u+w "$RCM_CACHE/ferretdb-src"
  echo "v$FERRETDB_VERSION" >"$RCM_CACHE/ferretdb-src/build/version/version.txt"
  (cd "$RCM_CACHE/ferretdb-src" && GOMODCACHE=$RCM_CACHE/go-mod GOFLAGS=-modcacherw \
    go build -o "$ferretdb_bin.tmp" ./cmd/ferretdb) >&2
  mv "$ferretdb_bin.tmp" "$ferretdb_bin"
  rm -rf "$RCM_CACHE/ferretdb-src"
}

as_root() { [ "$(id -u)" -eq 0 ]; }

provision_postgresql() {
  # Debian's PostgreSQL 15; as root also the OS user it runs as and setfacl (acl) for the
  # one traversal right that user needs on the way to its data dir (see grant_traversal).
  local packages=()
  [ -x "$POSTGRES_BIN/postgres" ] || packages+=(postgresql-15)
  if as_root && ! command -v setfacl >/dev/null; then packages+=(acl); fi
  if [ ${#packages[@]} -gt 0 ]; then
    as_root || die "PostgreSQL 15 is missing ($POSTGRES_BIN): as root run" \
      "'apt-get install -y --no-install-recommends postgresql-15', or use RCM_FERRETDB_BACKEND=sqlite"
    log "installing ${packages[*]} from Debian's packages"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" >&2
  fi
  if as_root && ! id -u "$POSTGRES_OS_USER" >/dev/null 2>&1; then
    log "creating the system user $POSTGRES_OS_USER for PostgreSQL"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$POSTGRES_OS_USER"
  fi
}

provision_chromium() {
  # Debian's chromium for the console's browser tests (tests/browser, Playwright drives it):
  # under CI they fail rather than skip without it, so a fresh machine gets it here.
  if [ -x /usr/bin/chromium ]; then return; fi
  if ! as_root; then
    log "chromium is missing (/usr/bin/chromium): the browser tests skip outside CI;" \
      "as root run 'apt-get install -y --no-install-recommends chromium'"
    return
  fi
  log "installing chromium from Debian's packages"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2
}

provision() {
  provision_kafka
  provision_ferretdb
  if [ "$BACKEND" = postgresql ]; then provision_postgresql; fi
  provision_chromium
}

alive() { # pid -> true if that process exists and is not a zombie waiting to be reaped
  kill -0 "$1" 2>/dev/null && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]
}

running() { # pid file -> true if that process is alive
  [ -f "$1" ] && alive "$(cat "$1")"
}

start_kafka() {
  if running "$kafka_dir/pid"; then log "Kafka already running (pid $(cat "$kafka_dir/pid"))"; return; fi
  mkdir -p "$kafka_dir"
  sed -e "s#@DATA@#$kafka_dir/data#" -e "s#@PORT@#$KAFKA_PORT#g" \
    -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    "$here/kafka/server.properties" >"$kafka_dir/server.properties"
  if [ ! -f "$kafka_dir/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode())')
    java -Xmx256m -cp "$kafka_lib/*" -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$kafka_dir/server.properties" \
      >"$kafka_dir/format.log" 2>&1
  fi
  log "starting Kafka on 127.0.0.1:$KAFKA_PORT (log: $kafka_dir/kafka.log)"
  nohup java -Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    -cp "$kafka_lib/*" kafka.Kafka "$kafka_dir/server.properties" \
    >"$kafka_dir/kafka.log" 2>&1 </dev/null &
  echo $! >"$kafka_dir/pid"
}

pg() { # run a PostgreSQL program as its OS user (postgres refuses root), from its own dir
  local program=$1
  shift
  if as_root; then
    (cd "$pg_dir" && runuser -u "$POSTGRES_OS_USER" -- "$POSTGRES_BIN/$program" "$@")
  else
    (cd "$pg_dir" && "$POSTGRES_BIN/$program" "$@")
  fi
}

grant_traversal() {
  # $RCM_STATE is usually under /root (mode 0700). Rather than open /root to everyone
  # (o+x), give only PostgreSQL's OS user the right to pass through (an ACL entry --x:
  # no listing, no reading); directories it can already pass are left alone.
  as_root || return 0
  if runuser -u "$POSTGRES_OS_USER" -- test -x "$RCM_STATE"; then return; fi
  local dir=/ part
  local IFS=/
  for part in ${RCM_STATE#/}; do
    dir=${dir%/}/$part
    if ! runuser -u "$POSTGRES_OS_USER" -- test -x "$dir"; then
      log "letting $POSTGRES_OS_USER traverse $dir (setfacl -m u:$POSTGRES_OS_USER:x)"
      setfacl -m "u:$POSTGRES_OS_USER:x" "$dir"
    fi
  done
}

start_postgresql() {
  if running "$pg_dir/pid"; then log "PostgreSQL already running (pid $(cat "$pg_dir/pid"))"; return; fi
  mkdir -p "$pg_dir"
  chmod 700 "$pg_dir"
  if as_root; then
    chown "$POSTGRES_OS_USER:" "$pg_dir"
    grant_traversal
  fi
  if [ ! -f "$pg_data/PG_VERSION" ]; then
    log "creating the PostgreSQL cluster in $pg_data"
    rm -rf "$pg_data.tmp"
    if ! pg initdb -D "$pg_data.tmp" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$pg_dir/initdb.log" 2>&1; then
      tail -n 20 "$pg_dir/initdb.log" >&2
      die "initdb failed (log: $pg_dir/initdb.log)"
    fi
    echo "include 'rcm.conf'" >>"$pg_data.tmp/postgresql.conf"
    mv "$pg_data.tmp" "$pg_data"
  fi
  sed -e "s#@PORT@#$POSTGRES_PORT#" -e "s#@SOCKET_DIR@#$pg_dir#" \
    "$here/postgresql/postgresql.conf" >"$pg_data/rcm.conf"
  if as_root; then chown "$POSTGRES_OS_USER:" "$pg_data/rcm.conf"; fi
  if pg pg_ctl status -D "$pg_data" >/dev/null 2>&1; then
    log "PostgreSQL already running from $pg_data without a pid file; adopting it"
  else
    log "starting PostgreSQL 15 on 127.0.0.1:$POSTGRES_PORT (log: $pg_dir/postgresql.log)"
    if ! pg pg_ctl start -D "$pg_data" -l "$pg_dir/postgresql.log" -w -t 60 -s </dev/null >&2; then
      tail -n 20 "$pg_dir/postgresql.log" >&2 || true
      die "PostgreSQL did not start"
    fi
  fi
  head -n 1 "$pg_data/postmaster.pid" >"$pg_dir/pid"
  # pg_ctl -w returns once the server accepts connections: create FerretDB's database once.
  local psql=("$POSTGRES_BIN/psql" -X -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres)
  if [ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$pg_db'")" != 1 ]; then
    log "creating database $pg_db"
    "${psql[@]}" -d postgres -c "CREATE DATABASE $pg_db" >&2
  fi
  "${psql[@]}" -d "$pg_db" -v ON_ERROR_STOP=1 -o /dev/null -f "$here/postgresql/ferretdb-indexes.sql" >&2
}

stop_postgresql() {
  if running "$pg_dir/pid"; then
    local pid
    pid=$(cat "$pg_dir/pid")
    log "stopping PostgreSQL (pid $pid)"
    if ! pg pg_ctl stop -D "$pg_data" -m fast -w -t 20 -s >&2; then
      log "PostgreSQL did not stop in 20 s, killing"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pg_dir/pid"
}

running_backend() { # the backend of the FerretDB that runs (files from before §16: sqlite)
  cat "$ferretdb_dir/backend" 2>/dev/null || echo sqlite
}

check_backend() {
  # One FerretDB per state dir. Asked explicitly for the other backend: refuse; by default:
  # keep the running one and say so.
  running "$ferretdb_dir/pid" || return 0
  local current
  current=$(running_backend)
  [ "$current" != "$BACKEND" ] || return 0
  if [ -n "${RCM_FERRETDB_BACKEND:-}" ]; then
    die "FerretDB already runs on $current (pid $(cat "$ferretdb_dir/pid")), not $BACKEND: run '$0 down' first"
  fi
  log "FerretDB already runs on $current; keeping it (run '$0 down' to switch to $BACKEND)"
  BACKEND=$current
}

start_ferretdb() {
  if running "$ferretdb_dir/pid"; then
    log "FerretDB already running (pid $(cat "$ferretdb_dir/pid"), $(running_backend) backend)"
    return
  fi
  mkdir -p "$ferretdb_dir/state"
  local backend_args
  if [ "$BACKEND" = postgresql ]; then
    backend_args=(--handler=postgresql
      --postgresql-url="postgres://postgres@127.0.0.1:$POSTGRES_PORT/$pg_db")
  else
    mkdir -p "$ferretdb_dir/data"
    backend_args=(--handler=sqlite --sqlite-url="file:$ferretdb_dir/data/")
  fi
  log "starting FerretDB ($BACKEND backend) on 127.0.0.1:$MONGO_PORT (log: $ferretdb_dir/ferretdb.log)"
  nohup "$ferretdb_bin" "${backend_args[@]}" \
    --listen-addr="127.0.0.1:$MONGO_PORT" --state-dir="$ferretdb_dir/state" \
    --telemetry=disable --debug-addr=- --log-level=warn \
    >"$ferretdb_dir/ferretdb.log" 2>&1 </dev/null &
  echo $! >"$ferretdb_dir/pid"
  echo "$BACKEND" >"$ferretdb_dir/backend"
}

stop() { # name, pid file
  if running "$2"; then
    local pid
    pid=$(cat "$2")
    log "stopping $1 (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.2; done
    if alive "$pid"; then log "$1 did not stop in 20 s, killing"; kill -9 "$pid"; fi
  fi
  rm -f "$2"
}

kill_component() { # SIGKILL, no shutdown of any kind: what a crash leaves behind
  local pid_file pids=()
  case "$1" in
    kafka) pid_file=$kafka_dir/pid ;;
    ferretdb) pid_file=$ferretdb_dir/pid ;;
    postgresql) pid_file=$pg_dir/pid ;;
  esac
  running "$pid_file" || die "$1 is not running (no live pid in $pid_file)"
  pids=("$(cat "$pid_file")")
  if [ "$1" = postgresql ]; then
    # The backends, walwriter and checkpointer die with the postmaster, as in a crash of
    # the server; alone they would linger until they noticed the postmaster was gone.
    mapfile -t -O 1 pids < <(ps -o pid= --ppid "${pids[0]}" | tr -d ' ')
  fi
  log "killing $1 with SIGKILL (pids ${pids[*]})"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  # Until reaped, not only dead: PostgreSQL takes a zombie postmaster for a live one (its
  # lock file), and a zombie waits for init here, about a second.
  local pid
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 300); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    [ -e "/proc/$pid" ] && die "$1 (pid $pid) still there 30 s after SIGKILL"
  done
  rm -f "$pid_file"
}

start_component() {
  local ready=()
  case "$1" in
    kafka)
      start_kafka
      ready=(--kafka "127.0.0.1:$KAFKA_PORT" --kafka-pid "$(cat "$kafka_dir/pid")")
      ;;
    ferretdb)
      if [ -f "$ferretdb_dir/backend" ]; then BACKEND=$(running_backend); fi # as before the crash
      start_ferretdb
      ready=(--mongo "mongodb://127.0.0.1:$MONGO_PORT/" --mongo-write
        --mongo-pid "$(cat "$ferretdb_dir/pid")")
      ;;
    postgresql)
      start_postgresql
      if running "$ferretdb_dir/pid"; then # answering means answering through FerretDB
        ready=(--mongo "mongodb://127.0.0.1:$MONGO_PORT/" --mongo-write
          --mongo-pid "$(cat "$ferretdb_dir/pid")")
      fi
      ;;
  esac
  # Kafka recovers every partition after a crash: minutes when thousands are on a busy machine.
  if [ ${#ready[@]} -gt 0 ] && ! "$PYTHON" "$here/wait_ready.py" --timeout 300 "${ready[@]}"; then
    log "$1 not ready"
    exit 1
  fi
}

urls() {
  echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT"
  echo "MONGODB_URL=mongodb://127.0.0.1:$MONGO_PORT/"
}

case "${1:-}" in
  provision)
    provision
    ;;
  up)
    check_backend
    provision
    start_kafka # boots in the background while PostgreSQL and FerretDB start
    if [ "$BACKEND" = postgresql ]; then start_postgresql; fi
    start_ferretdb
    if ! "$PYTHON" "$here/wait_ready.py" --kafka "127.0.0.1:$KAFKA_PORT" \
      --mongo "mongodb://127.0.0.1:$MONGO_PORT/" --timeout 120 \
      --kafka-pid "$(cat "$kafka_dir/pid")" --mongo-pid "$(cat "$ferretdb_dir/pid")"; then
      log "not ready; last lines of the logs:"
      logs=("$kafka_dir/kafka.log" "$ferretdb_dir/ferretdb.log")
      if [ "$BACKEND" = postgresql ]; then logs+=("$pg_dir/postgresql.log"); fi
      tail -n 20 "${logs[@]}" >&2 || true
      exit 1
    fi
    urls
    ;;
  down) # the reverse of `up`, whatever RCM_FERRETDB_BACKEND says now
    stop FerretDB "$ferretdb_dir/pid"
    rm -f "$ferretdb_dir/backend"
    stop_postgresql
    stop Kafka "$kafka_dir/pid"
    ;;
  status)
    running "$kafka_dir/pid" && log "Kafka running (pid $(cat "$kafka_dir/pid"))" || log "Kafka not running"
    if running "$ferretdb_dir/pid"; then
      BACKEND=$(running_backend)
      log "FerretDB running (pid $(cat "$ferretdb_dir/pid"), $BACKEND backend)"
    else
      log "FerretDB not running"
    fi
    if running "$pg_dir/pid"; then
      log "PostgreSQL running (pid $(cat "$pg_dir/pid"), 127.0.0.1:$POSTGRES_PORT)"
    elif [ "$BACKEND" = postgresql ]; then
      log "PostgreSQL not running"
    fi
    urls
    ;;
  kill | start)
    case "${2:-}" in
      kafka | ferretdb | postgresql) ;;
      *)
        echo "usage: $0 $1 kafka|ferretdb|postgresql" >&2
        exit 2
        ;;
    esac
    if [ "$1" = kill ]; then kill_component "$2"; else start_component "$2"; fi
    ;;
  *)
    echo "usage: $0 provision|up|down|status|kill <component>|start <component>" >&2
    exit 2
    ;;
esac
