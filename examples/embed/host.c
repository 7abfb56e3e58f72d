/* A game-engine style host: Lua 5.4 embedded, starvideos linked in statically
   (build/libstarvideos.a, `make static`), a 60 fps loop that generates a video
   and calls client:step(0) once a frame, timing every call.

     make embed-host
     STARVIDEOS_API_KEY=... build/embed/host [options] BASE_URL OUT.mp4

   options: --no-package   open every standard library but package (the module
                           must not need it: cjson is preloaded here)
            --timeout S    give up after S seconds (default 600)
            --frame-ms MS  frame period (default 16)
            --prompt TEXT  the prompt (default "a host frame loop")
            --slow-ms MS   print each frame whose step took longer (wall or
                           CPU) to stderr, with the job's state
            --journal PATH the client's journal (docs/batch.md)
            --tasks N      N jobs at once (default 1): the first to OUT.mp4,
                           the others to OUT-2.mp4 ... OUT-N.mp4

   It prints one "key value" line per result, then exits 0 only when every
   video was downloaded:
     result ok PATH | result failed MESSAGE (the first job's, or the first
                   failed job's)
                   MESSAGE: the error as tostring gives it (the library's
                   errors are tables: "auth: create: HTTP 401: ...");
     frames N, step_max_ms, step_p99_ms, step_p50_ms, step_mean_ms, frames_over_4ms
                   each step(0) in wall-clock time;
     step_own_max_ms, step_own_p99_ms, frames_own_over_4ms
                   the same less the time the thread waited for a CPU (from
                   /proc/thread-self/schedstat: on a machine shared with other
                   busy processes the scheduler can hold any frame back by a
                   tick or two; "own" is what the step itself cost, blocking
                   included; "own" equals wall where schedstat is missing);
     step_cpu_max_ms, step_cpu_p99_ms
                   the thread's CPU time in each step (on a kernel with
                   paravirtual steal accounting, less the time a hypervisor
                   took the CPU away);
     step_work_max_ms, step_work_p99_ms, frames_work_over_4ms, frames_blocked
                   what the step itself cost: its CPU time, or its "own" time
                   when it blocked (the thread gave up the CPU: a voluntary
                   context switch, getrusage RUSAGE_THREAD), so that an fsync
                   or a wait for a lock counts whole while the time a busy
                   machine held a running step back does not; "work" equals
                   "own" where RUSAGE_THREAD is missing.
   Everything is freed at the end (client:close, lua_close, the timings).

   lua-cjson: Debian ships it only as a module (cjson.so, a link to
   liblua5.4-cjson.so.0, whose Lua API calls are left to the executable); this
   host links that library by name and registers luaopen_cjson and
   luaopen_cjson_safe itself, so no package library is needed to find it.

   starvideos.h (make static: build/include/) declares luaopen_starvideos.
   This host is Lua 5.4 (luaL_requiref, luaL_tolstring, LUA_GNAME). */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "starvideos.h"

int luaopen_cjson(lua_State *L); /* lua-cjson declares them in no header */
int luaopen_cjson_safe(lua_State *L);

/* The game's script: make a client and start its jobs.  Run with the module,
   the base URL, the output path, the prompt, the journal (or nil) and the
   count; returns the client, the first job and a function that gives the
   first failed job, or the first once all are done (nil before). */
static const char setup_lua[] =
  "local starvideos, base_url, out, prompt, journal, n = ...\n"
  "local client = starvideos.new { base_url = base_url, journal = journal }\n"
  "local jobs = {}\n"
  "for i = 1, n do\n"
  "  jobs[i] = assert(client:start({ model = 'videos', prompt = prompt .. (i > 1 and ' ' .. i or ''), duration = 5 },\n"
  "    { out = i == 1 and out or out:gsub('%.mp4$', '') .. '-' .. i .. '.mp4', interval = 0.05 }))\n"
  "end\n"
  "local function ended()\n"
  "  for _, job in ipairs(jobs) do if not job.done then return nil end end\n"
  "  for _, job in ipairs(jobs) do if job.err then return job end end\n"
  "  return jobs[1]\n"
  "end\n"
  "return client, jobs[1], ended\n";

enum { WALL, OWN, CPU, WORK, MEASURES };

typedef struct run {
  const char *base_url, *out, *prompt, *journal;
  int no_package, tasks;
  double timeout, frame, slow;
  double *t[MEASURES]; /* seconds, one per frame */
  size_t n, cap;
  int schedstat; /* fd of /proc/thread-self/schedstat, or -1 */
  int ok;
  int globals_added;
  unsigned long blocked; /* frames whose step gave up the CPU */
} run;

static double now(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds this thread spent waiting on a run queue so far (0 when unknown). */
static double runqueue_wait(int fd) {
  char buf[128];
  ssize_t n;
  unsigned long long run_ns, wait_ns;
  if (fd < 0 || (n = pread(fd, buf, sizeof buf - 1, 0)) <= 0) return 0;
  buf[n] = '\0';
  if (sscanf(buf, "%llu %llu", &run_ns, &wait_ns) != 2) return 0;
  return (double)wait_ns / 1e9;
}

/* Times this thread gave up the CPU (blocked) so far, or -1 when unknown. */
static long voluntary_switches(void) {
#ifdef RUSAGE_THREAD
  struct rusage ru;
  if (getrusage(RUSAGE_THREAD, &ru) == 0) return ru.ru_nvcsw;
#endif
  return -1;
}

static void sleep_until(double t) {
  struct timespec ts;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static int count_globals(lua_State *L) {
  int n = 0;
  lua_pushglobaltable(L);
  lua_pushnil(L);
  while (lua_next(L, -2)) { lua_pop(L, 1); n++; }
  lua_pop(L, 1);
  return n;
}

static void open_libs(lua_State *L, int no_package) {
  static const luaL_Reg libs[] = {
    { LUA_GNAME, luaopen_base }, { LUA_LOADLIBNAME, luaopen_package }, { LUA_COLIBNAME, luaopen_coroutine },
    { LUA_TABLIBNAME, luaopen_table }, { LUA_IOLIBNAME, luaopen_io }, { LUA_OSLIBNAME, luaopen_os },
    { LUA_STRLIBNAME, luaopen_string }, { LUA_MATHLIBNAME, luaopen_math }, { LUA_UTF8LIBNAME, luaopen_utf8 },
    { LUA_DBLIBNAME, luaopen_debug }, { NULL, NULL }
  };
  const luaL_Reg *l;
  for (l = libs; l->name; l++) {
    if (no_package && l->func == luaopen_package) continue;
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
}

static int record(run *r, const double v[MEASURES]) {
  int m;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 4096;
    for (m = 0; m < MEASURES; m++) {
      double *p = realloc(r->t[m], cap * sizeof *p);
      if (!p) return -1;
      r->t[m] = p;
    }
    r->cap = cap;
  }
  for (m = 0; m < MEASURES; m++) r->t[m][r->n] = v[m];
  r->n++;
  return 0;
}

/* The error value on top as text, for "result failed": luaL_tolstring uses
   its __tostring (the library's error tables have one), so a table is not
   printed as "(null)" as lua_tostring would.  Run under lua_pcall: a
   __tostring that raises gives its own message instead. */
static int to_text(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

static const char *error_text(lua_State *L) {
  lua_pushcfunction(L, to_text);
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK && !lua_isstring(L, -1)) return "(an error whose __tostring failed)";
  return lua_tostring(L, -1);
}

/* Everything that touches Lua, under lua_pcall: a Lua error ends up as a message. */
static int pmain(lua_State *L) {
  run *r = lua_touserdata(L, 1);
  int client, job, ended, before;
  double start, next;
  lua_settop(L, 0);
  open_libs(L, r->no_package);
  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  luaL_requiref(L, "cjson.safe", luaopen_cjson_safe, 0);
  lua_settop(L, 0);
  if (r->no_package) {
    if (lua_getglobal(L, "require") != LUA_TNIL || lua_getglobal(L, "package") != LUA_TNIL)
      return luaL_error(L, "--no-package: the state has a package library");
    lua_settop(L, 0);
  }
  before = count_globals(L);
  luaL_requiref(L, "starvideos", luaopen_starvideos, 0); /* 1: the module */
  r->globals_added = count_globals(L) - before;
  if (luaL_loadbuffer(L, setup_lua, sizeof setup_lua - 1, "=setup") != LUA_OK) return lua_error(L);
  lua_pushvalue(L, 1);
  lua_pushstring(L, r->base_url);
  lua_pushstring(L, r->out);
  lua_pushstring(L, r->prompt);
  lua_pushstring(L, r->journal); /* (nil when NULL) */
  lua_pushinteger(L, r->tasks);
  lua_call(L, 6, 3);
  client = 2;
  job = 3;
  ended = 4;

  start = next = now(CLOCK_MONOTONIC);
  for (;;) {
    double v[MEASURES], t0, t1, c0, q0, q1;
    long s0, s1;
    int done, blocked;
    s0 = voluntary_switches();
    q0 = runqueue_wait(r->schedstat);
    c0 = now(CLOCK_THREAD_CPUTIME_ID);
    t0 = now(CLOCK_MONOTONIC);
    lua_getfield(L, client, "step");
    lua_pushvalue(L, client);
    lua_pushnumber(L, 0);
    lua_call(L, 2, 1);
    t1 = now(CLOCK_MONOTONIC);
    v[CPU] = now(CLOCK_THREAD_CPUTIME_ID) - c0;
    q1 = runqueue_wait(r->schedstat);
    s1 = voluntary_switches();
    lua_pop(L, 1);
    v[WALL] = t1 - t0;
    v[OWN] = v[WALL] - (q1 - q0);
    if (v[OWN] < v[CPU]) v[OWN] = v[CPU]; /* a wait just outside [t0, t1] */
    blocked = s0 < 0 || s1 != s0; /* unknown counts as blocked: "work" is then "own" */
    v[WORK] = blocked ? v[OWN] : v[CPU];
    r->blocked += (unsigned long)blocked;
    if (record(r, v)) return luaL_error(L, "out of memory");
    if (r->slow > 0 && (v[WALL] > r->slow || v[CPU] > r->slow)) {
      lua_getfield(L, job, "state");
      fprintf(stderr, "slow frame %lu (%s): wall %.3f ms, own %.3f ms, cpu %.3f ms, work %.3f ms%s\n",
              (unsigned long)(r->n - 1), lua_tostring(L, -1), v[WALL] * 1000, v[OWN] * 1000, v[CPU] * 1000,
              v[WORK] * 1000, blocked ? " (blocked)" : "");
      lua_pop(L, 1);
    }
    lua_pushvalue(L, ended);
    lua_call(L, 0, 1);
    done = !lua_isnil(L, -1);
    if (done) break;
    lua_pop(L, 1);
    if (t1 - start > r->timeout) return luaL_error(L, "the job was not done after %f seconds", r->timeout);
    next += r->frame;
    if (next < t1) next = t1; /* a late frame does not make the next ones short */
    sleep_until(next);
  }

  lua_getfield(L, -1, "err"); /* (the job ended() gave) */
  if (!lua_isnil(L, -1)) {
    printf("result failed %s\n", error_text(L));
  } else {
    lua_getfield(L, -2, "path");
    printf("result ok %s\n", lua_tostring(L, -1));
    r->ok = 1;
  }
  lua_settop(L, 4);
  lua_getfield(L, client, "close");
  lua_pushvalue(L, client);
  lua_call(L, 1, 0);
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Sorts t[0..n) and prints its max and p99 (and more for wall time). */
static void report(const char *name, double *t, size_t n, int more) {
  size_t p99 = (n * 99 + 99) / 100, over = 0, k;
  double total = 0;
  for (k = 0; k < n; k++) {
    total += t[k];
    if (t[k] > 0.004) over++;
  }
  qsort(t, n, sizeof *t, cmp_double);
  printf("step%s_max_ms %.3f\n", name, t[n - 1] * 1000);
  printf("step%s_p99_ms %.3f\n", name, t[p99 - 1] * 1000);
  if (more) {
    printf("step%s_p50_ms %.3f\n", name, t[(n + 1) / 2 - 1] * 1000);
    printf("step%s_mean_ms %.3f\n", name, total / (double)n * 1000);
    printf("frames%s_over_4ms %lu\n", name, (unsigned long)over);
  }
}

static int usage(void) {
  fprintf(stderr, "usage: STARVIDEOS_API_KEY=... host [--no-package] [--timeout S] [--frame-ms MS] "
                  "[--prompt TEXT] [--slow-ms MS] [--journal PATH] [--tasks N] BASE_URL OUT.mp4\n");
  return 2;
}

int main(int argc, char **argv) {
  run r;
  lua_State *L;
  int i, status, m;
  memset(&r, 0, sizeof r);
  r.timeout = 600;
  r.frame = 0.016;
  r.prompt = "a host frame loop";
  r.tasks = 1;
  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--no-package") == 0) r.no_package = 1;
    else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) r.timeout = atof(argv[++i]);
    else if (strcmp(argv[i], "--frame-ms") == 0 && i + 1 < argc) r.frame = atof(argv[++i]) / 1000;
    else if (strcmp(argv[i], "--prompt") == 0 && i + 1 < argc) r.prompt = argv[++i];
    else if (strcmp(argv[i], "--slow-ms") == 0 && i + 1 < argc) r.slow = atof(argv[++i]) / 1000;
    else if (strcmp(argv[i], "--journal") == 0 && i + 1 < argc) r.journal = argv[++i];
    else if (strcmp(argv[i], "--tasks") == 0 && i + 1 < argc) r.tasks = atoi(argv[++i]);
    else return usage();
  }
  if (argc - i != 2 || !(r.timeout > 0) || !(r.frame > 0) || r.tasks < 1) return usage();
  r.base_url = argv[i];
  r.out = argv[i + 1];
  r.schedstat = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);

  L = luaL_newstate();
  if (!L) { fprintf(stderr, "host: cannot make a Lua state\n"); return 1; }
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &r);
  status = lua_pcall(L, 1, 0, 0);
  if (status != LUA_OK) {
    printf("result failed %s\n", error_text(L));
    r.ok = 0;
  }
  lua_close(L);

  printf("package_library %s\n", r.no_package ? "no" : "yes");
  printf("globals_added %d\n", r.globals_added);
  printf("schedstat %s\n", r.schedstat >= 0 ? "yes" : "no");
  printf("frames %lu\n", (unsigned long)r.n);
  if (r.n) {
    report("", r.t[WALL], r.n, 1);
    report("_own", r.t[OWN], r.n, 1);
    report("_cpu", r.t[CPU], r.n, 0);
    report("_work", r.t[WORK], r.n, 1);
    printf("frames_blocked %lu\n", r.blocked);
  }
  if (r.schedstat >= 0) close(r.schedstat);
  for (m = 0; m < MEASURES; m++) free(r.t[m]);
  return r.ok ? 0 : 1;
}
