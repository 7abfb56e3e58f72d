#!/bin/sh
# tools/release.sh OUT VERSION LUA...: the release of VERSION into the folder OUT (made afresh), `make release`'s
# work (mk/release.mk; docs/install.md, "Releases"):
#   OUT/starvideos-VERSION.tar.gz        the source every rock builds from (the files the rockspecs name)
#   OUT/<rock>-VERSION-1.src.rock        each rock's source rock (its versioned rockspec and the archive)
#   OUT/<rock>-VERSION-1.rockspec        each rock's versioned rockspec, beside its source rock
#   OUT/manifest*                        a LuaRocks server of the source rocks (a compiler needed)
#   OUT/<lua>/<rock>-VERSION-1.<arch>.rock  each rock built for that Lua (5.1 serves LuaJIT too), packed as a
#                                        binary rock; OUT/<lua>/manifest*: a server that needs no compiler
#   OUT/BUILD                            the platform, the glibc and the libraries the binary rocks were built on,
#                                        and the newest glibc symbol version their modules take
#   OUT/SHA256SUMS                       every file above, `sha256sum -c` from OUT
# Every dependency of a rock (lua-cjson, argparse, LuaSocket) is the system's: nothing is asked of a LuaRocks server
# (--deps-mode=none).  LUAROCKS and LUAROCKS_ADMIN name other luarocks commands.
set -eu

if [ $# -lt 3 ]; then
  echo "usage: tools/release.sh OUT VERSION LUA... (e.g. build/release 0.4.0 5.1 5.4)" >&2
  exit 2
fi
out=$1 version=$2
shift 2
luarocks=${LUAROCKS:-luarocks}
admin=${LUAROCKS_ADMIN:-luarocks-admin}
rocks="starvideos starvideos-redis starvideos-s3 starvideos-observe starvideos-emulator"

# the rockspec of a rock at VERSION, where the checkout keeps it
rockspec_of() {
  case $1 in
    starvideos) echo "rockspec/starvideos-$version-1.rockspec" ;;
    *) echo "rocks/${1#starvideos-}/$1-$version-1.rockspec" ;;
  esac
}
for rock in $rocks; do
  [ -f "$(rockspec_of "$rock")" ] || { echo "release: no $(rockspec_of "$rock") (VERSION $version)" >&2; exit 2; }
done
for lua in "$@"; do
  case $lua in
    5.1|5.2|5.3|5.4) ;;
    *) echo "release: $lua is not a Lua version luarocks builds for (5.1, 5.2, 5.3, 5.4)" >&2; exit 2 ;;
  esac
done

root=$(pwd)
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/starvideos-release.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM

# The source archive: the files the rocks build from, as the checkout has them (no objects, no rock's specs; a link
# as the file it names: a rock's starvideos/needs/<rock>.lua is rocks/needs.lua, which LuaRocks would not copy as a
# link, nor as a hard link: LuaRocks' own tar reader copies neither), owned by no one and dated by the last commit, so
# that the same tree makes the same archive.
base=starvideos-$version
mkdir "$stage/$base"
tar -c -h --exclude='rocks/*/spec' --exclude='*.o' --exclude='*.so' \
  rockspec csrc lua rocks bin types README.md LICENSE | tar -x -C "$stage/$base"
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --hard-dereference --mtime="@$epoch" -c "$base" \
  | gzip -n > "$out/$base.tar.gz"

# The source rocks: each rockspec and the archive its url names, zipped side by side as `luarocks pack` zips
# them (its own pack fetches a relative url from a folder of its own, where the archive is not).
for rock in $rocks; do
  cp "$root/$(rockspec_of "$rock")" "$stage/"
  (cd "$stage" && cp "$out/$base.tar.gz" . && zip -q -X "$out/$rock-$version-1.src.rock" \
    "$rock-$version-1.rockspec" "$base.tar.gz")
  cp "$root/$(rockspec_of "$rock")" "$out/"
done
"$admin" make-manifest "$out" > /dev/null

# The binary rocks: each source rock built for each Lua, packed where that Lua's server is.
for lua in "$@"; do
  mkdir "$out/$lua"
  for rock in $rocks; do
    (cd "$out/$lua" && "$luarocks" --lua-version="$lua" build --pack-binary-rock --deps-mode=none \
      "../$rock-$version-1.src.rock" > "$stage/build.log" 2>&1) || { cat "$stage/build.log" >&2; exit 1; }
  done
  "$admin" make-manifest "$out/$lua" > /dev/null
done

# What the binary rocks need at run time, and what they were built on: the newest glibc symbol version any of
# their modules takes (objdump's, where binutils is) is the oldest glibc they load on.
mkdir "$stage/so"
for rock in "$out"/*/*.rock; do
  unzip -q -o "$rock" 'lib/*' -d "$stage/so/$(basename "$(dirname "$rock")")-$(basename "$rock")" 2>/dev/null || true
done
symbols=$(find "$stage/so" -name '*.so' -exec objdump -T {} + 2>/dev/null | grep -o 'GLIBC_[0-9.]*' \
  | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n | tail -1)
{
  echo "platform: $(uname -s | tr A-Z a-z)-$(uname -m)"
  echo "glibc: $(ldd --version 2>&1 | sed -n '1s/.* //p')"
  echo "glibc symbols: ${symbols:-unknown} at most"
  echo "libcurl: $(pkg-config --modversion libcurl 2>/dev/null || echo unknown)"
  echo "openssl: $(pkg-config --modversion libcrypto 2>/dev/null || echo unknown)"
  echo "hiredis: $(pkg-config --modversion hiredis 2>/dev/null || echo unknown)"
  echo "lua: $*"
} > "$out/BUILD"

(cd "$out" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)
echo "release $version: $out ($(cd "$out" && ls ./*.src.rock | wc -l) source rocks and their rockspecs; binary rocks for Lua $*)"
