/* A check of a video's bytes as they pass, in order (on libcrypto:
   starvideos.sign only, and the rocks that stream a video out): the whole
   video's SHA-256 and the whole-MP4 check (media.c's sv_mp4s).  Its state is
   text a ledger records, from which a later process goes on: the SHA-256's
   middle state (eight words and a length, at a multiple of 64 bytes, when
   nothing waits in its block), and the MP4 check's.  libcrypto has no call
   that gives EVP's middle state, so the whole video's SHA-256 uses its
   SHA256_CTX functions, deprecated since OpenSSL 3.0 but still there: still
   libcrypto's hash, not our own. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "sv_core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

struct sv_stream {
  SHA256_CTX whole;
  double at;       /* the bytes hashed: those fed past `from` */
  double expected; /* the seconds of the video, < 0: any */
  sv_mp4s mp4;
};

/* The SHA-256 middle state "at h0 h1 ... h7" (at: the bytes hashed, a multiple of 64). */
static int whole_load(sv_stream *s, const char *text) {
  unsigned long h[8];
  double at;
  int i;
  if (sscanf(text, "%lf %lx %lx %lx %lx %lx %lx %lx %lx", &at, &h[0], &h[1], &h[2], &h[3], &h[4], &h[5], &h[6],
             &h[7]) != 9 || at < 0 || at > 1e15 || (unsigned long long)at % 64 != 0)
    return -1;
  SHA256_Init(&s->whole);
  for (i = 0; i < 8; i++) s->whole.h[i] = (SHA_LONG)h[i];
  s->whole.Nl = (SHA_LONG)(((unsigned long long)at * 8) & 0xffffffffu);
  s->whole.Nh = (SHA_LONG)(((unsigned long long)at * 8) >> 32);
  s->at = at;
  return 0;
}

sv_stream *sv_stream_new(double expected, const char *saved, sv_buf *why) {
  sv_stream *s = calloc(1, sizeof *s);
  const char *bar = saved ? strchr(saved, '|') : NULL;
  if (!s) { sv_buf_adds(why, "out of memory"); return NULL; }
  s->expected = expected;
  sv_mp4s_init(&s->mp4);
  if (SHA256_Init(&s->whole) != 1) {
    sv_buf_adds(why, "libcrypto failed to start a digest");
    sv_stream_free(s);
    return NULL;
  }
  if (saved && (!bar || whole_load(s, saved) < 0 || sv_mp4s_load(&s->mp4, bar + 1) < 0 || s->mp4.at > s->at)) {
    sv_buf_adds(why, "the upload's recorded state cannot be read");
    sv_stream_free(s);
    return NULL;
  }
  return s;
}

void sv_stream_free(sv_stream *s) {
  if (!s) return;
  sv_mp4s_free(&s->mp4);
  free(s);
}

double sv_stream_from(const sv_stream *s) { return s->mp4.at; }
double sv_stream_at(const sv_stream *s) { return s->at; }

int sv_stream_feed(sv_stream *s, const char *p, size_t n, sv_buf *why) {
  double check_only = s->at - s->mp4.at; /* a resume's bytes before `at`: checked, hashed already */
  size_t skip = check_only <= 0 ? 0 : check_only < (double)n ? (size_t)check_only : n;
  if (sv_mp4s_feed(&s->mp4, (const unsigned char *)p, n, why) < 0) return -1;
  p += skip, n -= skip;
  if (n == 0) return 0;
  if (SHA256_Update(&s->whole, p, n) != 1) {
    sv_buf_adds(why, "libcrypto failed to hash");
    return -1;
  }
  s->at += (double)n;
  return 0;
}

int sv_stream_markable(const sv_stream *s, sv_buf *why) {
  if (s->mp4.next >= HUGE_VAL) {
    sv_buf_adds(why, "its last box runs to the end of the file (a size of 0): a box after it would be read as its bytes");
    return -1;
  }
  if (s->mp4.next != s->mp4.at || s->mp4.at != s->at) {
    sv_buf_adds(why, "its bytes end inside a box");
    return -1;
  }
  return 0;
}

int sv_stream_save(const sv_stream *s, sv_buf *out) {
  int i;
  if ((unsigned long long)s->at % 64 != 0 || s->whole.num != 0) return -1;
  sv_buf_addf(out, "%.0f", s->at);
  for (i = 0; i < 8; i++) sv_buf_addf(out, " %08lx", (unsigned long)s->whole.h[i]);
  sv_buf_adds(out, "|");
  sv_mp4s_save(&s->mp4, out);
  return out->oom ? -1 : 0;
}

int sv_stream_end(sv_stream *s, char hex[SV_SHA256_HEX + 1], sv_buf *why) {
  unsigned char md[32];
  SHA256_CTX copy = s->whole; /* (the stream may still be asked for its state) */
  if (sv_mp4s_end(&s->mp4, s->expected, why) < 0) return -2;
  if (SHA256_Final(md, &copy) != 1) {
    sv_buf_adds(why, "libcrypto failed to hash");
    return -1;
  }
  sv_hex(md, 32, hex);
  return 0;
}
