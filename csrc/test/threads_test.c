/* Clients opened from several threads at once, each thread with its own
   lua_State (Lua 5.4) and the static library (spec/hosts/embed_spec.lua builds it
   plain and with -fsanitize=thread, and runs both).
     STARVIDEOS_API_KEY=... threads_test SCRATCH_DIR [BASE_URL]
   Four threads start together (a barrier) for each of several rounds: each
   opens the module, makes a client (curl_global_init and a multi handle: the
   race ThreadSanitizer found on the old curl_ready flag), and with BASE_URL
   generates a small video into SCRATCH_DIR (the download's and the commit's
   threads too), checks it, and closes the client; its lua_State is closed at the end.
   Prints libcurl's version and whether it says its global init is
   thread-safe; exits 1 when a thread failed. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

int luaopen_starvideos(lua_State *L);
int luaopen_cjson(lua_State *L);
int luaopen_cjson_safe(lua_State *L);

#define THREADS 4
#define ROUNDS 5

static const char *dir, *base_url;
static pthread_barrier_t barrier;

typedef struct worker {
  int index, ok;
  char why[512];
} worker;

static const char round_lua[] =
  "local sv, index, round, dir, base_url = ...\n"
  "local c = sv.new { api_key = os.getenv('STARVIDEOS_API_KEY') or 'k',\n"
  "  base_url = base_url or 'http://127.0.0.1:9' }\n"
  "if base_url then\n"
  "  local out = string.format('%s/thread-%d-%d.mp4', dir, index, round)\n"
  "  local task, err = c:generate({ model = 'videos', prompt = 'thread ' .. index, duration = 5 },\n"
  "    { out = out, interval = 0.05, timeout = 60 })\n"
  "  if not task then c:close(); error('generate: ' .. tostring(err)) end\n"
  "  local f = assert(io.open(out, 'rb'))\n"
  "  local size = f:seek('end')\n"
  "  f:close()\n"
  "  os.remove(out)\n"
  "  if not size or size < 1000 then c:close(); error('the video is ' .. tostring(size) .. ' bytes') end\n"
  "else\n"
  "  assert(sv.validate { model = 'videos', prompt = 'a cat', duration = 5 })\n"
  "end\n"
  "c:close()\n";

static void *work(void *arg) {
  worker *w = arg;
  lua_State *L = luaL_newstate();
  int round;
  w->ok = 1;
  luaL_openlibs(L);
  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  luaL_requiref(L, "cjson.safe", luaopen_cjson_safe, 0);
  lua_settop(L, 0);
  for (round = 0; round < ROUNDS; round++) {
    pthread_barrier_wait(&barrier); /* everyone opens at the same time */
    if (!w->ok) continue;
    if (round == 0) {
      lua_pushcfunction(L, luaopen_starvideos);
      if (lua_pcall(L, 0, 1, 0) != LUA_OK) goto failed; /* 1: the module */
    }
    if (luaL_loadbuffer(L, round_lua, sizeof round_lua - 1, "=round") != LUA_OK) goto failed;
    lua_pushvalue(L, 1);
    lua_pushinteger(L, w->index);
    lua_pushinteger(L, round);
    lua_pushstring(L, dir);
    if (base_url) lua_pushstring(L, base_url);
    else lua_pushnil(L);
    if (lua_pcall(L, 5, 0, 0) != LUA_OK) goto failed;
    continue;
  failed:
    w->ok = 0;
    snprintf(w->why, sizeof w->why, "round %d: %s", round, lua_tostring(L, -1));
    lua_settop(L, 1);
  }
  lua_close(L);
  return NULL;
}

int main(int argc, char **argv) {
  pthread_t t[THREADS];
  worker w[THREADS];
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  int i, failed = 0;
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: STARVIDEOS_API_KEY=... threads_test SCRATCH_DIR [BASE_URL]\n");
    return 2;
  }
  dir = argv[1];
  base_url = argc == 3 ? argv[2] : NULL;
#ifdef CURL_VERSION_THREADSAFE
  printf("libcurl %s, thread-safe global init: %s\n", v->version,
         (v->features & CURL_VERSION_THREADSAFE) ? "yes" : "no");
#else
  printf("libcurl %s, thread-safe global init: no (older than 7.84)\n", v->version);
#endif
  pthread_barrier_init(&barrier, NULL, THREADS);
  for (i = 0; i < THREADS; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].index = i;
    if (pthread_create(&t[i], NULL, work, &w[i]) != 0) {
      fprintf(stderr, "threads_test: cannot start a thread\n");
      return 1;
    }
  }
  for (i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&barrier);
  for (i = 0; i < THREADS; i++) {
    if (w[i].ok) continue;
    failed++;
    printf("thread %d failed: %s\n", i, w[i].why);
  }
  printf("%d threads x %d rounds (%s): %s\n", THREADS, ROUNDS, base_url ? "generate and download" : "open and close",
         failed ? "FAILED" : "ok");
  return failed ? 1 : 0;
}
