#!/usr/bin/env bash
# Local infrastructure without Docker: Apache Kafka (KRaft, one combined node) from
# Maven Central jars and FerretDB (SQLite backend) built from the Go module proxy.
#
#   deploy/local/infra.sh provision   download/build into the cache (idempotent, fast when warm)
#   deploy/local/infra.sh up          provision, start both, wait until they really answer
#   deploy/local/infra.sh down        stop exactly the processes `up` started (pid files)
#   deploy/local/infra.sh status      what runs, and where
#
# Downloads and builds live in $RCM_CACHE (~/.cache/rcm-platform); data, logs and pid
# files in $RCM_STATE (~/.cache/rcm-platform/state). Nothing is written into the repo.
# `up` and `status` print KEY=value lines (the URLs) on stdout; everything else goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

KAFKA_VERSION=4.3.1
FERRETDB_VERSION=1.24.2
RCM_CACHE=${RCM_CACHE:-$HOME/.cache/rcm-platform}
RCM_STATE=${RCM_STATE:-$RCM_CACHE/state}
KAFKA_PORT=${RCM_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${RCM_KAFKA_CONTROLLER_PORT:-9093}
MONGO_PORT=${RCM_MONGO_PORT:-27017}
PYTHON=${PYTHON:-$repo/.venv/bin/python}

kafka_lib=$RCM_CACHE/kafka-$KAFKA_VERSION/lib
ferretdb_bin=$RCM_CACHE/ferretdb-$FERRETDB_VERSION/ferretdb
kafka_dir=$RCM_STATE/kafka
ferretdb_dir=$RCM_STATE/ferretdb

log() { printf '[infra] %s\n' "$*" >&2; }

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

running() { # pid file -> true if that process is alive
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
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

start_ferretdb() {
  if running "$ferretdb_dir/pid"; then log "FerretDB already running (pid $(cat "$ferretdb_dir/pid"))"; return; fi
  mkdir -p "$ferretdb_dir/data" "$ferretdb_dir/state"
  log "starting FerretDB on 127.0.0.1:$MONGO_PORT (log: $ferretdb_dir/ferretdb.log)"
  nohup "$ferretdb_bin" --handler=sqlite --sqlite-url="file:$ferretdb_dir/data/" \
    --listen-addr="127.0.0.1:$MONGO_PORT" --state-dir="$ferretdb_dir/state" \
    --telemetry=disable --debug-addr=- --log-level=warn \
    >"$ferretdb_dir/ferretdb.log" 2>&1 </dev/null &
  echo $! >"$ferretdb_dir/pid"
}

stop() { # name, pid file
  if running "$2"; then
    local pid
    pid=$(cat "$2")
    log "stopping $1 (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then log "$1 did not stop in 20 s, killing"; kill -9 "$pid"; fi
  fi
  rm -f "$2"
}

urls() {
  echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT"
  echo "MONGODB_URL=mongodb://127.0.0.1:$MONGO_PORT/"
}

case "${1:-}" in
  provision)
    provision_kafka
    provision_ferretdb
    ;;
  up)
    provision_kafka
    provision_ferretdb
    start_kafka
    start_ferretdb
    if ! "$PYTHON" "$here/wait_ready.py" --kafka "127.0.0.1:$KAFKA_PORT" \
      --mongo "mongodb://127.0.0.1:$MONGO_PORT/" --timeout 120 \
      --kafka-pid "$(cat "$kafka_dir/pid")" --mongo-pid "$(cat "$ferretdb_dir/pid")"; then
      log "not ready; last lines of the logs:"
      tail -n 20 "$kafka_dir/kafka.log" "$ferretdb_dir/ferretdb.log" >&2 || true
      exit 1
    fi
    urls
    ;;
  down)
    stop Kafka "$kafka_dir/pid"
    stop FerretDB "$ferretdb_dir/pid"
    ;;
  status)
    running "$kafka_dir/pid" && log "Kafka running (pid $(cat "$kafka_dir/pid"))" || log "Kafka not running"
    running "$ferretdb_dir/pid" && log "FerretDB running (pid $(cat "$ferretdb_dir/pid"))" || log "FerretDB not running"
    urls
    ;;
  *)
    echo "usage: $0 provision|up|down|status" >&2
    exit 2
    ;;
esac
