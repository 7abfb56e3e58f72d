#!/bin/sh
# Run busted spec files, each in a process of its own, JOBS at a time (default: three times the machine's cores for
# the fast tier, make test's and make check's ASan part; the cores for the hosts' tier, TIER=hosts), and end with
# one line "N passed, N failed".
#
#   tools/run-specs.sh VM FILE...       (make test, make test-hosts, tools/test-all.sh)
#
# A file that fails or gives no busted summary (a crash) is shown whole at the
# end, its name first; every file's summary and time is listed.  A process per
# file also keeps one spec's crash from hiding the others' results.  The seed
# of every random choice a spec makes is spec/helper.lua's (printed in its
# header line when a spec uses it).  BUSTED_ARGS is passed on to every busted run.
#
# When files failed, the lines before the last name them, one a line, then one command that runs them again:
# RERUN's, its {} replaced by their names (make test sets it: make test SPECS="{}"; tools/test-all.sh its parts'),
# else this script's own line for them.
#
# A case or describe of a file outside spec/hosts/ and rocks/<rock>/spec/hosts/ whose name has the tag #hosts
# (a fault run of many real processes, a run under every VM) belongs to the hosts
# tier: the fast tier leaves it out (busted --exclude-tags=hosts), and the hosts
# tier (TIER=hosts: make test-hosts, tools/test-all.sh) runs the files of
# spec/hosts/ and rocks/<rock>/spec/hosts/ whole and, of the other files it is given, the #hosts cases alone.
# one file (the script calls itself for each): its log, exit status and seconds
if [ "${1:-}" = --one ]; then
  name=$(echo "$4" | tr '/' '_')
  case "$4" in
    spec/hosts/*|rocks/*/spec/hosts/*) tags= ;;
    *) if [ "${TIER:-fast}" = hosts ]; then tags=--tags=hosts; else tags=--exclude-tags=hosts; fi ;;
  esac
  start=$(date +%s.%N)
  # the file's own TMPDIR (helper.tmpdir, the journals' leases elsewhere: starvideos-leases-UID), counted and
  # removed once it ran: nothing it forgot is left in /tmp (a short name: unix sockets live in there)
  tmp=$(mktemp -d "$3/t.XXXXXX")
  chmod 755 "$tmp" # (nginx's workers run as nobody: they must reach the specs' folders, as under /tmp itself)
  # shellcheck disable=SC2086
  # (and the file's name, which the cells of docs/matrix.md it proves are recorded under: spec/support/matrix.lua)
  STARVIDEOS_SPEC_FILE="$4" TMPDIR="$tmp" "$2" /usr/bin/busted -o utfTerminal $tags $BUSTED_ARGS "$4" > "$3/$name.log" 2>&1
  echo $? > "$3/$name.rc"
  ls -A "$tmp" | wc -l > "$3/$name.left"
  rm -rf "$tmp"
  echo "$start $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }' > "$3/$name.time"
  exit 0
fi
[ $# -ge 2 ] || { echo "usage: tools/run-specs.sh VM FILE..." >&2; exit 2; }
vm=$1
shift
# JOBS files at once, else three times as many as there are cores for the fast tier (its files mostly wait on their
# servers: make test took 132 s at three times the cores on 2 cores, 95 s at five, 89 s at eight, but at five two
# full runs each had a case fail to a race the load opened) and as many as there are cores for the hosts' (which time
# frames and pings)
cores=$(nproc 2>/dev/null || echo 2)
if [ "${TIER:-fast}" = hosts ]; then jobs=${JOBS:-$cores}; else jobs=${JOBS:-$((cores * 3))}; fi
command -v "$vm" >/dev/null 2>&1 || { echo "run-specs: $vm is not installed"; echo "0 passed, 1 failed"; exit 1; }
logs=$(mktemp -d /tmp/starvideos-specs.XXXXXX) || exit 1
chmod 755 "$logs" # (the files' own TMPDIRs are in here: see --one)
trap 'rm -rf "$logs"' EXIT
# what is in /tmp of the specs' before and after (a spec that ignores TMPDIR shows here; another run at the same
# time can too)
in_tmp() { ls -d /tmp/starvideos-spec.* "/tmp/starvideos-leases-$(id -u)" 2>/dev/null | sort; }
before=$(in_tmp)
ls -S -- "$@" | xargs -P "$jobs" -n 1 sh "$0" --one "$vm" "$logs"
new_in_tmp=$(in_tmp | comm -13 "$(printf '%s\n' "$before" > "$logs/before"; echo "$logs/before")" - | wc -l)

passed=0
failed=0
bad=""
for f in "$@"; do
  name=$(echo "$f" | tr '/' '_')
  summary=$(sed 's/\x1b\[[0-9;]*m//g' "$logs/$name.log" |
    grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' | tail -n 1)
  rc=$(cat "$logs/$name.rc")
  if [ -z "$summary" ]; then
    p=0; n=1; summary="no busted summary (exit $rc)"
  else
    p=$(echo "$summary" | awk '{ print $1 }')
    n=$(echo "$summary" | awk '{ print $4 + $7 }')
    [ "$n" -eq 0 ] && [ "$rc" -ne 0 ] && n=1 && summary="$summary (busted exited $rc)"
  fi
  printf '%-44s %6ss  %s\n' "$f" "$(cat "$logs/$name.time")" "$summary"
  passed=$((passed + p))
  failed=$((failed + n))
  [ "$n" -gt 0 ] && bad="$bad $f"
done
for f in $bad; do
  name=$(echo "$f" | tr '/' '_')
  echo "==== $f"
  sed 's/\x1b\[[0-9;]*m//g' "$logs/$name.log" | grep -v '^[+●◼-]*$' | tail -n 80
done
left=$(cat "$logs"/*.left 2>/dev/null | awk '{ n += $1 } END { print n + 0 }')
echo "temporary folders: $left left in the files' own TMPDIR (removed), $new_in_tmp new in /tmp"
if [ -n "$bad" ]; then
  bad=${bad# }
  echo "failed: $(echo "$bad" | wc -w) of $# files"
  for f in $bad; do echo "  $f"; done
  tier=
  [ "${TIER:-fast}" = hosts ] && tier="TIER=hosts "
  rerun=${RERUN:-"${tier}sh tools/run-specs.sh $vm {}"}
  # (awk's index, not sed: a name may hold what a sed replacement reads, & or /)
  echo "run them again: $(printf '%s\n' "$rerun" | awk -v files="$bad" '{ i = index($0, "{}"); if (i) $0 = substr($0, 1, i - 1) files substr($0, i + 2); print }')"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
