#!/usr/bin/env bash
# Entry point of the compose mongodb container, in front of the image's own.
# mongod in a replica set with access control needs a key file: the secret the members
# authenticate each other with. This set has one member, so a random key made on the
# container's first start serves; nothing reads it but this mongod.
set -euo pipefail

keyfile=/data/configdb/keyfile
if [ ! -s "$keyfile" ]; then
  (umask 077 && head -c 756 /dev/urandom | base64 -w 0 >"$keyfile")
fi
chown mongodb:mongodb "$keyfile"
chmod 400 "$keyfile" # mongod refuses a key file others can read

# The image's entry point: the root user and /docker-entrypoint-initdb.d on an empty
# volume, then mongod as the mongodb user.
exec docker-entrypoint.sh "$@"
