/* A download's .part and its commit: the one way both transports write a
   video to disk and give it its name.  The .part is written through one
   descriptor from its open to its commit (sv_part); the commit (fsync, the
   checks, rename, fsync of the folder: sv_part_commit) runs off the caller's
   thread, since the caller may be a game's frame loop, where a step has a few
   milliseconds: the end of a download takes a few hundred milliseconds for
   300 MB.  The libcurl transport writes its bytes a bounded step per poll
   (csrc/curl/body.c); the commit's helper thread (a work, work.c) commits them;
   callers poll (a mutex and a few loads) and never wait for the disk.  The
   helpers touch only their file and their own fields: no Lua, no libcurl. */
#include "sv_core.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif
#ifndef O_DIRECTORY
#define O_DIRECTORY 0
#endif

/* A download's .part (sv_core.h says what each function does): a new one is
   created with O_EXCL|O_NOFOLLOW after its name is unlinked, so nothing
   planted at the name (a symbolic link, a hard link to another file) is ever
   written through.  The bytes go out through a buffer of SV_PART_BUF. */
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
  p = malloc(sizeof *p + strlen(path) + 1);
  if (!p) {
    close(fd);
    sv_buf_adds(why, "out of memory");
    return NULL;
  }
  p->path = strcpy((char *)(p + 1), path); /* the name lives past the struct */
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
  free(p);
}

int sv_part_same(const sv_part *p) {
  struct stat mine, named;
  return p->len == 0 && fstat(p->fd, &mine) == 0 && lstat(p->path, &named) == 0 && mine.st_dev == named.st_dev &&
         mine.st_ino == named.st_ino && named.st_nlink == 1 && (double)mine.st_size == p->base + p->written;
}

int sv_sync_folder(const char *path, sv_buf *why) {
  const char *slash = strrchr(path, '/');
  /* the folder: "." for a bare name, "/" for "/name" */
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  int dfd;
  if (!dir) { sv_buf_adds(why, "out of memory"); return -1; }
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

/* The mark (m) appended to the file rfd reads and wfd writes (size bytes: a sequence of top-level boxes, open_end
   1 when its last runs to the end, < 0 when not walked yet): its box written at size, so that it is the file's last
   top-level box and the bytes before it stay as they were; m->marked, else m->why. */
static void mark_append(int rfd, int wfd, double size, int open_end, sv_mark *m) {
  sv_buf why = {0};
  double seconds;
  size_t done = 0;
  m->marked = 0;
  if (open_end < 0 && sv_mp4_check_fd(rfd, -1, &seconds, &open_end, &why) < 0) {
    snprintf(m->why, sizeof m->why, "it is not a sequence of MP4 boxes: %s", sv_buf_cstr(&why));
    sv_buf_free(&why);
    return;
  }
  sv_buf_free(&why);
  if (open_end) {
    snprintf(m->why, sizeof m->why, "its last box runs to the end of the file (a size of 0): a box after it "
             "would be read as its bytes");
    return;
  }
  while (done < m->len) {
    ssize_t w = pwrite(wfd, m->box + done, m->len - done, (off_t)(size + (double)done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      snprintf(m->why, sizeof m->why, "its box could not be written: %s", strerror(w < 0 ? errno : EIO));
      if (ftruncate(wfd, (off_t)size) != 0) snprintf(m->why, sizeof m->why, "cannot cut it back: %s", strerror(errno));
      return;
    }
    done += (size_t)w;
  }
  m->marked = 1;
}

/* The .part at path read through a descriptor of its own (the .part's, wfd, is
   write-only) that must be the file written: checked to be a whole MP4 (mp4, when
   not NULL: sv_mp4_check_fd, its box headers and moov read by pread), marked (mark,
   when not NULL: its box appended, mark_append), then hashed (h, when not NULL)
   into hex, the one read of its bytes, the mark's with them: 0, -1 with why, or -2
   with the check's words. */
static int part_read(int wfd, const char *path, const sv_hasher *h, const double *mp4, sv_mark *mark, char *hex,
                     sv_buf *why) {
  struct stat mine, named;
  double seconds;
  int rc, open_end = -1, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return part_fail(why, path, errno);
  if (fstat(fd, &named) != 0 || fstat(wfd, &mine) != 0) {
    rc = part_fail(why, path, errno);
  } else if (named.st_dev != mine.st_dev || named.st_ino != mine.st_ino) {
    sv_buf_addf(why, "cannot commit %s: another file took its name during the download", path);
    rc = -1;
  } else if (mp4 && sv_mp4_check_fd(fd, *mp4, &seconds, &open_end, why) < 0) {
    rc = -2;
  } else {
    if (mark) mark_append(fd, wfd, (double)named.st_size, open_end, mark);
    rc = h ? h->fn(fd, hex, why) : 0;
  }
  close(fd);
  return rc;
}

int sv_mark_file(const char *path, sv_mark *m, sv_buf *why) {
  struct stat st;
  int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return part_fail(why, path, errno);
  if (fstat(fd, &st) != 0) {
    part_fail(why, path, errno);
    close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    sv_buf_addf(why, "cannot mark %s: not a regular file", path);
    close(fd);
    return -1;
  }
  mark_append(fd, fd, (double)st.st_size, -1, m); /* (not synced: the caller's rename or upload follows) */
  close(fd);
  return 0;
}

typedef struct read_job {
  int wfd;
  const char *path;
  const sv_hasher *h;
  const double *mp4;
  sv_mark *mark;
  char *hex;
  sv_buf why;
  int rc;
} read_job;

static void *read_thread(void *arg) {
  read_job *j = arg;
  j->rc = part_read(j->wfd, j->path, j->h, j->mp4, j->mark, j->hex, &j->why);
  return NULL;
}

/* The read (from the page cache: CPU) on a thread of its own while this one
   waits for the disk (the fsync sv_part_commit then finds done): the commit takes
   the longer of the two, not both.  Without a second thread, one after the other. */
static int read_beside_fsync(int wfd, const char *path, const sv_hasher *h, const double *mp4, sv_mark *mark,
                             char *hex, sv_buf *why) {
  read_job j;
  pthread_t t;
  memset(&j, 0, sizeof j);
  j.wfd = wfd, j.path = path, j.h = h, j.mp4 = mp4, j.mark = mark, j.hex = hex;
  if (sv_helper_start(&t, read_thread, &j) != 0) return part_read(wfd, path, h, mp4, mark, hex, why);
  (void)fsync(wfd); /* its error, if any, is the commit's fsync's to say */
  pthread_join(t, NULL);
  if (j.rc != 0) sv_buf_adds(why, sv_buf_cstr(&j.why));
  sv_buf_free(&j.why);
  return j.rc;
}

/* The commit, on the descriptor the download wrote: checked first (mp4), marked
   (mark) and hashed (hash), when not NULL; fsync it; its size (fstat, the same descriptor) must be the bytes it
   was given (and the mark's); the name part must still be that file (stat vs fstat: nobody
   replaced it meanwhile); then rename to dest and fsync the folder so the rename
   reaches the disk too. */
int sv_part_commit(int fd, double size, const char *part, const char *dest, const sv_hasher *hash, const double *mp4,
                   sv_mark *mark, char *hex, sv_buf *why) {
  struct stat mine, named;
  int gone, rc;
  if ((hash || mp4 || mark) && (rc = read_beside_fsync(fd, part, hash, mp4, mark, hex, why)) != 0) return rc;
  if (mark && mark->marked) size += (double)mark->len;
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

/* A commit's work (sv_commit_start): its data, the .part the thread frees, and what it found. */
typedef struct commit_job {
  sv_part *part; /* the thread's until done: it frees it */
  const sv_hasher *hash;
  int has_mp4, has_mark, rc;
  double mp4; /* with has_mp4: the seconds of the whole MP4 expected (< 0: any) */
  sv_mark mark; /* with has_mark: its box (its bytes after dest's), what came of it */
  char why[512];
  char hex[SV_HASH_HEX];
  char dest[];
} commit_job;

static void commit_run(sv_work *w, void *data) {
  commit_job *c = data;
  sv_buf why = {0};
  (void)w;
  c->rc = sv_part_flush(c->part, &why);
  if (c->rc == 0)
    c->rc = sv_part_commit(sv_part_fd(c->part), sv_part_size(c->part), sv_part_path(c->part), c->dest, c->hash,
                           c->has_mp4 ? &c->mp4 : NULL, c->has_mark ? &c->mark : NULL, c->hex, &why);
  sv_part_free(c->part);
  c->part = NULL;
  snprintf(c->why, sizeof c->why, "%s", sv_buf_cstr(&why));
  sv_buf_free(&why);
}

static const sv_work_kind commit_kind = { commit_run, NULL, NULL };

sv_work *sv_commit_start(sv_part *p, const char *dest, const sv_hasher *hash, const double *mp4, const sv_mark *mark,
                         char *why, size_t whylen) {
  size_t destlen = strlen(dest) + 1;
  sv_work *w = sv_work_new(&commit_kind, sizeof(commit_job) + destlen + (mark ? mark->len : 0));
  commit_job *c;
  if (!w) {
    sv_part_free(p);
    snprintf(why, whylen, "out of memory");
    return NULL;
  }
  c = sv_work_data(w);
  strcpy(c->dest, dest);
  c->part = p;
  c->hash = hash;
  c->has_mp4 = mp4 != NULL;
  c->mp4 = mp4 ? *mp4 : -1;
  c->has_mark = mark != NULL;
  if (mark) { /* (its bytes kept past dest's: the caller's may go) */
    memcpy(c->dest + destlen, mark->box, mark->len);
    c->mark.box = c->dest + destlen, c->mark.len = mark->len;
  }
  sv_work_start(w, 1); /* (no thread to be had: done here) */
  return w;
}

int sv_commit_result(sv_work *w, const char **why, const char **hex, const sv_mark **mark) {
  commit_job *c = sv_work_data(w);
  if (why) *why = c->why;
  if (hex) *hex = c->hex;
  if (mark) *mark = c->has_mark ? &c->mark : NULL;
  return c->rc == 0 || c->rc == -2 ? c->rc : -1;
}

sv_part *sv_part_resume(sv_part *left, const char *path, double *offset, sv_buf *why) {
  sv_part *p = NULL;
  int short_ = 0, restart = left != NULL || *offset <= 0;
  if (left && *offset > 0 && *offset <= sv_part_at(left) && sv_part_same(left) &&
      sv_part_truncate(left, *offset, why) == 0)
    p = left, left = NULL;
  else if (!left && *offset > 0 && !(p = sv_part_open(path, *offset, &short_, why)))
    restart = short_;
  sv_part_free(left); /* (replaced, cut or linked since the attempt that left it) */
  if (!p && restart) {
    *offset = 0;
    why->len = 0;
    p = sv_part_open(path, 0, &short_, why);
  }
  return p;
}
