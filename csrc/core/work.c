/* A helper thread's one shape (after luv's work.c: its state, its refs, start,
   poll, close), that of every thread the library starts for its caller: the
   commit of a download (part.c), a file's hashing (lua/sign.c), a command run
   (lua/run.c) and the journal's writer (journal.c).  The state the owner and the
   thread share is one allocation, freed by whichever of the two lets go of it
   last: an owner never waits for its thread (a game's frame, nginx's worker),
   and a thread never finds its state gone.  The helpers' threads themselves:
   started with every signal blocked, at the lowest priority, in a module that
   stays loaded.  No Lua. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr, RTLD_NOLOAD, RTLD_NODELETE (sv_helper_pin_module) */
#endif
#include "sv_core.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

/* Called first in each helper: the lowest priority (Linux sets it per thread),
   so that waking a helper never takes the CPU from the caller's thread (a
   game's frame); the helper runs when the caller sleeps or on another CPU. */
void sv_helper_background(void) {
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

int sv_helper_start(pthread_t *t, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  int rc;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

enum { WORK_NEW, WORK_RUNNING, WORK_DONE };

union work_align { long double ld; long long ll; void *p; void (*fn)(void); };

struct sv_work {
  pthread_mutex_t lock;
  const sv_work_kind *kind;
  int refs;  /* under lock: the owner's, and the thread's from its start to its end */
  int state; /* under lock: WORK_NEW, WORK_RUNNING, WORK_DONE (run returned) */
  union work_align data[]; /* the kind's own (sv_work_data) */
};

sv_work *sv_work_new(const sv_work_kind *kind, size_t size) {
  sv_work *w = calloc(1, sizeof *w + size);
  if (!w) return NULL;
  if (pthread_mutex_init(&w->lock, NULL) != 0) {
    free(w);
    return NULL;
  }
  w->kind = kind;
  w->refs = 1;
  return w;
}

void *sv_work_data(sv_work *w) { return w->data; }

void sv_work_lock(sv_work *w) { pthread_mutex_lock(&w->lock); }
void sv_work_unlock(sv_work *w) { pthread_mutex_unlock(&w->lock); }

/* One reference let go of (under no lock): the last frees the state. */
static void work_release(sv_work *w) {
  int last;
  pthread_mutex_lock(&w->lock);
  last = --w->refs == 0;
  pthread_mutex_unlock(&w->lock);
  if (!last) return;
  if (w->kind->free) w->kind->free(w->data);
  pthread_mutex_destroy(&w->lock);
  free(w);
}

/* The kind's run, then its end told (its results are the owner's once sv_work_poll says so). */
static void work_run(sv_work *w) {
  w->kind->run(w, w->data);
  pthread_mutex_lock(&w->lock);
  w->state = WORK_DONE;
  pthread_mutex_unlock(&w->lock);
}

static void *work_thread(void *arg) {
  sv_work *w = arg;
  sv_helper_background(); /* (a command it starts inherits the priority) */
  work_run(w);
  work_release(w);
  return NULL;
}

int sv_work_start(sv_work *w, int here) {
  pthread_t thread;
  w->state = WORK_RUNNING; /* (no thread yet: nothing else reads it) */
  w->refs++;
  sv_helper_pin_module(); /* the thread may outlive its owner, and the Lua state that loaded this module */
  if (sv_helper_start(&thread, work_thread, w) == 0) {
    pthread_detach(thread);
    return 1;
  }
  w->refs--;
  if (here) work_run(w);
  else w->state = WORK_NEW;
  return 0;
}

int sv_work_poll(sv_work *w) {
  int done;
  if (pthread_mutex_trylock(&w->lock) != 0) return 1; /* the thread is finishing: look again later */
  done = w->state == WORK_DONE;
  pthread_mutex_unlock(&w->lock);
  return !done;
}

void sv_work_close(sv_work *w) {
  if (!w) return;
  pthread_mutex_lock(&w->lock);
  if (w->state == WORK_RUNNING && w->kind->stop) w->kind->stop(w->data);
  pthread_mutex_unlock(&w->lock);
  work_release(w);
}
