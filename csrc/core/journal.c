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
  if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, flags & O_APPEND) != 0)) {
    e = errno && errno != EINVAL ? errno : -1; /* -1: not a regular file */
    close(fd);
  }
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

const char *sv_file_kind(const char *path, int *err) {
  struct stat st;
  if (lstat(path, &st) != 0) { *err = errno; return NULL; }
  *err = 0;
  if (S_ISREG(st.st_mode)) return "file";
  if (S_ISDIR(st.st_mode)) return "folder";
  if (S_ISLNK(st.st_mode)) return "link";
  return "other";
}

int sv_file_writable(const char *path, sv_buf *why) {
  int fd = open_checked(path, O_WRONLY | O_APPEND | O_CREAT, why);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

/* One record through fd (the journal at path, under its flock): after a crash
   mid-write the last line is torn, so it is ended first and this record starts
   a line of its own (read under the lock: no other writer is midway). */
int sv_file_append_held(int fd, const char *path, const char *rec, size_t len, int sync, sv_buf *why) {
  struct stat st;
  sv_buf out = {0};
  size_t done = 0;
  int rc = 0;
  if (fstat(fd, &st) == 0 && st.st_size > 0) {
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
  sv_buf_free(&out);
  return rc;
}

int sv_file_append(const char *path, const char *rec, size_t len, int sync, sv_buf *why) {
  int fd = open_locked(path, O_WRONLY | O_APPEND | O_CREAT, why), rc;
  if (fd < 0) return -1;
  rc = sv_file_append_held(fd, path, rec, len, sync, why);
  flock(fd, LOCK_UN);
  if (close(fd) != 0 && !rc) rc = fail(why, "write", path, errno);
  return rc;
}

/* (one hold can read the file and then append to it: no other writer in between) */
int sv_file_lock(const char *path, int create, sv_buf *why) {
  return open_locked(path, create ? O_RDWR | O_APPEND | O_CREAT : O_RDONLY, why);
}

int sv_file_try_lock(const char *path, int create, sv_buf *why) {
  int fd, tries;
  for (tries = 0; tries < 2; tries++) {
    /* a look at another's lease needs no write access: flock takes a read-only descriptor */
    fd = open(path, (create ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd >= 0 || errno != ENOENT) break;
    if (!create) return SV_LOCK_MISSING;
    if (tries == 0) { /* the folder first */
      char *dir = strdup(path), *slash;
      int made;
      if (!dir) { sv_buf_adds(why, "out of memory"); return -1; }
      slash = strrchr(dir, '/');
      made = slash && slash != dir && (*slash = '\0', mkdir(dir, 0755) == 0 || errno == EEXIST);
      free(dir);
      if (!made) break;
    }
  }
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
  if (fstat(fd, &tst) != 0 || !S_ISREG(tst.st_mode)) e = errno ? errno : EINVAL;
  else if (fchmod(fd, lst.st_mode & 07777) != 0 || fsync(fd) != 0) e = errno;
  close(fd);
  if (!e && rename(tmp, path) != 0) e = errno;
  if (e) return fail(why, "compact", path, e);
  return sv_sync_folder(path, why); /* the rename itself must survive a crash */
}
