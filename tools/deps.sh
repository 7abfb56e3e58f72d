#!/bin/sh
# Install the Debian packages named as arguments that are not installed yet.
#   tools/deps.sh PKG...                 (make deps) fails, listing the packages,
#                                        where there is no dpkg-query or apt-get
#   tools/deps.sh --if-possible PKG...   (make test, test-all, demo) says so
#                                        there and succeeds: the build goes on
#                                        with what the machine has
soft=0
if [ "${1:-}" = "--if-possible" ]; then
  soft=1
  shift
fi
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  if [ $soft = 1 ]; then
    echo "deps: no apt-get here: installing nothing (Debian names of what is needed: $*)" >&2
    exit 0
  fi
  echo "deps: no apt-get here: install these (Debian names) or their equivalents by hand: $*" >&2
  exit 1
fi
# a name counts as there when a package of that name is installed, or an installed package provides it (npm: the
# nodejs of NodeSource's repository carries its own npm and conflicts with Debian's)
provided=$(dpkg-query -W -f='${Status}\t${Provides}\n' 2>/dev/null | sed -n 's/^install ok installed\t//p' |
  sed 's/([^)]*)//g' | tr ',' '\n' | tr -d ' ')
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
  printf '%s\n' "$provided" | grep -qxF "$p" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
# shellcheck disable=SC2086
$SUDO apt-get update -qq || exit 1
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing || exit 1
