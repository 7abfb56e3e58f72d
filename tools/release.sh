#!/bin/sh
# tools/release.sh OUT VERSION LUA...: the release of VERSION into the folder OUT (made afresh), `make release`'s
# work (mk/release.mk; docs/install.md, "Releases"):
#   OUT/starvideos-VERSION.tar.gz        the source every rock builds from (the files the rockspecs name, the
#                                        versioned rockspecs among them)
#   OUT/<rock>-VERSION-1.src.rock        each rock's source rock (its versioned rockspec and the archive)
#   OUT/<rock>-VERSION-1.rockspec        each rock's versioned rockspec, beside its source rock: made here from its scm
#                                        one by tools/versioned.lua, never copied from a file someone keeps by hand
#   OUT/manifest*                        a LuaRocks server of the source rocks (a compiler needed)
#   OUT/<lua>/<rock>-VERSION-1.<arch>.rock  each rock built for that Lua (5.1 serves LuaJIT too), packed as a
#                                        binary rock: linux-<this machine>, and linux-<arch> for each arch of CROSS
#                                        (cross-built); OUT/<lua>/manifest*: a server that needs no compiler
#   OUT/5.5/lua-cjson-V-1.<arch>.rock    lua-cjson for Lua 5.5 (Debian packages none), built from VENDOR's archive
#   OUT/BUILD                            the platforms, the glibc and the libraries the binary rocks were built on,
#                                        and the newest glibc symbol version their modules take
#   OUT/SHA256SUMS                       every file above, `sha256sum -c` from OUT
# Every dependency of a rock (lua-cjson, argparse, LuaSocket) is the system's: nothing is asked of a LuaRocks server
# (--deps-mode=none).  LUAROCKS and LUAROCKS_ADMIN name other luarocks commands.  Lua 5.5 (which Debian 12 does not
# package) builds against the headers of VENDOR's lua-5.5.0.tar.gz (../shared/vendor).  CROSS: the arches to
# cross-build for ("aarch64", the default where this machine is x86_64; "" none), each with gcc-<arch>-linux-gnu and
# SYSROOT (build/sysroot-<arch>, tools/sysroot.sh) holding Debian's <arch> packages of the libraries and Lua headers.
# LuaRocks 3.8 writes manifests for 5.1 to 5.4 only: manifest-5.5 is written by its own writer, told of 5.5.
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
native=$(uname -m)
cross=${CROSS-$( [ "$native" = x86_64 ] && echo aarch64 )}
vendor=${VENDOR:-../shared/vendor}

# the rockspec of a rock at VERSION (scm-1: the one kept in the checkout), where the checkout keeps it
rockspec_of() {
  case $1 in
    starvideos) echo "rockspec/starvideos-$2-1.rockspec" ;;
    *) echo "rocks/${1#starvideos-}/$1-$2-1.rockspec" ;;
  esac
}
for rock in $rocks; do
  [ -f "$(rockspec_of "$rock" scm)" ] || { echo "release: no $(rockspec_of "$rock" scm)" >&2; exit 2; }
done
for lua in "$@"; do
  case $lua in
    5.1|5.2|5.3|5.4|5.5) ;;
    *) echo "release: $lua is not a Lua version the release builds for (5.1, 5.2, 5.3, 5.4, 5.5)" >&2; exit 2 ;;
  esac
done
case " $* " in
  *" 5.5 "*) [ -f "$vendor/lua-5.5.0.tar.gz" ] || { echo "release: Lua 5.5's headers come from" \
    "$vendor/lua-5.5.0.tar.gz, which is not there (VENDOR=, or leave 5.5 out of RELEASE_LUAS)" >&2; exit 2; } ;;
esac
for arch in $cross; do
  [ "$arch" = aarch64 ] || { echo "release: cross-builds for aarch64 only, not $arch (CROSS=)" >&2; exit 2; }
  command -v "$arch-linux-gnu-gcc" > /dev/null 2>&1 || { echo "release: no $arch-linux-gnu-gcc to cross-build" \
    "the $arch rocks (Debian: gcc-$arch-linux-gnu; make deps), or CROSS= for none" >&2; exit 2; }
  [ -f "${SYSROOT:-build/sysroot-$arch}/PACKAGES" ] || { echo "release: no ${SYSROOT:-build/sysroot-$arch}" \
    "(tools/sysroot.sh makes it; SYSROOT=)" >&2; exit 2; }
done

sysroot=""
[ -z "$cross" ] || sysroot=$(cd "${SYSROOT:-build/sysroot-$cross}" && pwd)
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/starvideos-release.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM

# The versioned rockspecs, made from the scm ones.
mkdir "$stage/specs"
tool_lua=$(command -v lua5.4 || command -v lua5.1 || command -v lua)
for rock in $rocks; do
  "$tool_lua" tools/versioned.lua "$(rockspec_of "$rock" scm)" "$version" > "$stage/specs/$rock-$version-1.rockspec"
done

# The source archive: the files the rocks build from, as the checkout has them (no objects, no rock's specs; a link
# as the file it names: a rock's starvideos/needs/<rock>.lua is rocks/needs.lua, which LuaRocks would not copy as a
# link, nor as a hard link: LuaRocks' own tar reader copies neither), owned by no one and dated by the last commit, so
# that the same tree makes the same archive.
base=starvideos-$version
mkdir "$stage/$base"
tar -c -h --exclude='rocks/*/spec' --exclude='*.o' --exclude='*.so' --exclude='*-[0-9]*-1.rockspec' \
  rockspec csrc lua rocks bin types README.md LICENSE | tar -x -C "$stage/$base"
for rock in $rocks; do
  cp "$stage/specs/$rock-$version-1.rockspec" "$stage/$base/$(rockspec_of "$rock" "$version")"
done
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --hard-dereference --mtime="@$epoch" -c "$base" \
  | gzip -n > "$out/$base.tar.gz"

# The source rocks: each rockspec and the archive its url names, zipped side by side as `luarocks pack` zips
# them (its own pack fetches a relative url from a folder of its own, where the archive is not).
for rock in $rocks; do
  (cd "$stage/specs" && cp "$out/$base.tar.gz" . && zip -q -X "$out/$rock-$version-1.src.rock" \
    "$rock-$version-1.rockspec" "$base.tar.gz")
  cp "$stage/specs/$rock-$version-1.rockspec" "$out/"
done

# The manifests of a folder, one for every Lua, 5.5 too: LuaRocks 3.8's own writer (luarocks-admin make-manifest),
# its list of Lua versions told of 5.5.
# (LUAROCKS_ADMIN_LUA: the Lua that runs LUAROCKS_ADMIN; else the first that finds LuaRocks' modules)
admin_lua=${LUAROCKS_ADMIN_LUA:-}
for l in lua5.4 lua5.3 lua5.2 lua5.1 lua; do
  [ -z "$admin_lua" ] || break
  ! "$l" -e 'require "luarocks.util"' > /dev/null 2>&1 || admin_lua=$(command -v "$l")
done
[ -n "$admin_lua" ] || { echo "release: no Lua here finds LuaRocks' modules (LUAROCKS_ADMIN_LUA=)" >&2; exit 2; }
manifest() {
  "$admin_lua" -e 'local util = require "luarocks.util"
    function util.lua_versions(sort)
      local v, i, step = { "5.1", "5.2", "5.3", "5.4", "5.5" }, 0, 1
      if sort == "descending" then i, step = 6, -1 end
      return function() i = i + step return v[i] end
    end' "$(command -v "$admin")" make-manifest "$1" > "$stage/manifest.log" 2>&1 \
    || { cat "$stage/manifest.log" >&2; exit 1; }
  [ -f "$1/manifest-5.5" ] || { echo "release: no manifest-5.5 in $1 ($admin)" >&2; exit 1; }
}
manifest "$out"

# Lua 5.5's headers (VENDOR's), for LuaRocks 3.8, which checks a lua.h for a literal "LUA_VERSION_NUM 505" (5.5's
# computes it): that line added to lua.h as a comment.
if [ -f "$vendor/lua-5.5.0.tar.gz" ]; then
  mkdir "$stage/lua5.5"
  tar -xzf "$vendor/lua-5.5.0.tar.gz" -C "$stage/lua5.5" --strip-components=1 lua-5.5.0/lua.h lua-5.5.0/luaconf.h \
    lua-5.5.0/lualib.h lua-5.5.0/lauxlib.h
  printf '/* LUA_VERSION_NUM 505 (for LuaRocks 3.8: tools/release.sh) */\n' >> "$stage/lua5.5/lua.h"
fi

# The binary rocks: each source rock built for each Lua, packed where that Lua's server is.
# build LUA ROCK DIR [VAR=VALUE...]: the binary rock of ROCK for LUA packed into DIR
build() {
  b_lua=$1 b_rock=$2 b_dir=$3
  shift 3
  [ "$b_lua" != 5.5 ] || set -- LUA_INCDIR="$stage/lua5.5" "$@"
  (cd "$b_dir" && "$luarocks" --lua-version="$b_lua" build --pack-binary-rock --deps-mode=none \
    "$out/$b_rock-$version-1.src.rock" "$@" > "$stage/build.log" 2>&1) || { cat "$stage/build.log" >&2; exit 1; }
}
# lua-cjson for Lua 5.5, which Debian packages for 5.1 to 5.4 only: VENDOR's lua-cjson-<v>.tar.gz built as a
# binary rock into DIR (the 5.5 folder), for this machine and each arch of CROSS, so that a 5.5 install from the
# folder needs no compiler.  Its rockspec is the archive's (whose file name still says 2.1.0.17) with the archive's
# version and without copy_directories (the archive has no tests/).
cjson_55() {
  c_tar=
  for f in "$vendor"/lua-cjson-*.tar.gz; do [ ! -f "$f" ] || c_tar=$f; done
  [ -n "$c_tar" ] || { echo "release: no $vendor/lua-cjson-*.tar.gz: Lua 5.5's lua-cjson is built from it" >&2; exit 2; }
  c_ver=$(basename "$c_tar" .tar.gz) && c_ver=${c_ver#lua-cjson-}
  cjson_build "$native" "$1"
  for arch in $cross; do
    cjson_build "$arch" "$1" CC="$arch-linux-gnu-gcc" LD="$arch-linux-gnu-gcc" CFLAGS="-O2 -fPIC" \
      LIBFLAG="-shared -Wl,-rpath-link,$sysroot/usr/lib/$arch-linux-gnu"
  done
}
# cjson_build ARCH DIR [VAR=VALUE...]: that binary rock for ARCH into DIR, from the archive afresh (no object of
# another arch's build)
cjson_build() {
  c_arch=$1 c_dir=$2
  shift 2
  rm -rf "$stage/cjson" && mkdir "$stage/cjson" && tar -xzf "$c_tar" -C "$stage/cjson" --strip-components=1
  sed -e "s/^version = \"[^\"]*\"/version = \"$c_ver-1\"/" -e "s/^\( *tag = \)\"[^\"]*\"/\1\"$c_ver\"/" \
    -e '/copy_directories/d' "$stage"/cjson/lua-cjson-*-1.rockspec > "$stage/cjson.rockspec"
  mv "$stage/cjson.rockspec" "$stage/cjson/lua-cjson-$c_ver-1.rockspec"
  (cd "$stage/cjson" && "$luarocks" --lua-version=5.5 make --pack-binary-rock --deps-mode=none \
    "lua-cjson-$c_ver-1.rockspec" LUA_INCDIR="$stage/lua5.5" "$@" > "$stage/build.log" 2>&1 \
    && mv "lua-cjson-$c_ver-1.linux-$native.rock" "$c_dir/lua-cjson-$c_ver-1.linux-$c_arch.rock") \
    || { cat "$stage/build.log" >&2; exit 1; }
}
for lua in "$@"; do
  mkdir "$out/$lua"
  for rock in $rocks; do
    build "$lua" "$rock" "$out/$lua"
  done
  # cross-built: each C rock for each arch of CROSS, against its sysroot (the multiarch folders Debian keeps the
  # headers and libraries in), then named for that arch (LuaRocks names a rock for the machine it packs on)
  for arch in $cross; do
    lib=$sysroot/usr/lib/$arch-linux-gnu inc=$sysroot/usr/include
    rm -rf "$stage/cross" && mkdir "$stage/cross"
    lua_inc=$inc/lua$lua
    [ "$lua" != 5.5 ] || lua_inc=$stage/lua5.5
    for rock in starvideos starvideos-redis starvideos-s3; do
      build "$lua" "$rock" "$stage/cross" CC="$arch-linux-gnu-gcc" LD="$arch-linux-gnu-gcc" \
        CFLAGS="-O2 -fPIC -I$inc/$arch-linux-gnu -I$inc" LIBFLAG="-shared -Wl,-rpath-link,$lib" \
        LUA_INCDIR="$lua_inc" CURL_INCDIR="$inc" CURL_LIBDIR="$lib" CRYPTO_INCDIR="$inc" CRYPTO_LIBDIR="$lib" \
        OPENSSL_INCDIR="$inc" OPENSSL_LIBDIR="$lib" HIREDIS_INCDIR="$inc" HIREDIS_LIBDIR="$lib"
      mv "$stage/cross/$rock-$version-1.linux-$native.rock" "$out/$lua/$rock-$version-1.linux-$arch.rock"
    done
  done
  [ "$lua" != 5.5 ] || cjson_55 "$out/$lua"
  manifest "$out/$lua"
done

# What the binary rocks need at run time, and what they were built on: the newest glibc symbol version any of
# their modules takes (objdump's, where binutils is) is the oldest glibc they load on; per arch.
# symbols ARCH OBJDUMP: that version over the modules of the rocks of ARCH
symbols() {
  rm -rf "$stage/so" && mkdir "$stage/so"
  for rock in "$out"/*/*."linux-$1.rock"; do
    unzip -q -o "$rock" 'lib/*' -d "$stage/so/$(basename "$(dirname "$rock")")-$(basename "$rock")" 2>/dev/null \
      || true
  done
  find "$stage/so" -name '*.so' -exec "$2" -T {} + 2>/dev/null | grep -o 'GLIBC_[0-9.]*' \
    | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n | tail -1
}
# version PACKAGE.deb-prefix: the version of the sysroot's package of that name
deb_version() { sed -n "s/^$1_\([^_]*\)_.*/\1/p" "$sysroot/PACKAGES" | sed 's/^[0-9]*://; s/-[^-]*$//' | head -1; }
{
  echo "platform: $(uname -s | tr A-Z a-z)-$native"
  echo "glibc: $(ldd --version 2>&1 | sed -n '1s/.* //p')"
  echo "glibc symbols: $(symbols "$native" objdump | grep . || echo unknown) at most"
  echo "libcurl: $(pkg-config --modversion libcurl 2>/dev/null || echo unknown)"
  echo "openssl: $(pkg-config --modversion libcrypto 2>/dev/null || echo unknown)"
  echo "hiredis: $(pkg-config --modversion hiredis 2>/dev/null || echo unknown)"
  for arch in $cross; do
    echo "platform: linux-$arch, cross-built by $arch-linux-gnu-gcc $("$arch-linux-gnu-gcc" -dumpversion) against" \
      "Debian's arm64 packages (tools/sysroot.sh)"
    echo "$arch glibc: $(deb_version libc6)"
    echo "$arch glibc symbols: $(symbols "$arch" "$arch-linux-gnu-objdump" | grep . || echo unknown) at most"
    hiredis=$(deb_version libhiredis0.14)
    echo "$arch libcurl: $(deb_version libcurl4), openssl: $(deb_version libssl3), hiredis: $hiredis"
  done
  echo "lua: $*"
  [ -z "${c_ver:-}" ] || echo "lua-cjson for Lua 5.5: $c_ver, built from $(basename "$c_tar") (VENDOR)"
} > "$out/BUILD"

(cd "$out" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)
echo "release $version: $out ($(cd "$out" && ls ./*.src.rock | wc -l) source rocks and their rockspecs; binary" \
  "rocks for Lua $* on linux-$native${cross:+ and linux-$cross})"
