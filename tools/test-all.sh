#!/bin/sh
# make test-all: the whole busted suite once per VM named as an argument
# (lua5.1 lua5.2 lua5.3 lua5.4 luajit).  Each VM loads its own C modules from
# build/<vm>/ and runs the emulator, the CLI and the fixtures under itself
# (STARVIDEOS_LUA, read by spec/helper.lua).  Prints one line per VM,
#   lua5.1: 600 passed, 0 failed
# then the total for all VMs, "N passed, N failed".  Exits non-zero when a VM
# failed a test, or gave no summary (counted as one failure).
# LINT_RESULT=failed (set by make test-all) adds a "lint: failed" line and one
# failure to the total.  BUSTED_ARGS is passed on to every busted run.
cd "$(dirname "$0")/.." || exit 1
[ $# -gt 0 ] || { echo "usage: tools/test-all.sh VM..." >&2; exit 2; }

logdir=$(mktemp -d /tmp/starvideos-test-all.XXXXXX) || exit 1
trap 'rm -rf "$logdir"' EXIT
results=""
failures=""
total_passed=0
total_failed=0
status=0

for vm in "$@"; do
  log="$logdir/$vm.log"
  echo "==== $vm"
  if ! command -v "$vm" >/dev/null 2>&1; then
    echo "test-all: $vm is not installed" >"$log"
    cat "$log" >&2
  else
    # LUA_CPATH_5_x would win over LUA_CPATH on 5.2+: leave only LUA_CPATH.
    # shellcheck disable=SC2086
    (
      env -u LUA_CPATH_5_2 -u LUA_CPATH_5_3 -u LUA_CPATH_5_4 \
        -u LUA_PATH_5_2 -u LUA_PATH_5_3 -u LUA_PATH_5_4 \
        LUA_PATH='lua/?.lua;lua/?/init.lua;./?.lua;;' \
        LUA_CPATH="build/$vm/?.so;;" \
        STARVIDEOS_CPATH="build/$vm/?.so" \
        STARVIDEOS_LUA="$vm" \
        "$vm" /usr/bin/busted --cpath="build/$vm/?.so" $BUSTED_ARGS 2>&1
      echo "exit status $?"
    ) | tee "$log"
  fi
  # busted ends with "N successes / N failures / N errors / N pending : T seconds"
  summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
    grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' | tail -n 1)
  code=$(sed -n 's/^exit status \([0-9]*\)$/\1/p' "$log" | tail -n 1)
  if [ -z "$summary" ]; then
    passed=0
    failed=1
    line="$vm: 0 passed, 1 failed (no test summary: busted did not finish)"
  else
    passed=$(echo "$summary" | awk '{print $1}')
    failed=$(echo "$summary" | awk '{print $4 + $7}')
    line="$vm: $passed passed, $failed failed"
    # busted exited non-zero with nothing failed: count that as a failure too
    if [ "$failed" -eq 0 ] && [ "${code:-1}" -ne 0 ]; then
      failed=1
      line="$line (busted exited ${code:-?})"
    fi
  fi
  if [ "$failed" -gt 0 ]; then
    status=1
    # name each failed test again at the end, where a CI log's tail shows it
    failures="$failures$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
      awk -v vm="$vm" '/^(Failure|Error) (→|->) / { n = 4; print vm ": " $0; next }
                       n > 0 { n--; if ($0 != "") print vm ":   " $0 }' | head -n 60)
"
  fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  results="$results$line
"
done

if [ "${LINT_RESULT:-}" = failed ]; then
  results="${results}lint: failed (see the luacheck / luac5.1 output above)
"
  total_failed=$((total_failed + 1))
  status=1
fi

if [ -n "$(printf '%s' "$failures" | tr -d '\n')" ]; then
  echo "==== failed tests"
  printf '%s' "$failures"
fi
echo "==== all VMs"
printf '%s' "$results"
echo "$total_passed passed, $total_failed failed"
exit "$status"
