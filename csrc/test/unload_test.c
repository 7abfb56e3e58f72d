/* A host that lets go of starvideos at once: Lua 5.4 loads the module
   (build/lua5.4/starvideos/curl.so, through package.cpath), starts two
   downloads, cancels one, closes the transport, then lua_close unloads the
   module (dlclose) and the host goes on for a while.  A thread of libcurl's (its
   resolver's) still running code of the module after that would crash the host:
   the module stays loaded (sv_helper_pin_module, csrc/core/work.c).
   spec/curl/transport_spec.lua runs it many times.
     unload_test CPATH URL DIR  ->  prints "ok" and exits 0 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>
#include <time.h>

static const char script[] =
  "local cpath, url, dir = ...\n"
  "package.cpath = cpath\n"
  "local t = require('starvideos.curl').new { user_agent = 'unload-test', connect_timeout = 5, max_connections = 4 }\n"
  "local a = assert(t:send { op = 'download', url = url, file = dir .. '/a.part', max_body = 1e9 })\n"
  "local b = assert(t:send { op = 'download', url = url, file = dir .. '/b.part', max_body = 1e9 })\n"
  "local stop = os.time() + 30 -- the emulator may still be sending an earlier run's video\n"
  "while t:progress(a) == 0 or t:progress(b) == 0 do\n"
  "  assert(os.time() < stop, 'no byte came in 30 s')\n"
  "  t:poll(0.01)\n"
  "end\n"
  "t:cancel(a)\n"
  "t:close()\n";

int main(int argc, char **argv) {
  lua_State *L;
  struct timespec pause = { 0, 300 * 1000 * 1000 };
  int i;
  if (argc != 4) {
    fprintf(stderr, "usage: unload_test CPATH URL DIR\n");
    return 2;
  }
  L = luaL_newstate();
  if (!L) return 1;
  luaL_openlibs(L);
  if (luaL_loadbuffer(L, script, sizeof script - 1, "=unload") != LUA_OK) goto fail;
  for (i = 1; i <= 3; i++) lua_pushstring(L, argv[i]);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) goto fail;
  lua_close(L); /* collects the transport, then the loaded C libraries: dlclose */
  nanosleep(&pause, NULL); /* a thread left in the unloaded module would crash now */
  puts("ok");
  return 0;
fail:
  fprintf(stderr, "unload_test: %s\n", lua_tostring(L, -1));
  lua_close(L);
  return 1;
}
