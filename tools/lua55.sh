#!/bin/sh
# Lua 5.5 and the modules the fast tier needs on it, built into a folder of the project's own (never into the
# system: Debian 12 packages Lua 5.1 to 5.4 only), from the vendored sources (mk/lua55.mk):
#
#   tools/lua55.sh DEST VENDOR
#
# DEST (an absolute path; build/vm5.5) gets a prefix as `make install` would lay it:
#   bin/lua5.5                   the interpreter, its default package.path and cpath in DEST (LUA_ROOT), its
#                                C API exported (-Wl,-E) so that C modules load into it
#   include/                     lua.h, luaconf.h, lualib.h, lauxlib.h: what a module builds against
#   lib/lua/5.5/                 cjson, lfs, system.core, term.core, socket.core, mime.core
#   share/lua/5.5/               busted 2.3.0, Penlight 1.15.0, luasystem's and lua-term's Lua, LuaSocket's
#                                Lua; and links to Debian's pure-Lua 5.4 modules that load on 5.5 (luassert,
#                                say, cliargs, dkjson, mediator: busted's; argparse: the emulator's)
# Each archive is looked for in VENDOR (../shared/vendor: its README says where each comes from); LuaSocket, which
# VENDOR lacks, is Debian's own source of its lua-socket package (luasocket_3.1.0.orig.tar.gz, from Debian's
# archive into build/debian-src/ once); each one's sha256 checked first.
set -e
dest=$1 vendor=$2
if [ -z "$dest" ] || [ -z "$vendor" ]; then echo "usage: tools/lua55.sh DEST VENDOR" >&2; exit 2; fi
case "$dest" in /*) ;; *) echo "lua55: DEST must be an absolute path: $dest" >&2; exit 2 ;; esac
CC=${CC:-cc}
# the archives and their sha256
SUMS="lua-5.5.0 763dc3fd5f19d4b3f6dd7a235472da43b05e9350e106a7b142f8da0e523cca23
lua-cjson-2.1.0.19 dae9eb61308de2fe88515bdf6196c182628d624fa84f76fe77b8db145ed41289
luafilesystem-1.9.0 4528d7bc7e61755e262d6a6ff2dcd753dfd1dd3c324b9fcf831f86412eb06e23
luasystem-0.2.1 4e51d3aaf1f801c3b2837c436b976a13791b69e453588121cc3efaebc8b7e2c4
lua-term-0.07 32d96dde2e6774960bcf2d49044f29721f62fbdb190fdfcf7b2fcc48ca189999
penlight-1.15.0 97a2f87afc162521b774225362e52083d7313891181a83294f7f5b8f85a86054
busted-2.3.0 671f3977793d4ca4ab4f5e3e6d5cde9a64d7170107c73d2e00329f2c3cbbff10
luasocket-3.1.0 35a6819789b51d94a52e6cee12f07cb17cf02927438d76c31231db06bbf31f0b"
src=$dest/src
rm -rf "$dest" && mkdir -p "$src" "$dest/bin" "$dest/include" "$dest/lib/lua/5.5" "$dest/share/lua/5.5"

# unpack NAME: the archive NAME.tar.gz, checked, into $src
DEBIAN_SRC=http://deb.debian.org/debian/pool/main/l/luasocket/luasocket_3.1.0.orig.tar.gz
unpack() {
  tgz=$vendor/$1.tar.gz
  if [ "$1" = luasocket-3.1.0 ]; then
    tgz=$(dirname "$dest")/debian-src/luasocket_3.1.0.orig.tar.gz
    if [ ! -f "$tgz" ]; then
      mkdir -p "$(dirname "$tgz")"
      curl -fsSL --retry 3 -o "$tgz.part" "$DEBIAN_SRC" && mv "$tgz.part" "$tgz" ||
        { echo "lua55: could not fetch Debian's LuaSocket source $DEBIAN_SRC" >&2; exit 1; }
    fi
  fi
  [ -f "$tgz" ] || { echo "lua55: $tgz is not there (set VENDOR=)" >&2; exit 1; }
  want=$(echo "$SUMS" | awk -v n="$1" '$1 == n { print $2 }')
  got=$(sha256sum "$tgz" | awk '{ print $1 }')
  [ "$got" = "$want" ] || { echo "lua55: $tgz: sha256 $got, not $want" >&2; exit 1; }
  tar xzf "$tgz" -C "$src"
}
for n in $(echo "$SUMS" | awk '{ print $1 }'); do unpack "$n"; done

# the interpreter (the plain build of VENDOR/README.md), its LUA_ROOT the prefix; the headers as released
lua=$src/lua-5.5.0
cp "$lua/lua.h" "$lua/luaconf.h" "$lua/lualib.h" "$lua/lauxlib.h" "$dest/include/"
sed -i "s|^#define LUA_ROOT[[:space:]].*|#define LUA_ROOT \"$dest/\"|" "$lua/luaconf.h"
grep -q "^#define LUA_ROOT \"$dest/\"" "$lua/luaconf.h" || { echo "lua55: no LUA_ROOT in luaconf.h" >&2; exit 1; }
# (named lua5.5 last, once all loads: make's target, never there when a step failed)
$CC -O2 -DLUA_USE_LINUX -Wl,-E -o "$dest/bin/lua5.5.new" "$lua/onelua.c" -lm -ldl

# mod NAME FILE...: a C module into lib/lua/5.5 (third-party code: its warnings are not ours)
mod() {
  out=$dest/lib/lua/5.5/$1.so
  shift
  mkdir -p "$(dirname "$out")"
  $CC -O2 -fPIC -shared -w -I"$dest/include" -o "$out" "$@"
}
c=$src/lua-cjson-2.1.0.19
mod cjson "$c/lua_cjson.c" "$c/strbuf.c" "$c/fpconv.c"
mod lfs "$src/luafilesystem-1.9.0/src/lfs.c"
s=$src/luasystem-0.2.1/src
mod system/core "$s/core.c" "$s/compat.c" "$s/time.c" -lrt
mod term/core "$src/lua-term-0.07/core.c"
s=$src/luasocket-3.1.0/src
mod socket/core -DLUASOCKET_NODEBUG "$s/luasocket.c" "$s/timeout.c" "$s/buffer.c" "$s/io.c" "$s/auxiliar.c" \
  "$s/compat.c" "$s/options.c" "$s/inet.c" "$s/except.c" "$s/select.c" "$s/tcp.c" "$s/udp.c" "$s/usocket.c"
mod mime/core -DLUASOCKET_NODEBUG "$s/mime.c" "$s/compat.c"

# the Lua modules
share=$dest/share/lua/5.5
cp -R "$src/busted-2.3.0/busted" "$src/busted-2.3.0/busted.lua" "$src/penlight-1.15.0/lua/pl" \
  "$src/luasystem-0.2.1/system" "$src/lua-term-0.07/term" "$share/"
cp "$s/socket.lua" "$s/ltn12.lua" "$s/mime.lua" "$share/"
mkdir -p "$share/socket"
for f in http url tp ftp smtp headers mbox; do cp "$s/$f.lua" "$share/socket/"; done
for m in luassert say cliargs cliargs.lua dkjson.lua mediator.lua argparse.lua; do
  ln -s "/usr/share/lua/5.4/$m" "$share/$m"
done
# what the suite loads, through the interpreter's own default paths alone
env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_5 -u LUA_CPATH_5_5 -u LUA_INIT -u LUA_INIT_5_5 "$dest/bin/lua5.5.new" \
  -e 'require "cjson"; require "socket.http"; require "mime"; require "argparse"; require "busted.runner"' ||
  { echo "lua55: the modules do not load on the Lua 5.5 built" >&2; exit 1; }
mv "$dest/bin/lua5.5.new" "$dest/bin/lua5.5"
