/* starvideos.commit: a download's commit on a helper thread (the core's
   sv_commit, part.c), made by core.commit_start from a .part handle. */
#include "lsv.h"

#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
   what it writes.  The command runs in a process group of its own, which the handle's close (or its collection)
   kills: nothing waits for it.  The state the thread and the handle share is malloc'd, freed by whichever of the two
   lets go of it last (refs), so that a handle dropped while the command runs costs its caller nothing. */
#define RUN_MT "starvideos.run"
#define RUN_MAX_OUT (1024 * 1024) /* what is kept of its output, at most: its end (the status is said last) */

typedef struct run_state {
  pthread_mutex_t lock;
  int refs;       /* under lock: the thread's and the handle's */
  int done, ok;   /* under lock, set once by the thread */
  int closed;     /* under lock: the handle let go (the thread kills what it starts from then on) */
  pid_t group;    /* under lock: the command's process group while it runs, else 0 */
  int threaded;   /* set before the thread starts */
  sv_buf out;     /* the thread's until done */
  char command[1]; /* (the whole command: the state is made as long as it needs) */
} run_state;

typedef struct lrun { run_state *s; } lrun; /* s: NULL once closed */

/* One reference let go of (under no lock): the last frees the state. */
static void run_release(run_state *s) {
  int last;
  pthread_mutex_lock(&s->lock);
  last = --s->refs == 0;
  pthread_mutex_unlock(&s->lock);
  if (!last) return;
  pthread_mutex_destroy(&s->lock);
  sv_buf_free(&s->out);
  free(s);
}

/* Keeps the last RUN_MAX_OUT bytes of out (where the shell's status is) once it holds more than most. */
static void run_keep_tail(sv_buf *out, size_t most) {
  if (out->len <= most) return;
  memmove(out->data, out->data + out->len - RUN_MAX_OUT, RUN_MAX_OUT);
  out->len = RUN_MAX_OUT;
}

/* /bin/sh -c command started in a process group of its own, its stdin /dev/null, its stdout the pipe's end w, with
   the signals a host may ignore or block (SIGCHLD: nginx's handler, `trap '' CHLD`) back to their defaults: its pid,
   or -1. */
static pid_t run_spawn(const char *command, int w) {
  extern char **environ;
  char *argv[4];
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, defaults;
  pid_t pid = -1;
  int rc;
  argv[0] = (char *)"sh", argv[1] = (char *)"-c", argv[2] = (char *)command, argv[3] = NULL;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGCHLD), sigaddset(&defaults, SIGPIPE), sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGQUIT), sigaddset(&defaults, SIGTERM), sigaddset(&defaults, SIGHUP);
  if (posix_spawn_file_actions_init(&fa) != 0) return -1;
  if (posix_spawnattr_init(&at) != 0) { posix_spawn_file_actions_destroy(&fa); return -1; }
  rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) |
       posix_spawn_file_actions_adddup2(&fa, w, 1) | posix_spawnattr_setpgroup(&at, 0) |
       posix_spawnattr_setsigmask(&at, &none) | posix_spawnattr_setsigdefault(&at, &defaults) |
       posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (rc == 0 && posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ) != 0) pid = -1;
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

static void *run_thread(void *arg) {
  run_state *s = arg;
  sv_buf out = { 0 };
  char block[4096];
  ssize_t n;
  int fd[2], ok = 0, status;
  pid_t pid = -1;
  if (s->threaded) sv_helper_background(); /* (the command's priority too: it inherits the thread's) */
  if (pipe(fd) == 0) {
    (void)fcntl(fd[0], F_SETFD, FD_CLOEXEC), (void)fcntl(fd[1], F_SETFD, FD_CLOEXEC);
    pid = run_spawn(s->command, fd[1]);
    close(fd[1]);
    pthread_mutex_lock(&s->lock);
    if (pid > 0) s->group = pid;
    if (pid > 0 && s->closed) (void)kill(-pid, SIGKILL); /* let go of while it started */
    pthread_mutex_unlock(&s->lock);
    while (pid > 0 && ((n = read(fd[0], block, sizeof block)) > 0 || (n < 0 && errno == EINTR)))
      if (n > 0) { sv_buf_add(&out, block, (size_t)n); run_keep_tail(&out, 2 * RUN_MAX_OUT); }
    close(fd[0]);
    ok = pid > 0; /* started: its status is the shell's own words at the output's end (shell.saying) */
  }
  pthread_mutex_lock(&s->lock);
  s->group = 0; /* (before the wait: a group reaped may be a new process's) */
  pthread_mutex_unlock(&s->lock);
  /* (reaped here unless the host reaps or ignores its children: ECHILD then, which says nothing of the command) */
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
  run_keep_tail(&out, RUN_MAX_OUT);
  pthread_mutex_lock(&s->lock);
  s->out = out;
  s->ok = ok;
  s->done = 1;
  pthread_mutex_unlock(&s->lock);
  run_release(s);
  return NULL;
}

/* run_start(command) -> handle | nil, why: command run by /bin/sh on a helper thread; handle:poll() -> nil while it
   runs, then what it wrote on stdout (its last MiB: its status is what the command itself says there, shell.lua's
   saying) | nil, why (it could not be started); handle:close() kills it when it still runs (its process group). */
static int l_run_start(lua_State *L) {
  size_t len;
  const char *command = luaL_checklstring(L, 1, &len);
  lrun *r = lsv_new_object(L, sizeof *r, 0, RUN_MT);
  run_state *s = calloc(1, sizeof *s + len);
  pthread_t thread;
  if (!s || pthread_mutex_init(&s->lock, NULL) != 0) {
    free(s);
    lua_pushnil(L);
    lua_pushstring(L, "out of memory");
    return 2;
  }
  memcpy(s->command, command, len + 1);
  s->refs = 2;
  r->s = s;
  sv_helper_pin_module(); /* the thread may outlive the handle, and the state that loaded this module */
  s->threaded = 1; /* set before the thread starts: it reads it */
  if (sv_helper_start(&thread, run_thread, s) != 0) {
    s->threaded = 0;
    run_thread(s); /* no thread to be had: run here */
  } else {
    pthread_detach(thread);
  }
  return 1;
}

static int r_poll(lua_State *L) {
  lrun *r = luaL_checkudata(L, 1, RUN_MT);
  run_state *s = r->s;
  int done;
  if (!s) return luaL_error(L, "the run handle was closed");
  if (pthread_mutex_trylock(&s->lock) != 0) return 0; /* the thread is finishing: look again later */
  done = s->done;
  pthread_mutex_unlock(&s->lock);
  if (!done) return 0;
  if (!s->ok) {
    lua_pushnil(L);
    lua_pushstring(L, "the command could not be run");
    return 2;
  }
  lua_pushlstring(L, s->out.data ? s->out.data : "", s->out.len);
  return 1;
}

/* collected or closed: the command killed when it still runs (its process group); the thread is never waited for */
static int r_gc(lua_State *L) {
  lrun *r = luaL_checkudata(L, 1, RUN_MT);
  run_state *s = r->s;
  if (!s) return 0;
  r->s = NULL;
  pthread_mutex_lock(&s->lock);
  s->closed = 1;
  if (s->group > 0) (void)kill(-s->group, SIGKILL);
  pthread_mutex_unlock(&s->lock);
  run_release(s);
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
