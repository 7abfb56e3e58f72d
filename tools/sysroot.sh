#!/bin/sh
# tools/sysroot.sh OUT: Debian's arm64 builds of what the C rocks link and what runs them (libcurl, OpenSSL,
# hiredis, Lua 5.1-5.4's headers and libraries, lua5.1 and lua5.4, glibc, and every library those need), unpacked
# into the folder OUT (made afresh; `make release`'s build/sysroot-aarch64: mk/release.mk, docs/install.md,
# "Releases").  The packages are fetched with `apt-get download` from the sources the system's apt has, through an
# apt state of OUT's own (OUT.apt/: the arm64 package lists, the .deb files), and unpacked with `dpkg -x`: nothing is
# installed, and the system's apt is left as it is (no `dpkg --add-architecture`).  The C rocks build against OUT
# with gcc-aarch64-linux-gnu (tools/release.sh), and run under `qemu-aarch64 -L OUT`.
set -eu

if [ $# -ne 1 ]; then
  echo "usage: tools/sysroot.sh OUT (e.g. build/sysroot-aarch64)" >&2
  exit 2
fi
out=$1
arch=arm64
# what the rocks link (their -dev packages), and what the arm64 rocks are tried with (spec/hosts/release_spec.lua):
# the interpreters, lua-cjson (the library's one dependency), LuaSocket and busted (the specs' runner)
top="libcurl4-openssl-dev libssl-dev libhiredis-dev liblua5.1-0-dev liblua5.2-dev liblua5.3-dev liblua5.4-dev
  lua5.1 lua5.4 lua-cjson lua-socket lua-busted"
# never unpacked: tools (arm64 programs no one runs here) and the C library's headers, which the cross compiler
# brings itself (gcc-aarch64-linux-gnu's /usr/aarch64-linux-gnu, the same glibc)
skip=" dpkg install-info tar ncurses-bin readline-common rpcsvc-proto libc-dev-bin libc6-dev libcrypt-dev
  libnsl-dev libtirpc-dev linux-libc-dev libncurses-dev libreadline-dev "

for tool in apt-get apt-cache dpkg; do
  command -v $tool > /dev/null 2>&1 || { echo "sysroot: no $tool here: the arm64 sysroot is made from Debian's" \
    "packages (on another system, give the release its own: docs/install.md, \"Releases\")" >&2; exit 1; }
done

state=$out.apt
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs"
state=$(cd "$state" && pwd)
set -- -o APT::Architecture=$arch -o APT::Architectures::=$arch -o Dir::State::Lists="$state/lists" \
  -o Dir::Cache="$state/cache" -o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)"
apt-get "$@" -qq update
# shellcheck disable=SC2086
packages=$(apt-cache "$@" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances --no-pre-depends $top | grep -v '^[ <]' | LC_ALL=C sort -u)
wanted=""
for p in $packages; do
  case $skip in *" $p "*) ;; *) wanted="$wanted $p:$arch" ;; esac
done
# shellcheck disable=SC2086
(cd "$state/debs" && rm -f ./*.deb && apt-get "$@" -qq download $wanted)

rm -rf "$out"
mkdir -p "$out"
for deb in "$state/debs"/*.deb; do
  dpkg -x "$deb" "$out"
done
# the links the -dev packages make absolute (/usr/lib/aarch64-linux-gnu/libx.so -> /lib/...), made relative
for link in "$out"/usr/lib/aarch64-linux-gnu/*.so; do
  [ -L "$link" ] || continue
  target=$(readlink "$link")
  case $target in /*) ln -sf "../../..$target" "$link" ;; esac
done
(cd "$state/debs" && ls ./*.deb | sed 's|^\./||') > "$out/PACKAGES"
echo "sysroot: $out ($(wc -l < "$out/PACKAGES") arm64 packages)"
