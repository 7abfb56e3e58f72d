/* Files several processes share: the journal, and the leases of its owners.  A record reaches the file in one
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
#ifndef O_DIRECTORY
#define O_DIRECTORY 0
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

/* One record through fd (the journal at path, under its flock): after a crash
   mid-write the last line is torn, so it is ended first and this record starts
   a line of its own (read under the lock: no other writer is midway). */
static int write_record(int fd, const char *path, const char *rec, size_t len, int sync, sv_buf *why) {
  struct stat st;
  sv_buf out;
  size_t done = 0;
  int rc = 0;
  sv_buf_init(&out);
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
  rc = write_record(fd, path, rec, len, sync, why);
  flock(fd, LOCK_UN);
  if (close(fd) != 0 && !rc) rc = fail(why, "write", path, errno);
  return rc;
}

/* The journal under the appenders' flock, held until the descriptor is closed:
   read-only for a rewrite (create 0), or opened for appending (created when
   missing: create 1), so that one hold can read the file and then append to it
   (sv_file_append_held) with no other writer in between. */
int sv_file_lock(const char *path, int create, sv_buf *why) {
  return open_locked(path, create ? O_RDWR | O_APPEND | O_CREAT : O_RDONLY, why);
}

int sv_file_append_held(int lockfd, const char *path, const char *rec, size_t len, int sync, sv_buf *why) {
  return write_record(lockfd, path, rec, len, sync, why);
}

/* A lease on path: an exclusive flock taken without waiting, held until the
   descriptor is closed; the kernel drops it the moment its process dies.  With
   create, the file (and its folder, one level) is made when missing, and the
   process id written in it.  The
   descriptor; or SV_LOCK_BUSY (another descriptor holds it), SV_LOCK_MISSING
   (no file and no create), or -1 with why. */
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

/* tmp replaces path, under the lock taken by sv_file_lock (still held after). */
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

/* A download's .part, written through one descriptor from open to commit.

   sv_part_open: offset 0 starts a new file: the name is unlinked, then created
   with O_EXCL|O_NOFOLLOW, so nothing planted at the name (a symbolic link, a
   hard link to another file) is ever written through.  offset > 0 goes on
   from the .part there, which must be a regular file of one link at least
   offset bytes long; else *short_ is set (NULL returned, nothing touched) and
   the caller starts again from 0.  The bytes go out through a buffer of
   SV_PART_BUF; p->at counts the bytes accepted, p->base + p->written those that
   reached the file through this descriptor. */
#define SV_PART_BUF 65536

struct sv_part {
  int fd;
  double base;    /* bytes the file held, kept, when this descriptor began writing */
  double written; /* bytes that went through the descriptor since */
  size_t len;     /* buffered, not yet written */
  char *path;
  char buf[SV_PART_BUF];
};

static int part_fail(sv_buf *why, const char *path, int e) {
  sv_buf_addf(why, "cannot write %s: %s", path, e == ELOOP ? "it is a symbolic link" : strerror(e));
  return -1;
}

sv_part *sv_part_open(const char *path, double offset, int *short_, sv_buf *why) {
  sv_part *p;
  int fd;
  *short_ = 0;
  if (offset > 0) {
    struct stat st;
    fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && (errno == ENOENT || errno == ELOOP || errno == ENXIO)) { *short_ = 1; return NULL; }
    if (fd < 0) { part_fail(why, path, errno); return NULL; }
    if (fstat(fd, &st) != 0) { part_fail(why, path, errno); close(fd); return NULL; }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || (double)st.st_size < offset) {
      close(fd);
      *short_ = 1;
      return NULL;
    }
    if (fcntl(fd, F_SETFL, 0) != 0) { part_fail(why, path, errno); close(fd); return NULL; }
  } else {
    if (unlink(path) != 0 && errno != ENOENT) { part_fail(why, path, errno); return NULL; }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) { part_fail(why, path, errno); return NULL; }
    offset = 0;
  }
  p = malloc(sizeof *p);
  if (p) p->path = malloc(strlen(path) + 1);
  if (!p || !p->path) {
    free(p);
    close(fd);
    sv_buf_adds(why, "out of memory");
    return NULL;
  }
  strcpy(p->path, path);
  p->fd = fd;
  p->base = offset;
  p->written = 0;
  p->len = 0;
  return p;
}

static int part_put(sv_part *p, const char *data, size_t len, sv_buf *why) {
  size_t done = 0;
  while (done < len) {
    ssize_t w = pwrite(p->fd, data + done, len - done, (off_t)(p->base + p->written));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return part_fail(why, p->path, w < 0 ? errno : EIO);
    done += (size_t)w;
    p->written += (double)w;
  }
  return 0;
}

int sv_part_flush(sv_part *p, sv_buf *why) {
  size_t len = p->len;
  if (p->fd < 0) { sv_buf_adds(why, "the .part was closed"); return -1; }
  p->len = 0;
  return part_put(p, p->buf, len, why);
}

int sv_part_write(sv_part *p, const char *data, size_t len, sv_buf *why) {
  if (p->fd < 0) { sv_buf_adds(why, "the .part was closed"); return -1; }
  if (p->len + len > SV_PART_BUF && sv_part_flush(p, why) != 0) return -1;
  if (len >= SV_PART_BUF) return part_put(p, data, len, why);
  memcpy(p->buf + p->len, data, len);
  p->len += len;
  return 0;
}

double sv_part_at(const sv_part *p) { return p->base + p->written + (double)p->len; }

int sv_part_truncate(sv_part *p, double at, sv_buf *why) {
  if (sv_part_flush(p, why) != 0) return -1;
  if (at < 0 || at > p->base + p->written) {
    sv_buf_addf(why, "cannot write %s: byte %.0f is past its end", p->path, at);
    return -1;
  }
  if (ftruncate(p->fd, (off_t)at) != 0) return part_fail(why, p->path, errno);
  p->base = at;
  p->written = 0;
  return 0;
}

/* Whole chunks of a chunked body, s[*pos..len): each "<hex>\r\n<data>\r\n"
   with 1 to 8 hex digits and a size > 0, all there, is written and *pos moves
   past it.  Stops before the first that is not (the last chunk, one with an
   extension, one not all read yet, a bad one), which the caller reads the
   careful way.  The data bytes written, or -1 with why. */
double sv_part_chunks(sv_part *p, const char *s, size_t len, size_t *pos, sv_buf *why) {
  size_t i = *pos;
  double bytes = 0;
  while (i < len) {
    size_t j = i, n = 0, digits = 0;
    for (; j < len && digits < 9; j++, digits++) {
      char ch = s[j];
      int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
            : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
      if (v < 0) break;
      n = n * 16 + (size_t)v;
    }
    if (digits == 0 || digits > 8 || n == 0 || len - j < 2 || s[j] != '\r' || s[j + 1] != '\n') break;
    j += 2;
    if (len - j < n + 2 || s[j + n] != '\r' || s[j + n + 1] != '\n') break;
    if (sv_part_write(p, s + j, n, why) != 0) return -1;
    bytes += (double)n;
    i = j + n + 2;
  }
  *pos = i;
  return bytes;
}

int sv_part_fd(const sv_part *p) { return p->fd; }
const char *sv_part_path(const sv_part *p) { return p->path; }
double sv_part_size(const sv_part *p) { return p->base + p->written; }

int sv_part_close(sv_part *p, sv_buf *why) {
  int rc = 0;
  if (p->fd >= 0) {
    rc = sv_part_flush(p, why);
    if (close(p->fd) != 0 && rc == 0) rc = part_fail(why, p->path, errno);
    p->fd = -1;
  }
  return rc;
}

void sv_part_free(sv_part *p) {
  if (!p) return;
  if (p->fd >= 0) close(p->fd);
  free(p->path);
  free(p);
}

int sv_part_same(const sv_part *p) {
  struct stat mine, named;
  return p->len == 0 && fstat(p->fd, &mine) == 0 && lstat(p->path, &named) == 0 && mine.st_dev == named.st_dev &&
         mine.st_ino == named.st_ino && named.st_nlink == 1 && (double)mine.st_size == p->base + p->written;
}

int sv_sync_folder(const char *path, sv_buf *why) {
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 1;
  char *dir;
  int dfd;
  if (slash && n == 0) n = 1; /* "/name": the root */
  dir = malloc(n + 1);
  if (!dir) { sv_buf_adds(why, "out of memory"); return -1; }
  if (slash) memcpy(dir, path, n);
  else dir[0] = '.';
  dir[n] = '\0';
  dfd = open(dir, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
  /* some file systems cannot sync a folder (EINVAL): the file itself is safe */
  if (dfd < 0 || (fsync(dfd) != 0 && errno != EINVAL && errno != EROFS)) {
    sv_buf_addf(why, "cannot sync the folder %s: %s", dir, strerror(errno));
    if (dfd >= 0) close(dfd);
    free(dir);
    return -1;
  }
  close(dfd);
  free(dir);
  return 0;
}

/* The commit, on the descriptor the download wrote: fsync it; its size (fstat,
   the same descriptor) must be the bytes it was given; the name part must still
   be that file (stat vs fstat: nobody replaced it meanwhile); then rename to
   dest and fsync the folder so the rename reaches the disk too. */
int sv_part_commit(int fd, double size, const char *part, const char *dest, sv_buf *why) {
  struct stat mine, named;
  int gone;
  if (fsync(fd) != 0 || fstat(fd, &mine) != 0) return part_fail(why, part, errno);
  if ((double)mine.st_size != size) {
    sv_buf_addf(why, "cannot commit %s: it holds %.0f bytes where %.0f were written", part,
                (double)mine.st_size, size);
    return -1;
  }
  gone = lstat(part, &named) != 0;
  if (gone || named.st_dev != mine.st_dev || named.st_ino != mine.st_ino) {
    sv_buf_addf(why, "cannot commit %s: %s during the download", part,
                gone ? "it was removed" : "another file took its name");
    return -1;
  }
  if (rename(part, dest) != 0) {
    sv_buf_addf(why, "cannot rename %s into place: %s", part, strerror(errno));
    return -1;
  }
  return sv_sync_folder(dest, why);
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
