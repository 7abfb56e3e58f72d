/* A download's disk work, off the caller's thread.  The caller may be a game's
   frame loop, where a step has a few milliseconds: a write() to a busy ext4
   can wait for the journal for 10 ms and more, and the end of a download
   (fsync of the whole .part, rename, fsync of the folder) takes a few hundred
   milliseconds for 300 MB.  So both run on helper threads:
     - a download's own thread (sv_http.c) receives and writes its bytes;
     - sv_commit: fsync, rename and fsync of the folder, polled until done.
   Callers poll (a mutex and a few loads) and never wait for the disk.  The
   helpers here touch only their file and their own fields: no Lua, no libcurl;
   sv_helper_start serves both. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr, RTLD_NOLOAD, RTLD_NODELETE (sv_helper_pin_module) */
#endif
#include "sv_core.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

/* Called first in each helper: the lowest priority (Linux sets it per thread),
   so that waking a helper never takes the CPU from the caller's thread (a
   game's frame); the helper runs when the caller sleeps or on another CPU. */
static void background(void) {
#if defined(__linux__) && defined(SYS_gettid)
  (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
#endif
}

static const char pin_anchor = 0; /* an address inside this module */

static void pin_once(void) {
  Dl_info info;
  if (dladdr(&pin_anchor, &info) && info.dli_fname)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE); /* never closed */
}

/* The module holds one more reference to itself, and so is never unloaded
   (what ld -z nodelete does, here for every build, LuaRocks' included): a
   helper that outlives the call that let go of it ends in this module's code. */
void sv_helper_pin_module(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, pin_once);
}

/* A helper takes no signal meant for the host: it starts with all blocked. */
int sv_helper_start(pthread_t *t, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  int rc;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif
#ifndef O_DIRECTORY
#define O_DIRECTORY 0
#endif

struct sv_commit {
  pthread_mutex_t lock;
  pthread_t thread;
  int threaded, joined;
  int done, rc;           /* under lock: set once by the thread, read by the owner */
  int fd, open_errno;     /* the .part's descriptor (the thread closes it), or why it could not be opened */
  char *part, *path;
  char why[512];
};

/* part opened by name, for a file no transport handed over (-1 with errno) */
static int open_part(const char *part) {
  return open(part, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
}

/* fsync the file, check that part still names it, rename it, fsync its
   folder; fd is closed.  0, or -1 with why. */
static int commit_fd(int fd, const char *part, const char *path, char *why, size_t whylen) {
  struct stat mine, named;
  sv_buf folder;
  int rc;
  if (fsync(fd) != 0 || fstat(fd, &mine) != 0) {
    int e = errno;
    close(fd);
    snprintf(why, whylen, "cannot write %s: %s", part, strerror(e));
    return -1;
  }
  /* the name must still be this file: another download of the same video (in
     this process or another) may have replaced or removed the .part since this
     one wrote it, and renaming that would commit bytes this download never
     checked */
  if (lstat(part, &named) != 0 || named.st_dev != mine.st_dev || named.st_ino != mine.st_ino) {
    int gone = errno == ENOENT;
    close(fd);
    snprintf(why, whylen, "cannot commit %s: it is no longer the file this download wrote (%s since, "
             "by another download of the same video?)", part, gone ? "removed" : "replaced");
    return -1;
  }
  close(fd);
  if (rename(part, path) != 0) {
    snprintf(why, whylen, "cannot rename %s into place: %s", part, strerror(errno));
    return -1;
  }
  /* the rename itself reaches the disk with the folder */
  sv_buf_init(&folder);
  rc = sv_sync_folder(path, &folder);
  if (rc) snprintf(why, whylen, "%s", sv_buf_cstr(&folder));
  sv_buf_free(&folder);
  return rc;
}

int sv_commit_now(int fd, const char *part, const char *path, char *why, size_t whylen) {
  if (fd < 0 && (fd = open_part(part)) < 0) {
    snprintf(why, whylen, "cannot write %s: %s", part, strerror(errno));
    return -1;
  }
  return commit_fd(fd, part, path, why, whylen);
}

static void *commit_thread(void *arg) {
  sv_commit *c = arg;
  char why[sizeof c->why];
  int rc;
  if (c->threaded) background(); /* not when run in the caller's thread */
  why[0] = '\0';
  if (c->fd >= 0) {
    rc = commit_fd(c->fd, c->part, c->path, why, sizeof why);
  } else {
    rc = -1;
    snprintf(why, sizeof why, "cannot write %s: %s", c->part, strerror(c->open_errno));
  }
  c->fd = -1;
  pthread_mutex_lock(&c->lock);
  c->rc = rc;
  memcpy(c->why, why, sizeof why);
  c->done = 1;
  pthread_mutex_unlock(&c->lock);
  return NULL;
}

static char *copy(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

sv_commit *sv_commit_start(int fd, const char *part, const char *path, char *why, size_t whylen) {
  sv_commit *c = calloc(1, sizeof *c);
  if (!c || !(c->part = copy(part)) || !(c->path = copy(path))) {
    if (c) { free(c->part); free(c); }
    if (fd >= 0) close(fd);
    snprintf(why, whylen, "out of memory");
    return NULL;
  }
  if (pthread_mutex_init(&c->lock, NULL) != 0) {
    free(c->part); free(c->path); free(c);
    if (fd >= 0) close(fd);
    snprintf(why, whylen, "cannot make a mutex");
    return NULL;
  }
  if (fd < 0 && (fd = open_part(part)) < 0) c->open_errno = errno; /* the thread says so */
  c->fd = fd;
  c->threaded = 1; /* set before the thread starts: it reads it */
  if (sv_helper_start(&c->thread, commit_thread, c) != 0) {
    c->threaded = 0;
    commit_thread(c); /* no thread to be had: do it here */
  }
  return c;
}

int sv_commit_poll(sv_commit *c, const char **why) {
  int done, rc;
  if (pthread_mutex_trylock(&c->lock) != 0) return 1; /* the thread is finishing: look again later */
  done = c->done;
  rc = c->rc;
  pthread_mutex_unlock(&c->lock);
  if (!done) return 1;
  if (c->threaded && !c->joined) { pthread_join(c->thread, NULL); c->joined = 1; }
  if (why) *why = c->why;
  return rc == 0 ? 0 : -1;
}

int sv_commit_wait(sv_commit *c, const char **why) {
  if (c->threaded && !c->joined) { pthread_join(c->thread, NULL); c->joined = 1; }
  return sv_commit_poll(c, why); /* the thread is gone: the lock is free */
}

void sv_commit_free(sv_commit *c) {
  if (!c) return;
  if (c->threaded && !c->joined) pthread_join(c->thread, NULL);
  pthread_mutex_destroy(&c->lock);
  free(c->part);
  free(c->path);
  free(c);
}
