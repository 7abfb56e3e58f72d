/* starvideos.commit: a download's commit on a helper thread (the core's
   sv_commit, part.c), made by core.commit_start from a .part handle. */
#include "lsv.h"

#include "compat.h"

#include <stdio.h>
#include <string.h>

#define COMMIT_MT "starvideos.commit"

typedef struct lcommit { sv_commit *c; } lcommit;

/* commit_start(part, dest [, hasher [, mp4]]) -> handle | nil, message: the
   .part handle (of core.part_open, or a whole download's from t:result) flushed,
   checked to be a whole MP4 (mp4: true, or the seconds expected: lsv_opt_mp4)
   and hashed with hasher (a module's sv_hasher: starvideos.sign's SHA256) in
   one read, synced,
   checked (its size, its name still that file), renamed to dest and the
   folder synced, on a helper thread (sv_commit_start), so that the caller
   does not wait for the disk nor for the hash; the .part handle is spent.
   handle:poll() says when it is done. */
static int l_commit_start(lua_State *L) {
  const char *dest = luaL_checkstring(L, 2);
  const sv_hasher *hash = lsv_opt_hasher(L, 3);
  double seconds;
  const double *mp4 = lsv_opt_mp4(L, 4, &seconds);
  char why[256];
  lcommit *lc;
  lua_settop(L, 2);
  lc = lsv_new_object(L, sizeof *lc, 0, COMMIT_MT); /* made before the .part is taken from its handle */
  lc->c = sv_commit_start(lsv_take_part(L, 1), dest, hash, mp4, why, sizeof why);
  if (!lc->c) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  return 1;
}

/* handle:poll() -> nil while the thread works, then true [, hash] | false,
   message [, true: not a whole MP4] (the hash in hex, when a hasher was given) */
static int c_poll(lua_State *L) {
  lcommit *lc = luaL_checkudata(L, 1, COMMIT_MT);
  const char *why = "", *hex = "";
  int rc;
  if (!lc->c) return luaL_error(L, "the commit handle was closed");
  rc = sv_commit_poll(lc->c, &why, &hex); /* before why is read */
  if (rc > 0) return 0;
  lua_pushboolean(L, rc == 0);
  if (rc == 0 && !*hex) return 1;
  lua_pushstring(L, rc == 0 ? hex : why);
  if (rc != -2) return 2;
  lua_pushboolean(L, 1);
  return 3;
}

/* collected or closed: waits for the thread when it still runs */
static int c_gc(lua_State *L) {
  lcommit *lc = luaL_checkudata(L, 1, COMMIT_MT);
  if (lc->c) { sv_commit_free(lc->c); lc->c = NULL; }
  return 0;
}

/* A shell command run to its end on a helper thread (a job's ffmpeg, verb_job.lua): the thread starts it (so that
   the caller never waits for a process to start) at the lowest priority, which the command inherits, and reads
   what it writes. */
#define RUN_MT "starvideos.run"
#define RUN_MAX_OUT (1024 * 1024) /* what is kept of its output, at most */

typedef struct lrun {
  pthread_mutex_t lock;
  pthread_t thread;
  int threaded, joined, done, ok; /* done, ok: under lock, set once by the thread */
  sv_buf out;                     /* the thread's until done */
  char command[1];                /* (the whole command: the object is made as long as it needs) */
} lrun;

static void *run_thread(void *arg) {
  lrun *r = arg;
  sv_buf out = { 0 };
  char block[4096];
  size_t n;
  int ok = 0;
  FILE *p;
  if (r->threaded) sv_helper_background(); /* (the command's priority too: it inherits the thread's) */
  p = popen(r->command, "r");
  if (p) {
    while ((n = fread(block, 1, sizeof block, p)) > 0)
      if (out.len < RUN_MAX_OUT) sv_buf_add(&out, block, n);
    ok = pclose(p) != -1;
  }
  pthread_mutex_lock(&r->lock);
  r->out = out;
  r->ok = ok;
  r->done = 1;
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

/* run_start(command) -> handle | nil, why: command run by /bin/sh on a helper thread; handle:poll() -> nil while it
   runs, then what it wrote on stdout (its status is what the command itself says there: shell.lua's popen_ok) |
   nil, why (it could not be started) */
static int l_run_start(lua_State *L) {
  size_t len;
  const char *command = luaL_checklstring(L, 1, &len);
  lrun *r = lsv_new_object(L, sizeof *r + len, 0, RUN_MT);
  memcpy(r->command, command, len + 1);
  if (pthread_mutex_init(&r->lock, NULL) != 0) {
    r->joined = -1; /* (no lock to destroy) */
    lua_pushnil(L);
    lua_pushstring(L, "out of memory");
    return 2;
  }
  r->threaded = 1; /* set before the thread starts: it reads it */
  if (sv_helper_start(&r->thread, run_thread, r) != 0) {
    r->threaded = 0;
    run_thread(r); /* no thread to be had: run here */
  }
  return 1;
}

static int r_poll(lua_State *L) {
  lrun *r = luaL_checkudata(L, 1, RUN_MT);
  int done;
  if (r->joined < 0) return luaL_error(L, "the run handle was closed");
  if (pthread_mutex_trylock(&r->lock) != 0) return 0; /* the thread is finishing: look again later */
  done = r->done;
  pthread_mutex_unlock(&r->lock);
  if (!done) return 0;
  if (r->threaded && !r->joined) { pthread_join(r->thread, NULL); r->joined = 1; }
  if (!r->ok) {
    lua_pushnil(L);
    lua_pushstring(L, "the command could not be run");
    return 2;
  }
  lua_pushlstring(L, r->out.data ? r->out.data : "", r->out.len);
  return 1;
}

/* collected or closed: waits for the thread (and its command) when it still runs */
static int r_gc(lua_State *L) {
  lrun *r = luaL_checkudata(L, 1, RUN_MT);
  if (r->joined < 0) return 0;
  if (r->threaded && !r->joined) pthread_join(r->thread, NULL);
  pthread_mutex_destroy(&r->lock);
  sv_buf_free(&r->out);
  r->joined = -1;
  return 0;
}

void lsv_open_commit(lua_State *L) {
  static const luaL_Reg methods[] = { { "poll", c_poll }, { "close", c_gc }, { NULL, NULL } };
  static const luaL_Reg run_methods[] = { { "poll", r_poll }, { "close", r_gc }, { NULL, NULL } };
  static const luaL_Reg funcs[] = { { "commit_start", l_commit_start }, { "run_start", l_run_start },
                                    { NULL, NULL } };
  lsv_new_class(L, COMMIT_MT, methods, c_gc);
  lsv_new_class(L, RUN_MT, run_methods, r_gc);
  luaL_setfuncs(L, funcs, 0);
}
