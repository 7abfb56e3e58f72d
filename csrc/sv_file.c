/* Files several processes share: the journal.  A record reaches the file in one
   write() on an O_APPEND descriptor, under an exclusive flock that also covers
   the repair of a torn last line, so concurrent writers never interleave and a
   crash never glues two records together.  A compaction writes a new file and
   renames it over the journal under the old file's flock; an appender checks,
   once it holds the lock, that its descriptor is still the file at the path.
   Transport-free, Lua-free. */
#include "sv_core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
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
  int fd = open(path, flags | O_CLOEXEC | O_NONBLOCK, 0644);
  struct stat st;
  if (fd < 0) {
    if (errno == ENXIO) { sv_buf_addf(why, "cannot use the journal %s: it is not a regular file", path); return -1; }
    return fail(why, "open", path, errno);
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, flags & O_APPEND) != 0) {
    int e = errno ? errno : EINVAL;
    close(fd);
    if (e == EINVAL) { sv_buf_addf(why, "cannot use the journal %s: it is not a regular file", path); return -1; }
    return fail(why, "open", path, e);
  }
  return fd;
}

static int open_append(const char *path, sv_buf *why) {
  return open_checked(path, O_WRONLY | O_APPEND | O_CREAT, why);
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
  int fd = open_append(path, why);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

int sv_file_append(const char *path, const char *rec, size_t len, int sync, sv_buf *why) {
  int fd = open_locked(path, O_WRONLY | O_APPEND | O_CREAT, why), rc = 0;
  struct stat st;
  sv_buf out;
  size_t done = 0;
  if (fd < 0) return -1;
  sv_buf_init(&out);
  /* after a crash mid-write the last line is torn: end it first, so this record
     starts a line of its own (read under the lock: no other writer is midway) */
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
  flock(fd, LOCK_UN);
  if (close(fd) != 0 && !rc) rc = fail(why, "write", path, errno);
  return rc;
}

int sv_file_lock(const char *path, sv_buf *why) {
  return open_locked(path, O_RDONLY, why);
}

/* tmp replaces path, under the lock taken by sv_file_lock (still held after). */
int sv_file_replace(int lockfd, const char *tmp, const char *path, sv_buf *why) {
  struct stat lst, pst, tst;
  int fd, dfd, e = 0;
  char *dir, *slash;
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
  /* the rename itself must survive a crash: sync the folder */
  dir = strdup(path);
  if (!dir) { sv_buf_adds(why, "out of memory compacting the journal"); return -1; }
  slash = strrchr(dir, '/');
  if (!slash) strcpy(dir, ".");
  else if (slash == dir) dir[1] = '\0';
  else *slash = '\0';
  dfd = open(dir, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
  free(dir);
  if (dfd >= 0) {
    if (fsync(dfd) != 0 && errno != EINVAL) e = errno;
    close(dfd);
  }
  if (e) return fail(why, "compact", path, e);
  return 0;
}

int sv_file_write_at(const char *path, double at, const char *data, size_t len, int truncate, sv_buf *why) {
  int fd, e = 0;
  size_t done = 0;
  off_t pos = (off_t)(at > 0 ? at : 0);
  /* never through a symlink: a planted .part must not redirect our writes */
  fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    sv_buf_addf(why, "cannot write %s: %s", path, errno == ELOOP ? "it is a symbolic link" : strerror(errno));
    return -1;
  }
  if (truncate && ftruncate(fd, pos) != 0) e = errno;
  while (!e && done < len) {
    ssize_t w = pwrite(fd, data + done, len - done, pos + (off_t)done);
    if (w < 0 && errno != EINTR) e = errno;
    else if (w > 0) done += (size_t)w;
  }
  if (close(fd) != 0 && !e) e = errno;
  if (e) { sv_buf_addf(why, "cannot write the file: %s", strerror(e)); return -1; }
  return 0;
}

/* FNV-1a, 64 bits, as 16 hex digits: a stable short name for a prompt. */
void sv_hash_hex(const char *s, size_t len, char out[17]) {
  unsigned long long h = 14695981039346656037ULL;
  size_t i;
  for (i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ULL;
  }
  snprintf(out, 17, "%016llx", h);
}

/* 16 random hex digits for a record that must be told apart from every other
   process's: the kernel's randomness, else the clock and the process id. */
void sv_random_hex(char out[17]) {
  unsigned char b[8];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC), i, ok = 0;
  if (fd >= 0) {
    ok = read(fd, b, sizeof b) == (ssize_t)sizeof b;
    close(fd);
  }
  if (!ok) {
    struct timespec ts;
    unsigned long long v;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = ((unsigned long long)ts.tv_sec * 1000000007ULL) ^ (unsigned long long)ts.tv_nsec ^
        ((unsigned long long)getpid() << 40);
    for (i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (i * 8));
  }
  for (i = 0; i < 8; i++) snprintf(out + i * 2, 3, "%02x", b[i]);
}
