#!/bin/sh
# make demo: start the emulator on a free port, generate a video through the
# command line, leave the MP4 in demo-out/ and say where it is.
set -u
cd "$(dirname "$0")/.." || exit 1
LUA=${LUA:-lua5.4}
out_dir=demo-out
mkdir -p "$out_dir"
log=$(mktemp -d /tmp/starvideos-demo.XXXXXX)
unset STARVIDEOS_API_KEY STARVIDEOS_BASE_URL
# (made here: the emulator's shell opens them after the loop below may first look)
: >"$log/emulator.out"
: >"$log/emulator.err"

"$LUA" bin/starvideos emulator --port 0 --key demo-key --queued 1 --processing 2 --max-lifetime 600 \
  >"$log/emulator.out" 2>"$log/emulator.err" &
emu=$!
trap 'kill $emu 2>/dev/null; wait $emu 2>/dev/null; rm -rf "$log"' EXIT INT TERM

# once it accepts, the emulator prints "listening on URL", the key it accepts
# and the two export lines that point a shell at it: wait for them, run them
i=0
while [ $i -lt 100 ]; do
  grep -q '^export STARVIDEOS_API_KEY=' "$log/emulator.out" && break
  kill -0 $emu 2>/dev/null || break
  sleep 0.1
  i=$((i + 1))
done
if ! grep -q '^export STARVIDEOS_API_KEY=' "$log/emulator.out"; then
  echo "demo: the emulator did not start:" >&2
  cat "$log/emulator.out" "$log/emulator.err" >&2
  exit 1
fi
cat "$log/emulator.out"
eval "$(grep '^export STARVIDEOS_' "$log/emulator.out")"

set -x
"$LUA" bin/starvideos generate --model videos --duration 5 --ratio 16:9 \
  --prompt "A cute kitten playing on a sunlit meadow, cinematic lens" \
  --interval 1 --timeout 60 --out "$out_dir/kitten.mp4" || exit 1
{ set +x; } 2>/dev/null

file="$out_dir/kitten.mp4"
if [ "$(dd if="$file" bs=1 skip=4 count=4 2>/dev/null)" != "ftyp" ]; then
  echo "demo: $file is not an MP4" >&2
  exit 1
fi
echo "demo: a playable MP4 is at $(pwd)/$file ($(wc -c <"$file") bytes)"
