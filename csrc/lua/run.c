/* starvideos.run: a shell command run to its end on a helper thread (a job's ffmpeg, verb_job.lua), made by
   core.run_start.  The thread (a work, work.c) starts it, so that the caller never waits for a process to start,
   at the lowest priority, which the command inherits, and reads what it writes.  The command runs in a process
   group of its own, which the handle's close (or its collection) kills: nothing waits for it. */
#include "lsv.h"

#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUN_MAX_OUT (1024 * 1024) /* what is kept of its output, at most: its end (the status is said last) */

typedef struct run_job {
  int ok;          /* set by the thread */
  int closed;      /* under the work's lock: the handle let go (the thread kills what it starts from then on) */
  pid_t group;     /* under the work's lock: the command's process group while it runs, else 0 */
  sv_buf out;      /* the thread's until done */
  char command[1]; /* (the whole command: the data is made as long as it needs) */
} run_job;

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

static void run_run(sv_work *w, void *data) {
  run_job *s = data;
  sv_buf out = { 0 };
  char block[4096];
  ssize_t n;
  int fd[2], status;
  pid_t pid = -1;
  if (pipe(fd) == 0) {
    (void)fcntl(fd[0], F_SETFD, FD_CLOEXEC), (void)fcntl(fd[1], F_SETFD, FD_CLOEXEC);
    pid = run_spawn(s->command, fd[1]);
    close(fd[1]);
    sv_work_lock(w);
    if (pid > 0) s->group = pid;
    if (pid > 0 && s->closed) (void)kill(-pid, SIGKILL); /* let go of while it started */
    sv_work_unlock(w);
    while (pid > 0 && ((n = read(fd[0], block, sizeof block)) > 0 || (n < 0 && errno == EINTR)))
      if (n > 0) { sv_buf_add(&out, block, (size_t)n); run_keep_tail(&out, 2 * RUN_MAX_OUT); }
    close(fd[0]);
  }
  sv_work_lock(w);
  s->group = 0; /* (before the wait: a group reaped may be a new process's) */
  sv_work_unlock(w);
  /* (reaped here unless the host reaps or ignores its children: ECHILD then, which says nothing of the command) */
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
  run_keep_tail(&out, RUN_MAX_OUT);
  s->out = out;
  s->ok = pid > 0; /* started: its status is the shell's own words at the output's end (shell.saying) */
}

/* The handle let go while the command runs (under the work's lock): its process group killed. */
static void run_stop(void *data) {
  run_job *s = data;
  s->closed = 1;
  if (s->group > 0) (void)kill(-s->group, SIGKILL);
}

static void run_free(void *data) { sv_buf_free(&((run_job *)data)->out); }

static const sv_work_kind run_kind = { run_run, run_stop, run_free };

static int run_push(lua_State *L, sv_work *w) {
  run_job *s = sv_work_data(w);
  if (!s->ok) {
    lua_pushnil(L);
    lua_pushliteral(L, "the command could not be run");
    return 2;
  }
  lua_pushlstring(L, s->out.data ? s->out.data : "", s->out.len);
  return 1;
}

static const lsv_work_class run_class = { "starvideos.run", "run", run_push };

/* run_start(command) -> handle | nil, why: command run by /bin/sh on a helper thread; handle:poll() -> nil while it
   runs, then what it wrote on stdout (its last MiB: its status is what the command itself says there, shell.lua's
   saying) | nil, why (it could not be started); handle:close() (or its collection) kills it when it still runs (its
   process group), never waiting for the thread. */
static int l_run_start(lua_State *L) {
  return lsv_start_work(L, &run_class, &run_kind, sizeof(run_job), offsetof(run_job, command));
}

void lsv_open_run(lua_State *L) {
  lsv_new_work_class(L, &run_class);
  lua_pushcfunction(L, l_run_start);
  lua_setfield(L, -2, "run_start");
}
