/* The static library (make static) opened the ways a host opens it
   (spec/hosts/embed_spec.lua runs this; Lua 5.4):
     1. a state without the package library whose host preloads lua-cjson:
        luaopen_starvideos opens everything, adds no global, and the private
        require serves the modules at run time too (client:pending);
     2. the same state without cjson: a clear error naming what to preload;
     3. a state with the package library and empty search paths, cjson in
        package.preload: found through package.preload, no file read, and
        `require` from Lua gives the same tables;
     4. luaopen_starvideos_core alone: the C part, no cjson needed.
   Prints "ok N - what" or "not ok N - what: why"; exits 1 when one failed.
     usage: static_test SCRATCH_DIR */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>
#include <string.h>

int luaopen_starvideos(lua_State *L);
int luaopen_starvideos_core(lua_State *L);
int luaopen_cjson(lua_State *L);
int luaopen_cjson_safe(lua_State *L);

static int tests, failures;

static void check(int ok, const char *what, const char *why) {
  tests++;
  if (ok) {
    printf("ok %d - %s\n", tests, what);
  } else {
    failures++;
    printf("not ok %d - %s: %s\n", tests, what, why ? why : "false");
  }
}

static void open_libs(lua_State *L, int with_package) {
  static const luaL_Reg libs[] = {
    { LUA_GNAME, luaopen_base }, { LUA_LOADLIBNAME, luaopen_package }, { LUA_COLIBNAME, luaopen_coroutine },
    { LUA_TABLIBNAME, luaopen_table }, { LUA_IOLIBNAME, luaopen_io }, { LUA_OSLIBNAME, luaopen_os },
    { LUA_STRLIBNAME, luaopen_string }, { LUA_MATHLIBNAME, luaopen_math }, { LUA_UTF8LIBNAME, luaopen_utf8 },
    { LUA_DBLIBNAME, luaopen_debug }, { NULL, NULL }
  };
  const luaL_Reg *l;
  for (l = libs; l->name; l++) {
    if (!with_package && l->func == luaopen_package) continue;
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
}

static int count_globals(lua_State *L) {
  int n = 0;
  lua_pushglobaltable(L);
  lua_pushnil(L);
  while (lua_next(L, -2)) { lua_pop(L, 1); n++; }
  lua_pop(L, 1);
  return n;
}

static int open_starvideos(lua_State *L) {
  luaL_requiref(L, "starvideos", luaopen_starvideos, 0);
  return 1;
}

/* Runs chunk with the given arguments (strings, or the value at stack index
   `self` as the first one when self > 0); the chunk returns true, or false
   and a reason.  Checks that, named what. */
static void run_check(lua_State *L, const char *what, const char *chunk, int self, const char *arg) {
  int base = lua_gettop(L), nargs = 0;
  const char *why = NULL;
  int ok = 0;
  if (luaL_loadbuffer(L, chunk, strlen(chunk), what) != LUA_OK) {
    why = lua_tostring(L, -1);
  } else {
    if (self > 0) { lua_pushvalue(L, self); nargs++; }
    if (arg) { lua_pushstring(L, arg); nargs++; }
    if (lua_pcall(L, nargs, 2, 0) != LUA_OK) {
      why = lua_tostring(L, -1);
    } else {
      ok = lua_toboolean(L, -2);
      why = lua_tostring(L, -1);
    }
  }
  check(ok, what, why);
  lua_settop(L, base);
}

/* 1 and 2: no package library */
static void without_package(const char *dir) {
  lua_State *L = luaL_newstate();
  int before, after;
  open_libs(L, 0);
  /* 2 first: cjson is not there yet */
  lua_pushcfunction(L, open_starvideos);
  if (lua_pcall(L, 0, 1, 0) == LUA_OK) {
    check(0, "without cjson, luaopen_starvideos fails", "it opened");
  } else {
    const char *msg = lua_tostring(L, -1);
    check(msg && strstr(msg, "cjson") && strstr(msg, "luaL_requiref") && strstr(msg, "package library"),
          "without cjson, luaopen_starvideos fails saying what to preload", msg);
  }
  lua_settop(L, 0);

  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  luaL_requiref(L, "cjson.safe", luaopen_cjson_safe, 0);
  lua_settop(L, 0);
  check(lua_getglobal(L, "require") == LUA_TNIL && lua_getglobal(L, "package") == LUA_TNIL,
        "the state has no package library", "require or package is a global");
  lua_settop(L, 0);
  before = count_globals(L);
  lua_pushcfunction(L, open_starvideos);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    check(0, "luaopen_starvideos opens in a state without package", lua_tostring(L, -1));
    lua_close(L);
    return;
  }
  check(1, "luaopen_starvideos opens in a state without package", NULL);
  after = count_globals(L);
  check(after == before, "no global was added", "the globals table grew");
  run_check(L, "the module and the loaded table agree",
            "local sv = ...\n"
            "local loaded = debug.getregistry()._LOADED\n"
            "if loaded.starvideos ~= sv then return false, 'loaded.starvideos is another table' end\n"
            "for _, m in ipairs { 'core', 'client', 'config', 'job', 'loop' } do\n"
            "  if type(loaded['starvideos.' .. m]) ~= 'table' then return false, 'starvideos.' .. m .. ' not loaded' end\n"
            "end\n"
            "if loaded['starvideos.extras.keep'] or loaded['starvideos.records.journal'] then\n"
            "  return false, 'keep or the journal loaded before their use'\n"
            "end\n"
            "if loaded['starvideos.emulator'] or loaded['starvideos.cli'] then return false, 'emulator or cli loaded' end\n"
            "if type(sv.new) ~= 'function' or type(sv.models.videos) ~= 'table' then return false, 'no new/models' end\n"
            "if not tostring(sv._VERSION):find('^starvideos ') then return false, 'no _VERSION' end\n"
            "return true",
            1, NULL);
  run_check(L, "validate runs (core and Lua together)",
            "local sv = ...\n"
            "local ok, err = sv.validate { model = 'videos', prompt = 'a cat', duration = 5 }\n"
            "if not ok then return false, tostring(err) end\n"
            "ok, err = sv.validate { model = 'nope', prompt = 'a cat' }\n"
            "if ok or err.kind ~= 'invalid_request' then return false, 'an unknown model passed' end\n"
            "return true",
            1, NULL);
  run_check(L, "a client opens, reads a journal and runs a first job through the private require at run time, and closes",
            "local sv, dir = ...\n"
            "local path = dir .. '/static_test.jsonl'\n"
            "local f = assert(io.open(path, 'wb'))\n"
            "f:write('{\"event\":\"pending\",\"local\":\"abc\",\"model\":\"videos\"}\\n')\n"
            "f:close()\n"
            "local c = sv.new { api_key = 'k', base_url = 'http://127.0.0.1:9', max_retries = 0 }\n"
            "local list, err = c:pending { journal = path }\n"
            "local task, qerr = c:query('task_static') -- a first job: job and request through the private require\n"
            "c:close()\n"
            "if task or type(qerr) ~= 'table' or qerr.kind ~= 'network' then return false, 'query: ' .. tostring(qerr) end\n"
            "local loaded = debug.getregistry()._LOADED\n"
            "if type(loaded['starvideos.job']) ~= 'table' or type(loaded['starvideos.request']) ~= 'table' then\n"
            "  return false, 'starvideos.job or starvideos.request not loaded by a first job'\n"
            "end\n"
            "os.remove(path)\n"
            "if not list then return false, tostring(err) end\n"
            "if #list ~= 1 or list[1]['local'] ~= 'abc' then return false, 'wrong pending list' end\n"
            "if rawget(_G, 'require') ~= nil then return false, 'a global require appeared' end\n"
            "return true",
            1, dir);
  lua_settop(L, 1);
  lua_pushcfunction(L, open_starvideos);
  lua_call(L, 0, 1);
  check(lua_rawequal(L, 1, 2), "opening it again gives the same table", "another table");
  lua_close(L);
}

/* 3: a package library with nothing to find on disk */
static void with_package(void) {
  lua_State *L = luaL_newstate();
  open_libs(L, 1);
  run_check(L, "setup: empty search paths", "package.path, package.cpath = '', ''\nreturn true", 0, NULL);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_cjson);
  lua_setfield(L, -2, "cjson");
  lua_pushcfunction(L, luaopen_cjson_safe);
  lua_setfield(L, -2, "cjson.safe");
  lua_settop(L, 0);
  lua_pushcfunction(L, open_starvideos);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    check(0, "luaopen_starvideos finds cjson through package.preload", lua_tostring(L, -1));
    lua_close(L);
    return;
  }
  check(1, "luaopen_starvideos finds cjson through package.preload", NULL);
  run_check(L, "require from Lua gives the same tables, with no file on the paths",
            "local sv = ...\n"
            "if require('starvideos') ~= sv then return false, 'require starvideos differs' end\n"
            "local client = require 'starvideos.client'\n"
            "if sv.Client ~= client then return false, 'starvideos.client differs' end\n"
            "if package.loaded['starvideos.core'] == nil then return false, 'no starvideos.core' end\n"
            "local ok = pcall(require, 'starvideos.emulator')\n"
            "if ok then return false, 'the emulator was found' end\n"
            "return true",
            1, NULL);
  lua_close(L);
}

/* 4: the C part alone */
static void core_alone(void) {
  lua_State *L = luaL_newstate();
  open_libs(L, 0);
  luaL_requiref(L, "starvideos.core", luaopen_starvideos_core, 0);
  run_check(L, "luaopen_starvideos_core alone gives the C part",
            "local core = ...\n"
            "for _, f in ipairs { 'validate', 'build_create', 'curl', 'commit_start', 'part_open', 'verdict' } do\n"
            "  if type(core[f]) ~= 'function' then return false, 'no core.' .. f end\n"
            "end\n"
            "if core.new ~= nil then return false, 'core has the Lua face' end\n"
            "local t = core.curl { api_key = 'k', user_agent = 'x', connect_timeout = 1, max_connections = 1 }\n"
            "t:close()\n"
            "return true",
            1, NULL);
  lua_close(L);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: static_test SCRATCH_DIR\n");
    return 2;
  }
  without_package(argv[1]);
  with_package();
  core_alone();
  printf("%d tests, %d failed\n", tests, failures);
  return failures ? 1 : 0;
}
