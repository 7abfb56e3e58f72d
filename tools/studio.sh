#!/bin/sh
# make studio: the studio (examples/studio/, docs/studio.md) on 127.0.0.1.  Starts the
# emulator unless STARVIDEOS_BASE_URL and STARVIDEOS_API_KEY are both set, writes
# examples/studio/nginx.conf with its paths and port into STUDIO_DIR/run/, starts
# nginx on it, prints the page's URL and waits: Ctrl-C (or TERM) stops nginx and
# the emulator, and nothing else.
#   STUDIO_PORT  the port (default: a free one)   STUDIO_DIR  the folder (default build/studio)
set -u
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
LUA=${LUA:-lua5.4}
NGINX=${NGINX:-/usr/sbin/nginx}
dir=${STUDIO_DIR:-$root/build/studio}
mkdir -p "$dir/videos" "$dir/run" "$dir/tmp" || exit 1
dir=$(cd "$dir" && pwd)
emu=""
ngx=""

stop() {
  trap - EXIT INT TERM
  [ -n "$ngx" ] && kill -TERM "$ngx" 2>/dev/null && wait "$ngx" 2>/dev/null
  [ -n "$emu" ] && kill -TERM "$emu" 2>/dev/null && wait "$emu" 2>/dev/null
  echo "studio: stopped (its journal and videos stay in $dir)"
}
trap 'stop' EXIT
trap 'stop; exit 0' INT      # Ctrl-C: the way to stop it, not a failure
trap 'stop; exit 143' TERM HUP

# the secret that signs the page's tokens and the browsers' cookies (0600): the studio's own, never sent
if [ ! -s "$dir/secret" ]; then
  (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$dir/secret") || exit 1
fi
chmod 600 "$dir/secret" || exit 1   # one made by an earlier studio, or copied, is kept to its owner too

if [ -z "${STARVIDEOS_BASE_URL:-}" ] || [ -z "${STARVIDEOS_API_KEY:-}" ]; then
  key="studio-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  : >"$dir/emulator.out"
  "$LUA" bin/starvideos emulator --port 0 --key "$key" --queued 1 --processing 4 \
    >"$dir/emulator.out" 2>"$dir/emulator.err" &
  emu=$!
  i=0
  until grep -q '^export STARVIDEOS_API_KEY=' "$dir/emulator.out"; do
    if ! kill -0 "$emu" 2>/dev/null || [ $i -ge 100 ]; then
      echo "studio: the emulator did not start:" >&2
      cat "$dir/emulator.out" "$dir/emulator.err" >&2
      exit 1
    fi
    sleep 0.1
    i=$((i + 1))
  done
  eval "$(grep '^export STARVIDEOS_' "$dir/emulator.out")"
  export STUDIO_INTERVAL="${STUDIO_INTERVAL:-1}"
  echo "studio: the emulator at $STARVIDEOS_BASE_URL (its tasks take 5 s and cost nothing)"
fi

port=${STUDIO_PORT:-$("$LUA" -e 'local s = assert(require("socket").bind("127.0.0.1", 0)) local _, p = s:getsockname() print(p) s:close()')}
case "$port" in ''|*[!0-9]*) echo "studio: STUDIO_PORT: expected a port number, got '$port'" >&2; exit 2;; esac

conf="$dir/run/nginx.conf"
{
  # started as root, nginx runs its workers as nobody: the studio's folder is then theirs
  if [ "$(id -u)" = 0 ]; then echo "user nobody nogroup;"; chown -R nobody:nogroup "$dir/videos" "$dir/tmp"; \
    touch "$dir/tasks.jsonl" && chown nobody:nogroup "$dir" "$dir/tasks.jsonl"; fi
  sed -e "s|@ROOT@|$root|g" -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" examples/studio/nginx.conf
} >"$conf" || exit 1

"$NGINX" -p "$dir/run/" -e "$dir/error.log" -c "$conf" </dev/null &
ngx=$!
i=0
until "$LUA" -e "local c = require('socket').tcp() c:settimeout(0.2) os.exit(c:connect('127.0.0.1', $port) and 0 or 1)" 2>/dev/null; do
  if ! kill -0 "$ngx" 2>/dev/null || [ $i -ge 150 ]; then
    echo "studio: nginx did not start (its log: $dir/error.log):" >&2
    tail -n 20 "$dir/error.log" >&2
    exit 1
  fi
  sleep 0.1
  i=$((i + 1))
done
echo "studio: open http://127.0.0.1:$port/  (Ctrl-C stops it)"
wait "$ngx"
