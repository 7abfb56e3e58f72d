/* Files several processes share: the journal.  A record reaches the file in one
   write() on an O_APPEND descriptor, under an exclusive flock that also covers
   the repair of a torn last line, so concurrent writers never interleave and a
   crash never glues two records together.  Transport-free, Lua-free. */
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
static int open_append(const char *path, sv_buf *why) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
  struct stat st;
  if (fd < 0) {
    if (errno == ENXIO) { sv_buf_addf(why, "cannot use the journal %s: it is not a regular file", path); return -1; }
    return fail(why, "open", path, errno);
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, O_APPEND) != 0) {
    int e = errno ? errno : EINVAL;
    close(fd);
    if (e == EINVAL) { sv_buf_addf(why, "cannot use the journal %s: it is not a regular file", path); return -1; }
    return fail(why, "open", path, e);
  }
  return fd;
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
  int fd = open_append(path, why), rc = 0;
  struct stat st;
  sv_buf out;
  size_t done = 0;
  if (fd < 0) return -1;
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) { int e = errno; close(fd); return fail(why, "lock", path, e); }
  }
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
