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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

struct sv_commit {
  pthread_mutex_t lock;
  pthread_t thread;
  int threaded, joined;
  int done, rc;  /* under lock: set once by the thread, read by the owner */
  sv_part *part; /* the thread's until done: it frees it */
  char *dest;
  char why[512];
};

static void *commit_thread(void *arg) {
  sv_commit *c = arg;
  sv_buf why;
  int rc;
  if (c->threaded) background(); /* not when run in the caller's thread */
  sv_buf_init(&why);
  rc = sv_part_flush(c->part, &why);
  if (rc == 0) rc = sv_part_commit(sv_part_fd(c->part), sv_part_size(c->part), sv_part_path(c->part), c->dest, &why);
  sv_part_free(c->part);
  c->part = NULL;
  pthread_mutex_lock(&c->lock);
  c->rc = rc;
  snprintf(c->why, sizeof c->why, "%s", sv_buf_cstr(&why));
  c->done = 1;
  pthread_mutex_unlock(&c->lock);
  sv_buf_free(&why);
  return NULL;
}

sv_commit *sv_commit_start(sv_part *p, const char *dest, char *why, size_t whylen) {
  sv_commit *c = calloc(1, sizeof *c);
  if (!c || !(c->dest = malloc(strlen(dest) + 1)) || pthread_mutex_init(&c->lock, NULL) != 0) {
    if (c) free(c->dest);
    free(c);
    sv_part_free(p);
    snprintf(why, whylen, "out of memory");
    return NULL;
  }
  strcpy(c->dest, dest);
  c->part = p;
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
  free(c->dest);
  free(c);
}
