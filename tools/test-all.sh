#!/bin/sh
# make test-all: `make test`'s specs (spec/ and rocks/*/spec/ but their hosts/) once per VM named
# as an argument (lua5.1 lua5.2 lua5.3 lua5.4 lua5.5 luajit), one VM after another, and beside them, from the
# start, the hosts' specs (spec/hosts/, rocks/*/spec/hosts/) once, under lua5.4 (each starts the host its case
# needs; its files mostly wait on their servers and hosts, as the VMs' parts do on the emulator: on 2 cores the
# hosts' part alone took 882 s and the six VMs' 746 s one after the other, using under half the machine).  Each
# VM loads its own C modules from build/<vm>/ and runs the emulator, the CLI
# and the fixtures under itself (STARVIDEOS_LUA, read by spec/helper.lua).  Lua 5.4's part runs every file of the
# fast tier; the others leave out those spec/support/vm_once.lua lists, whose subject does not run on the VM.
# Then the matrix of promises and places (docs/matrix.md) is checked against the cells the run's cases proved.
# Prints one line per part, with its seconds,
#   lua5.1: 600 passed, 0 failed (120 s)
# then the total, "N passed, N failed".  Exits non-zero when a part failed.  The hosts' part's output is shown
# whole once it ends, after the VMs' parts.
# LINT_RESULT=failed (set by make test-all) adds a "lint: failed" line and one
# failure to the total.
# BESIDE_HOSTS="COMMAND": a command run once the VMs' parts have ended, while the hosts' part still runs (.ci/run:
# make check); its output is its own, its status not counted here.
#
#   tools/test-all.sh --fast VM [FILE...]   (make test VM=<vm>, SPECS=): that VM's part alone, of FILE... or of
#                                          every spec of `make test`; no hosts' part, no matrix (build/matrix/ is
#                                          left as the last full run wrote it)
fast=
if [ "${1:-}" = --fast ]; then
  fast=1
  shift
fi
cd "$(dirname "$0")/.." || exit 1
# Lua 5.5, which Debian 12 lacks: the interpreter mk/lua55.mk built (busted 2.3.0 and LuaSocket found through its
# own default paths), named lua5.5 as the other VMs are
PATH="$(pwd)/build/vm5.5/bin:$PATH"
[ $# -gt 0 ] || { echo "usage: tools/test-all.sh VM... | --fast VM [FILE...]" >&2; exit 2; }

logdir=$(mktemp -d /tmp/starvideos-test-all.XXXXXX) || exit 1
trap 'rm -rf "$logdir"' EXIT
# the checkout's Lua: the core's lua/, then each other rock's (rocks/folders.lua lists them)
LUA_DIRS=$(lua5.4 -e 'io.write((dofile("tools/lua_dirs.lua")()))') || exit 1
# the core's specs (spec/) and each rock's (rocks/<rock>/spec/); those under a hosts/ folder are the hosts tier's
specs=$(find spec rocks/*/spec -name '*_spec.lua' -not -path '*/hosts/*' | sort)
hosts=$(find spec rocks/*/spec -name '*_spec.lua' -path '*/hosts/*' | sort)
# shellcheck disable=SC2086
tagged=$(grep -l -e '#hosts' $specs)
if [ -n "$fast" ] && [ $# -gt 1 ]; then
  vm=$1
  shift
  specs="$*"
  set -- "$vm"
fi
# the cells of docs/matrix.md each passing case proved (spec/support/matrix.lua), checked against the page last
matrix="$(pwd)/build/matrix"
if [ -z "$fast" ]; then
  rm -rf "$matrix" && mkdir -p "$matrix" || exit 1
  export STARVIDEOS_MATRIX="$matrix"
fi
# the fast tier's files but those run once (spec/support/vm_once.lua): every VM's part but Lua 5.4's
# shellcheck disable=SC2086
on_every_vm=$(echo 'local once = dofile("spec/support/vm_once.lua")
  for i = 1, #arg do if not once[arg[i]] then print(arg[i]) end end' | lua5.4 - $specs) || exit 1

# part NAME VM CPATH FILES...: one run of tools/run-specs.sh, its line kept in $logdir/NAME.part (part_rerun: the
# command that runs its failed files again, which tools/run-specs.sh prints, {} their names)
part() {
  name=$1 vm=$2 cpath=$3
  shift 3
  echo "==== $name"
  t0=$(date +%s)
  # LUA_CPATH_5_x would win over LUA_CPATH on 5.2+: leave only LUA_CPATH.
  env -u LUA_CPATH_5_2 -u LUA_CPATH_5_3 -u LUA_CPATH_5_4 -u LUA_CPATH_5_5 -u LUA_PATH_5_2 -u LUA_PATH_5_3 -u LUA_PATH_5_4 -u LUA_PATH_5_5 \
    LUA_PATH="$LUA_DIRS./?.lua;;" LUA_CPATH="$cpath;;" STARVIDEOS_CPATH="$cpath" \
    STARVIDEOS_LUA="$vm" BUSTED_ARGS="--cpath=$cpath $BUSTED_ARGS" \
    JOBS=$part_jobs TIER=$part_tier RERUN="$part_rerun" sh tools/run-specs.sh "$vm" "$@" | tee "$logdir/$name.log"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logdir/$name.log" | tail -n 1)
  [ -n "$line" ] || line="0 passed, 1 failed"
  echo "$name: $line ($(($(date +%s) - t0)) s)" > "$logdir/$name.part"
}

# the hosts' part, from the start, beside the VMs' (its output kept until they end)
hosts_pid=
if [ -z "$fast" ]; then
  (
    part_jobs=${JOBS:-} part_tier=hosts part_rerun="make test-hosts SPECS=\"{}\""
    # shellcheck disable=SC2086
    part hosts lua5.4 "build/?.so" $hosts $tagged
  ) > "$logdir/hosts.out" 2>&1 &
  hosts_pid=$!
fi

# (as many spec files at once as JOBS says, else tools/run-specs.sh's number for the tier)
part_jobs=${JOBS:-} part_tier=fast
for vm in "$@"; do
  cpath="build/$vm/?.so"
  part_rerun="make test VM=$vm SPECS=\"{}\""
  [ "$vm" = lua5.4 ] && cpath="build/?.so" && part_rerun="make test SPECS=\"{}\""
  files=$on_every_vm
  [ "$vm" = lua5.4 ] || [ -n "$fast" ] && files=$specs
  # shellcheck disable=SC2086
  part "$vm" "$vm" "$cpath" $files
done
if [ -n "$hosts_pid" ]; then
  if [ -n "${BESIDE_HOSTS:-}" ]; then
    echo "==== beside the hosts' part: $BESIDE_HOSTS"
    sh -c "$BESIDE_HOSTS"
  fi
  echo "==== (the hosts' part, run beside the VMs')"
  wait "$hosts_pid"
  cat "$logdir/hosts.out"
fi
# each part's line, in the order they were named, and their sums
results="" total_passed=0 total_failed=0 status=0
for name in "$@" ${hosts_pid:+hosts}; do
  [ -f "$logdir/$name.part" ] || echo "$name: 0 passed, 1 failed (it gave no line)" > "$logdir/$name.part"
  line=$(cat "$logdir/$name.part")
  results="$results$line
"
  total_passed=$((total_passed + $(echo "$line" | awk '{ print $2 }')))
  failed=$(echo "$line" | awk '{ print $4 }')
  total_failed=$((total_failed + failed))
  [ "$failed" -gt 0 ] && status=1
done
if [ -n "$fast" ]; then
  printf '%s' "$results"
  echo "$total_passed passed, $total_failed failed"
  exit "$status"
fi

# the matrix: every cell proved, said not to apply, or open (tools/matrix.lua), and docs/matrix.md the page written
echo "==== matrix"
mline=$(lua5.4 tools/matrix.lua check "$matrix" | tee "$logdir/matrix.out" | tail -n 1)
grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$logdir/matrix.out"
echo "$mline" | grep -qE '^1 passed, 0 failed$' || { mline="0 passed, 1 failed"; status=1; }
total_passed=$((total_passed + $(echo "$mline" | awk '{ print $1 }')))
total_failed=$((total_failed + $(echo "$mline" | awk '{ print $3 }')))
results="${results}matrix: $mline
"

if [ "${LINT_RESULT:-}" = failed ]; then
  results="${results}lint: failed (see the luacheck / luac5.1 output above)
"
  total_failed=$((total_failed + 1))
  status=1
fi
# the failed files' logs again, last, where a truncated CI log still shows them
for log in "$logdir"/*.log; do
  grep -qE '^==== (spec|rocks)/' "$log" || continue
  echo "==== failures of $(basename "$log" .log)"
  sed -n -E '/^==== (spec|rocks)\//,/^[0-9]* passed, [0-9]* failed$/p' "$log" | grep -Ev '^[0-9]+ passed, [0-9]+ failed$' | tail -n 60
done
echo "==== all parts"
printf '%s' "$results"
echo "$total_passed passed, $total_failed failed"
exit "$status"
