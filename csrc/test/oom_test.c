/* A host whose Lua allocator fails on demand, over the transport's binding
   (build/lua5.4/starvideos/curl.so): t:send and t:result run with the n-th
   allocation from then on refused, for n = 0, 1, 2, ...  Where the memory
   error comes, it must come before the binding holds what nobody else would
   free: an exchange that is in no handle's place (t:send), a download's .part
   that no handle owns (t:result).  The host checks what it can see (every
   refused call raised "not enough memory", a refused t:result can be asked
   again and gives the .part, no descriptor is left open); valgrind, run over
   it by spec/curl/transport_spec.lua, sees the exchanges lost.
     oom_test CPATH URL DIR  ->  prints "ok <counts>" and exits 0
   URL: a video the download can fetch; DIR: where its files go. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

static long countdown = -1; /* allocations still granted; -1: every one */

static void *alloc(void *ud, void *p, size_t old, size_t n) {
  (void)ud;
  (void)old;
  if (n == 0) {
    free(p);
    return NULL;
  }
  if (countdown == 0) return NULL;
  if (countdown > 0) countdown--;
  return realloc(p, n);
}

/* FAIL(n): the n-th allocation from now on is refused (and every later one
   until FAIL(-1)) */
static int l_fail(lua_State *L) {
  countdown = (long)luaL_checkinteger(L, 1);
  return 0;
}

/* FDS(): the descriptors this process has open */
static int l_fds(lua_State *L) {
  DIR *d = opendir("/proc/self/fd");
  long n = 0;
  if (!d) return luaL_error(L, "/proc/self/fd: cannot list it");
  while (readdir(d)) n++;
  closedir(d);
  lua_pushinteger(L, n);
  return 1;
}

static const char script[] =
  "local cpath, url, dir = ...\n"
  "package.cpath = cpath\n"
  "local new = require('starvideos.curl').new\n"
  "local cfg = { user_agent = 'oom-test', connect_timeout = 5, max_connections = 4 }\n"
  "local function refused(ok, err)\n"
  "  if ok then return false end\n"
  "  assert(tostring(err):find('not enough memory', 1, true), 'not a memory error: ' .. tostring(err))\n"
  "  return true\n"
  "end\n"
  /* t:send with the handles' table about to grow, or not: m sends before */
  "local query = { op = 'query', url = 'http://127.0.0.1:9/v1/result/x', auth = false, max_body = 1000 }\n"
  "local sends, sends_refused = 0, 0\n"
  "for n = 0, 12 do\n"
  "  for m = 0, 17 do\n"
  "    local t = new(cfg)\n"
  "    for _ = 1, m do assert(t:send(query)) end\n"
  "    FAIL(n); local ok, h = pcall(t.send, t, query); FAIL(-1)\n"
  "    if refused(ok, h) then sends_refused = sends_refused + 1 else assert(h) end\n"
  "    sends = sends + 1\n"
  "    t:close()\n"
  "  end\n"
  "end\n"
  /* t:result of a whole download, the last value its .part handle */
  "local function downloaded(name)\n"
  "  local t = new(cfg)\n"
  "  local h = assert(t:send { op = 'download', url = url, file = dir .. '/' .. name .. '.part', stall = 30, max_body = 1e9 })\n"
  "  local tries = 0\n"
  "  while t:finished() ~= h do\n"
  "    tries = tries + 1\n"
  "    assert(tries < 30000, 'the download did not finish')\n"
  "    t:poll(0.001)\n"
  "  end\n"
  "  return t, h\n"
  "end\n"
  "do local t, h = downloaded('first'); select(6, t:result(h)):close(); t:close() end\n"
  "local fds = FDS()\n"
  "local results, results_refused = 0, 0\n"
  "for n = 0, 40 do\n"
  "  local t, h = downloaded(n)\n"
  /* (nothing between FAIL(n) and FAIL(-1) but the call: no table.pack) */
  "  FAIL(n); local ok, task, err, _, _, _, file = pcall(t.result, t, h); FAIL(-1)\n"
  "  if refused(ok, task) then\n"
  "    results_refused = results_refused + 1\n"
  "    ok, task, err, _, _, _, file = pcall(t.result, t, h) -- the handle still holds the exchange\n"
  "  end\n"
  "  assert(ok, tostring(task))\n"
  "  assert(task, 'the download failed: ' .. tostring(err and err.message))\n"
  "  assert(type(file) == 'userdata', 'no .part handle from t:result: ' .. tostring(file))\n"
  "  file:close()\n"
  "  results = results + 1\n"
  "  t:close()\n"
  "end\n"
  "collectgarbage(); collectgarbage()\n"
  "assert(FDS() == fds, 'descriptors left open: ' .. FDS() - fds)\n"
  "print(string.format('ok %d sends (%d refused for memory), %d results (%d refused for memory)',\n"
  "  sends, sends_refused, results, results_refused))\n";

int main(int argc, char **argv) {
  lua_State *L;
  int i;
  if (argc != 4) {
    fprintf(stderr, "usage: oom_test CPATH URL DIR\n");
    return 2;
  }
  L = lua_newstate(alloc, NULL);
  if (!L) return 1;
  luaL_openlibs(L);
  lua_register(L, "FAIL", l_fail);
  lua_register(L, "FDS", l_fds);
  if (luaL_loadbuffer(L, script, sizeof script - 1, "=oom") != LUA_OK) goto fail;
  for (i = 1; i <= 3; i++) lua_pushstring(L, argv[i]);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) goto fail;
  lua_close(L);
  return 0;
fail:
  fprintf(stderr, "oom_test: %s\n", luaL_tolstring(L, -1, NULL));
  lua_close(L);
  return 1;
}
