/* Files several processes share: the journal, and the leases of its owners.
   A record reaches the file in one write() on an O_APPEND descriptor, under an
   exclusive flock that also covers the repair of a torn last line, so
   concurrent writers never interleave and a crash never glues two records
   together.  A compaction writes a new file and renames it over the journal
   under the old file's flock; an appender checks, once it holds the lock,
   that its descriptor is still the file at the path.  Transport-free, Lua-free. */
#include "sv_core.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif

static int fail(sv_buf *why, const char *what, const char *path, int e) {
  sv_buf_addf(why, "cannot %s the journal %s: %s", what, path, strerror(e));
  return -1;
}

/* O_NONBLOCK: a FIFO (or a device) at the journal's path is refused at once
   rather than waited on (opening a FIFO for writing waits for a reader); it is
   cleared again before any write to the regular file. */
static int open_checked(const char *path, int flags, sv_buf *why) {
  int fd = open(path, flags | O_CLOEXEC | O_NONBLOCK, 0644), e = fd >= 0 ? 0 : errno == ENXIO ? -1 : errno;
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) != 0) e = errno;
  else if (fd >= 0 && !S_ISREG(st.st_mode)) e = -1;
  else if (fd >= 0 && fcntl(fd, F_SETFL, flags & O_APPEND) != 0) e = errno;
  if (e && fd >= 0) close(fd);
  if (e > 0) return fail(why, "open", path, e);
  if (e < 0) sv_buf_addf(why, "cannot use the journal %s: it is not a regular file", path);
  return e ? -1 : fd;
}

/* The journal at path, opened and under an exclusive flock, as the file that is
   at path once the lock is held: a compaction renames a new file over the
   journal while it holds the old file's lock, so a descriptor opened before
   that rename and locked after it names an orphan; it is closed and path opened
   again.  The descriptor, or -1 with why. */
static int open_locked(const char *path, int flags, sv_buf *why) {
  int tries;
  for (tries = 0; tries < 1000; tries++) {
    struct stat fst, pst;
    int fd = open_checked(path, flags, why);
    if (fd < 0) return -1;
    while (flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) { int e = errno; close(fd); return fail(why, "lock", path, e); }
    }
    if (fstat(fd, &fst) == 0 && stat(path, &pst) == 0 && fst.st_dev == pst.st_dev && fst.st_ino == pst.st_ino)
      return fd;
    close(fd); /* replaced (or removed) while we waited for the lock: the file now there */
  }
  sv_buf_addf(why, "cannot lock the journal %s: it was replaced 1000 times in a row", path);
  return -1;
}

const char *sv_file_kind(const char *path, int follow, int *err) {
  struct stat st;
  if ((follow ? stat(path, &st) : lstat(path, &st)) != 0) { *err = errno; return NULL; }
  *err = 0;
  if (S_ISREG(st.st_mode)) return "file";
  if (S_ISDIR(st.st_mode)) return "folder";
  if (S_ISLNK(st.st_mode)) return "link";
  return "other";
}

/* One record through fd (the journal at path, under its flock): after a crash
   mid-write the last line is torn, so it is ended first and this record starts
   a line of its own (read under the lock: no other writer is midway). */
int sv_file_append_held(int fd, const char *path, const char *rec, size_t len, int sync, sv_buf *why) {
  struct stat st;
  sv_buf out = {0};
  size_t done = 0;
  int rc = 0;
  if (fstat(fd, &st) != 0) st.st_size = -1;
  if (st.st_size > 0) {
    char last = '\n';
    int rfd = open(path, O_RDONLY | O_CLOEXEC);
    if (rfd >= 0) {
      if (pread(rfd, &last, 1, st.st_size - 1) != 1) last = '\n';
      close(rfd);
    }
    if (last != '\n') sv_buf_add(&out, "\n", 1);
  }
  sv_buf_add(&out, rec, len);
  if (len == 0 || rec[len - 1] != '\n') sv_buf_add(&out, "\n", 1);
  if (out.oom) { rc = -1; sv_buf_adds(why, "out of memory writing the journal"); }
  while (!rc && done < out.len) { /* one write() unless the kernel cuts it short */
    ssize_t w = write(fd, out.data + done, out.len - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      rc = fail(why, "write", path, errno);
    } else {
      done += (size_t)w;
    }
  }
  if (!rc && sync && fsync(fd) != 0) rc = fail(why, "write", path, errno);
  /* a record not written whole leaves no part of itself: the file cut back (under the lock) */
  if (rc && st.st_size >= 0 && ftruncate(fd, st.st_size) == 0 && sync) (void)fsync(fd);
  sv_buf_free(&out);
  return rc;
}

/* (one hold can read the file and then append to it: no other writer in between) */
int sv_file_lock(const char *path, int create, sv_buf *why) {
  return open_locked(path, create ? O_RDWR | O_APPEND | O_CREAT : O_RDONLY, why);
}

/* The folder of path (one level up) made when missing: whether it is there. */
static int make_folder(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  if (n == 0 || n >= sizeof dir) return 0;
  memcpy(dir, path, n);
  dir[n] = '\0';
  return mkdir(dir, 0755) == 0 || errno == EEXIST;
}

int sv_file_try_lock(const char *path, int create, sv_buf *why) {
  /* a look at another's lease needs no write access: flock takes a read-only descriptor */
  int flags = (create ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  int fd = open(path, flags, 0644);
  if (fd < 0 && errno == ENOENT && !create) return SV_LOCK_MISSING;
  if (fd < 0 && errno == ENOENT && make_folder(path)) fd = open(path, flags, 0644);
  if (fd < 0) {
    sv_buf_addf(why, "cannot open the lease %s: %s", path, strerror(errno));
    return -1;
  }
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e == EINTR) continue;
    close(fd);
    if (e == EWOULDBLOCK) return SV_LOCK_BUSY;
    sv_buf_addf(why, "cannot lock the lease %s: %s", path, strerror(e));
    return -1;
  }
  if (create) { /* a new lease says whose it is, for a person looking */
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)n) != n) {
      sv_buf_addf(why, "cannot write the lease %s: %s", path, strerror(errno));
      close(fd);
      return -1;
    }
  }
  return fd;
}

int sv_file_replace(int lockfd, const char *tmp, const char *path, sv_buf *why) {
  struct stat lst, pst, tst;
  int fd, e = 0;
  if (fstat(lockfd, &lst) != 0 || stat(path, &pst) != 0 || lst.st_dev != pst.st_dev || lst.st_ino != pst.st_ino) {
    sv_buf_addf(why, "cannot compact the journal %s: it was replaced while locked", path);
    return -1;
  }
  fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return fail(why, "compact", path, errno);
  if (fstat(fd, &tst) != 0) e = errno;
  else if (!S_ISREG(tst.st_mode)) e = EINVAL;
  else if (fchmod(fd, lst.st_mode & 07777) != 0 || fsync(fd) != 0) e = errno;
  close(fd);
  if (!e && rename(tmp, path) != 0) e = errno;
  if (e) return fail(why, "compact", path, e);
  return sv_sync_folder(path, why); /* the rename itself must survive a crash */
}

/* ------------------------------------------------ the journal's writer thread */

typedef struct jitem {
  struct jitem *next;
  long long ticket;
  double expect; /* < 0: appended as it is; -2 once refused (a conflict) */
  int sync;
  size_t len;
  char data[];
} jitem;

/* The caller never waits for the thread's lock (the thread runs at the lowest
   priority: a busy machine may hold it back while it has the lock): its items
   wait in its own list (mine) until a put or a poll gets the lock. */
struct sv_jwriter {
  pthread_mutex_t mu;
  pthread_cond_t work, moved; /* moved: room made or tickets done */
  sv_work *thread; /* the work whose data this is (work.c) */
  int made, threaded, closing; /* made: mu, work and moved are (jw_free destroys them) */
  jitem *head, *tail, *spent; /* spent: written, freed by the caller (its allocator's lock is never the thread's) */
  size_t queued;
  long long done;
  sv_buf fails; /* sv_jfail's (out of memory: a record is then told written) */
  /* the caller's alone */
  jitem *mine, *mine_tail;
  size_t mine_bytes;
  long long last, seen;
  /* the thread's alone: in the file dev/ino, every byte from clean to end is its own */
  dev_t dev;
  ino_t ino;
  off_t clean, end;
  char path[];
};

/* The file (st) seen under the lock: when another wrote since the writer's
   last write (or it is a new file: a compaction), its own bytes start at its end. */
static void seen_file(sv_jwriter *w, const struct stat *st) {
  if (w->dev == st->st_dev && w->ino == st->st_ino && w->end == st->st_size) return;
  w->dev = st->st_dev;
  w->ino = st->st_ino;
  w->clean = w->end = st->st_size;
}

static void failed(sv_jwriter *w, long long ticket, int conflict, const char *why) {
  sv_jfail f;
  f.ticket = ticket;
  f.conflict = conflict;
  snprintf(f.why, sizeof f.why, "%s", why);
  sv_buf_add(&w->fails, &f, sizeof f);
}

/* The items of list in one write (one fsync when one asks) under one hold of the lock, then told done. */
static void write_batch(sv_jwriter *w, jitem *list) {
  sv_buf out = {0}, why = {0};
  struct stat st;
  int fd = sv_file_lock(w->path, 1, &why), sync = 0, rc = fd < 0 ? -1 : 0;
  jitem *it;
  if (!rc && fstat(fd, &st) != 0) rc = fail(&why, "write", w->path, errno);
  if (!rc) seen_file(w, &st);
  for (it = list; !rc && it; it = it->next) { /* a conditional item: every byte after what its caller read, ours */
    if (it->expect >= 0 && (off_t)it->expect < w->clean) { it->expect = -2; continue; }
    sv_buf_add(&out, it->data, it->len);
    sync |= it->sync;
  }
  if (!rc && out.len) {
    rc = sv_file_append_held(fd, w->path, out.data, out.len, sync, &why);
    if (!rc && fstat(fd, &st) == 0) w->end = st.st_size;
  }
  if (fd >= 0) close(fd); /* (the lock goes with it) */
  pthread_mutex_lock(&w->mu);
  for (it = list; it; it = it->next) {
    if (it->expect == -2) failed(w, it->ticket, 1, "");
    else if (rc) failed(w, it->ticket, 0, sv_buf_cstr(&why));
    w->done = it->ticket;
    if (!it->next) { it->next = w->spent; w->spent = list; break; }
  }
  pthread_cond_broadcast(&w->moved);
  pthread_mutex_unlock(&w->mu);
  sv_buf_free(&out);
  sv_buf_free(&why);
}

static void jw_run(sv_work *work, void *data) {
  sv_jwriter *w = data;
  jitem *list;
  (void)work;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->head && !w->closing) pthread_cond_wait(&w->work, &w->mu);
    if (!w->head) break;
    list = w->head;
    w->head = w->tail = NULL;
    w->queued = 0;
    pthread_mutex_unlock(&w->mu);
    write_batch(w, list);
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
}

/* Its owner let go (sv_jwriter_free, once what it queued is written): the thread ends. */
static void jw_stop(void *data) {
  sv_jwriter *w = data;
  pthread_mutex_lock(&w->mu);
  w->closing = 1;
  pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->mu);
}

static void free_items(jitem *it) {
  jitem *next;
  for (; it; it = next) {
    next = it->next;
    free(it);
  }
}

/* By the last of the owner and the thread. */
static void jw_free(void *data) {
  sv_jwriter *w = data;
  if (!w->made) return;
  pthread_cond_destroy(&w->work);
  pthread_cond_destroy(&w->moved);
  pthread_mutex_destroy(&w->mu);
  free_items(w->spent);
  free_items(w->head);
  free_items(w->mine);
  sv_buf_free(&w->fails);
}

static const sv_work_kind jw_kind = { jw_run, jw_stop, jw_free };

sv_jwriter *sv_jwriter_new(const char *path, int inline_) {
  sv_work *work = sv_work_new(&jw_kind, sizeof(sv_jwriter) + strlen(path) + 1);
  sv_jwriter *w;
  if (!work) return NULL;
  w = sv_work_data(work);
  w->thread = work;
  strcpy(w->path, path);
  if (pthread_mutex_init(&w->mu, NULL) != 0) { sv_work_close(work); return NULL; }
  w->made = 1;
  pthread_cond_init(&w->work, NULL);
  { /* moved: a timed wait on the monotonic clock (a step of the wall's lengthens none) */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->moved, &attr);
    pthread_condattr_destroy(&attr);
  }
  w->threaded = !inline_ && sv_work_start(work, 0); /* else each put writes at once */
  return w;
}

/* The caller's items handed to the thread (under w->mu); the spent ones taken back, to free. */
static jitem *hand_over(sv_jwriter *w) {
  jitem *spent = w->spent;
  w->spent = NULL;
  if (!w->mine) return spent;
  if (w->tail) w->tail->next = w->mine; else w->head = w->mine;
  w->tail = w->mine_tail;
  w->queued += w->mine_bytes;
  w->mine = w->mine_tail = NULL;
  w->mine_bytes = 0;
  pthread_cond_signal(&w->work);
  return spent;
}

long long sv_jwriter_put(sv_jwriter *w, const char *data, size_t len, int sync, double expect) {
  jitem *it = malloc(sizeof *it + len), *spent;
  if (!it) return 0;
  memcpy(it->data, data, len);
  it->next = NULL;
  it->len = len;
  it->sync = sync;
  it->expect = expect;
  it->ticket = ++w->last;
  if (!w->threaded) { write_batch(w, it); free_items(hand_over(w)); return w->last; }
  if (w->mine_tail) w->mine_tail->next = it; else w->mine = it;
  w->mine_tail = it;
  w->mine_bytes += len;
  if (w->mine_bytes >= SV_JW_QUEUED) { /* bounded: then it waits for room */
    pthread_mutex_lock(&w->mu);
    while (w->queued >= SV_JW_QUEUED) pthread_cond_wait(&w->moved, &w->mu);
  } else if (pthread_mutex_trylock(&w->mu) != 0) {
    return it->ticket; /* handed over at a later put or poll */
  }
  spent = hand_over(w);
  pthread_mutex_unlock(&w->mu);
  free_items(spent);
  return w->last;
}

long long sv_jwriter_poll(sv_jwriter *w, sv_jfail **fails, size_t *n) {
  jitem *spent;
  *fails = NULL;
  *n = 0;
  if (pthread_mutex_trylock(&w->mu) != 0) return w->seen; /* the thread has it: look again later */
  spent = hand_over(w);
  w->seen = w->done;
  *fails = (sv_jfail *)(void *)w->fails.data;
  *n = w->fails.len / sizeof **fails;
  memset(&w->fails, 0, sizeof w->fails);
  pthread_mutex_unlock(&w->mu);
  free_items(spent);
  return w->seen;
}

int sv_jwriter_wait(sv_jwriter *w, long long ticket, double seconds) {
  jitem *spent;
  struct timespec until;
  int done;
  int timed = seconds >= 0 && seconds <= 86400; /* (else, NaN and infinities too: for as long as it takes) */
  if (timed) { /* (the condition's clock: the monotonic one, sv_jwriter_new) */
    double s = sv_monotonic() + seconds;
    until.tv_sec = (time_t)s;
    until.tv_nsec = (long)((s - (double)until.tv_sec) * 1e9);
    if (until.tv_nsec < 0) until.tv_nsec = 0;
    if (until.tv_nsec > 999999999L) until.tv_nsec = 999999999L;
  }
  pthread_mutex_lock(&w->mu);
  spent = hand_over(w);
  while (w->done < ticket && w->threaded) {
    if (!timed) pthread_cond_wait(&w->moved, &w->mu);
    else if (pthread_cond_timedwait(&w->moved, &w->mu, &until) != 0) break; /* (timed out, or refused) */
  }
  done = w->done >= ticket || !w->threaded;
  pthread_mutex_unlock(&w->mu);
  free_items(spent);
  return done;
}

void sv_jwriter_free(sv_jwriter *w) {
  if (!w) return;
  if (w->threaded) { /* what is queued, written (the thread's end is never waited for) */
    jitem *spent;
    sv_jwriter_wait(w, w->last, -1);
    pthread_mutex_lock(&w->mu);
    spent = hand_over(w);
    pthread_mutex_unlock(&w->mu);
    free_items(spent);
  }
  sv_work_close(w->thread);
}
