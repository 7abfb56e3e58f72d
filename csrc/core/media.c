/* Media files read from their first bytes (and a tail when needed): the type,
   an image's width and height, a video's duration and frame size, an audio's
   duration; and the check that a downloaded MP4 is whole.  Every read is
   checked against the bytes given, and every loop moves forward through them. */
#include "sv_core.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

#define OGG_TAIL 65536.0
#define MOOV_READ (1024 * 1024) /* the bytes of a moov a whole-MP4 check reads (mvhd comes first) */
/* what the whole-MP4 check says (a stream's, and a file's fed to it) */
#define NO_FTYP "not an MP4: it does not begin with an ftyp box but with "
#define HEADER_PAST_END "the box header at byte %.0f runs past the end (%.0f bytes)"
#define BOX_PAST_END "box '%s' at byte %.0f runs past the end (%.0f bytes of a file of %.0f)"
#define DEPTH_MAX 8

static double be(const unsigned char *p, int n) {
  double v = 0;
  int i;
  for (i = 0; i < n; i++) v = v * 256 + p[i];
  return v;
}

static double le(const unsigned char *p, int n) {
  double v = 0;
  while (n--) v = v * 256 + p[n];
  return v;
}

static int all_ones(const unsigned char *p, int n) {
  while (n--)
    if (p[n] != 0xff) return 0;
  return 1;
}

void sv_media_init(sv_media *m) {
  memset(m, 0, sizeof *m);
  m->size = m->duration = m->tail = -1;
}

const char *sv_media_kind_name(sv_media_kind k) {
  static const char *const names[] = { "unknown", "image", "video", "audio", "text" };
  return names[k <= SV_MEDIA_TEXT ? k : 0];
}

static void set(sv_media *m, sv_media_kind kind, const char *type) {
  m->kind = kind;
  m->type = type;
}

/* ------------------------------------------------------------------ boxes */

/* An ISO-BMFF box header at p[0, avail), room the bytes left in its container
   (from p): 0 with *b (size 0 means "to the end": room), -1 with why (size
   below its header, or 8/16 header bytes not there: why empty). */
typedef struct sv_box {
  char type[5];
  double size; /* the box's bytes, header included */
  unsigned hdr; /* 8, or 16 with a 64-bit size */
} sv_box;
static int box_read(const unsigned char *p, size_t avail, double room, sv_box *b, sv_buf *why) {
  int i;
  if (avail < 8) return -1;
  for (i = 0; i < 4; i++) b->type[i] = p[4 + i] >= 0x20 && p[4 + i] < 0x7f ? (char)p[4 + i] : '?';
  b->type[4] = '\0';
  b->size = be(p, 4);
  b->hdr = 8;
  if (b->size == 1) {
    if (avail < 16) return -1;
    b->size = be(p + 8, 8);
    b->hdr = 16;
  } else if (b->size == 0) {
    b->size = room;
  }
  if (b->size < b->hdr) {
    if (why) sv_buf_addf(why, "box '%s' has a size of %.0f bytes, less than its header", b->type, b->size);
    return -1;
  }
  return 0;
}

static void mvhd(const unsigned char *q, size_t n, sv_media *m) {
  int v1 = n > 0 && q[0] == 1, dlen = v1 ? 8 : 4;
  size_t at = v1 ? 20 : 12; /* the timescale, after version, flags and two times */
  double scale, d;
  if (n < at + 4 + dlen) return;
  scale = be(q + at, 4);
  d = be(q + at + 4, dlen);
  if (scale > 0 && d > 0 && !all_ones(q + at + 4, dlen)) m->duration = d / scale;
}

/* tkhd: width and height (16.16) after the matrix; the first track with both */
static void tkhd(const unsigned char *q, size_t n, sv_media *m) {
  size_t at = n > 0 && q[0] == 1 ? 88 : 76;
  if (n < at + 8 || m->width > 0) return;
  if (be(q + at, 2) > 0 && be(q + at + 4, 2) > 0) {
    m->width = be(q + at, 2);
    m->height = be(q + at + 4, 2);
  }
}

/* stsd: the first sample entry; a visual one has width and height at 32 */
static void stsd(const unsigned char *q, size_t n, sv_media *m) {
  static const char visual[] = "avc1avc3hvc1hev1mp4vvp08vp09av01dvh1dvhe";
  size_t i;
  if (n < 8 + 36 || m->width > 0) return;
  for (i = 0; i + 4 < sizeof visual; i += 4)
    if (memcmp(q + 12, visual + i, 4) == 0) {
      m->width = be(q + 8 + 32, 2);
      m->height = be(q + 8 + 34, 2);
    }
}

/* The bytes of b's body that p[0, avail) holds (avail: from the box's start). */
static size_t body(const sv_box *b, size_t avail) {
  return b->size - b->hdr < (double)(avail - b->hdr) ? (size_t)(b->size - b->hdr) : avail - b->hdr;
}

/* The boxes of p[0, n) (a moov's body, maybe cut short), into the ones we read. */
static void walk(const unsigned char *p, size_t n, sv_media *m, int depth) {
  static const char *const containers[] = { "trak", "mdia", "minf", "stbl", NULL };
  size_t off = 0, have;
  sv_box b;
  int i;
  while (box_read(p + off, n - off, (double)(n - off), &b, NULL) == 0) {
    const unsigned char *q = p + off + b.hdr;
    have = body(&b, n - off);
    if (strcmp(b.type, "mvhd") == 0) mvhd(q, have, m);
    else if (strcmp(b.type, "tkhd") == 0) tkhd(q, have, m);
    else if (strcmp(b.type, "stsd") == 0) stsd(q, have, m);
    for (i = 0; containers[i] && depth < DEPTH_MAX; i++)
      if (strcmp(b.type, containers[i]) == 0) walk(q, have, m, depth + 1);
    if (b.size >= n - off) return;
    off += (size_t)b.size;
  }
}

/* The top-level boxes of p[0, n), read at the file's byte base.  The moov is read
   when it is whole here, or when last (the caller reads no more); else m->tail is
   where to read on from.  0, or -1 with why (a box smaller than its header). */
static int top(const unsigned char *p, size_t n, double base, int last, sv_media *m, sv_buf *why) {
  size_t off = 0;
  sv_box b;
  m->tail = -1;
  for (;;) {
    double room = m->size >= 0 ? m->size - base - (double)off : HUGE_VAL;
    if (room <= 0) return 0; /* the end of the file, and no moov */
    if (box_read(p + off, n - off, room, &b, why) < 0) {
      if (why->len) {
        sv_buf_addf(why, " at byte %.0f", base + (double)off);
        return -1;
      }
      /* a header cut short: read on from it, if the file goes on past these bytes
         and these are not already from there */
      if (room > (double)(n - off) && !(last && off == 0)) m->tail = base + (double)off;
      return 0;
    }
    if (strcmp(b.type, "moov") == 0) {
      if (b.size <= (double)(n - off) || last) walk(p + off + b.hdr, body(&b, n - off), m, 0);
      else m->tail = base + (double)off;
      return 0;
    }
    if (b.size >= (double)(n - off)) {
      if (b.size < room) m->tail = base + (double)off + b.size;
      return 0;
    }
    off += (size_t)b.size;
  }
}

static int mp4(const unsigned char *p, size_t n, sv_media *m, sv_buf *why) {
  if (memcmp(p + 8, "qt  ", 4) == 0) set(m, SV_MEDIA_VIDEO, "mov");
  else if (memcmp(p + 8, "M4A ", 4) == 0 || memcmp(p + 8, "M4B ", 4) == 0) set(m, SV_MEDIA_AUDIO, "m4a");
  else set(m, SV_MEDIA_VIDEO, "mp4");
  return top(p, n, 0, 0, m, why);
}

/* ----------------------------------------------------------------- images */

static void jpeg(const unsigned char *p, size_t n, sv_media *m) {
  size_t off = 2;
  set(m, SV_MEDIA_IMAGE, "jpeg");
  while (off + 4 <= n && p[off] == 0xff) {
    unsigned c = p[off + 1];
    double len;
    if (c == 0xff) { /* a fill byte */
      off++;
      continue;
    }
    if (c == 0x01 || (c >= 0xd0 && c <= 0xd8)) { /* markers without a length */
      off += 2;
      continue;
    }
    if (c == 0xd9 || c == 0xda) return; /* the image ends, or its data begins */
    len = be(p + off + 2, 2);
    if (len < 2) return;
    if (c >= 0xc0 && c <= 0xcf && c != 0xc4 && c != 0xc8 && c != 0xcc) { /* a frame header */
      if (off + 9 <= n) {
        m->height = be(p + off + 5, 2);
        m->width = be(p + off + 7, 2);
      }
      return;
    }
    off += 2 + (size_t)len;
  }
}

static void webp(const unsigned char *p, size_t n, sv_media *m) {
  set(m, SV_MEDIA_IMAGE, "webp");
  if (n >= 30 && memcmp(p + 12, "VP8 ", 4) == 0 && memcmp(p + 23, "\x9d\x01\x2a", 3) == 0) {
    m->width = (double)((unsigned)le(p + 26, 2) & 0x3fff);
    m->height = (double)((unsigned)le(p + 28, 2) & 0x3fff);
  } else if (n >= 25 && memcmp(p + 12, "VP8L", 4) == 0 && p[20] == 0x2f) {
    unsigned long b = (unsigned long)le(p + 21, 4);
    m->width = (double)(b & 0x3fff) + 1;
    m->height = (double)((b >> 14) & 0x3fff) + 1;
  } else if (n >= 30 && memcmp(p + 12, "VP8X", 4) == 0) {
    m->width = le(p + 24, 3) + 1;
    m->height = le(p + 27, 3) + 1;
  }
}

/* ------------------------------------------------------------------ audio */

/* WAV: the data chunk's size over the fmt chunk's byte rate */
static void wav(const unsigned char *p, size_t n, sv_media *m) {
  size_t off = 12;
  double rate = 0;
  set(m, SV_MEDIA_AUDIO, "wav");
  while (n - off >= 8) {
    double size = le(p + off + 4, 4), step = 8 + size + ((unsigned long)size & 1);
    if (memcmp(p + off, "fmt ", 4) == 0 && size >= 16 && n - off >= 24) rate = le(p + off + 16, 4);
    if (memcmp(p + off, "data", 4) == 0) {
      double at = (double)off + 8;
      if (m->size >= 0 && (size == 0 || size == 4294967295.0 || at + size > m->size)) size = m->size - at;
      if (rate > 0 && size >= 0) m->duration = size / rate;
      return;
    }
    if (step > (double)(n - off)) return;
    off += (size_t)step;
  }
}

typedef struct frame { double rate, samples, bitrate; size_t side; } frame;

/* An MPEG audio Layer III frame header at h[0, 4): 0, or -1 when it is not one. */
static int mp3_frame(const unsigned char *h, frame *f) {
  static const short kbps1[] = { 0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320 };
  static const short kbps2[] = { 0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160 };
  static const double rates[] = { 44100, 48000, 32000 };
  int ver = (h[1] >> 3) & 3, layer = (h[1] >> 1) & 3, bi = h[2] >> 4, ri = (h[2] >> 2) & 3, mono = (h[3] >> 6) == 3;
  if (h[0] != 0xff || (h[1] & 0xe0) != 0xe0 || ver == 1 || layer != 1 || bi == 0 || bi == 15 || ri == 3) return -1;
  f->rate = rates[ri] / (ver == 3 ? 1 : ver == 2 ? 2 : 4);
  f->samples = ver == 3 ? 1152 : 576;
  f->bitrate = (ver == 3 ? kbps1 : kbps2)[bi] * 1000.0;
  f->side = ver == 3 ? (mono ? 17 : 32) : (mono ? 9 : 17);
  return 0;
}

/* MP3 (or ADTS AAC) after an ID3v2 tag: the frame count of a Xing/Info or VBRI
   header, else a constant bit rate over the bytes after the tag.  0 when it is
   one, -1 when it is not. */
static int mpeg_audio(const unsigned char *p, size_t n, sv_media *m) {
  size_t at = 0, x;
  int id3 = n >= 10 && memcmp(p, "ID3", 3) == 0;
  frame f;
  if (id3) {
    at = 10 + (size_t)((p[6] & 0x7f) << 21 | (p[7] & 0x7f) << 14 | (p[8] & 0x7f) << 7 | (p[9] & 0x7f));
    if (p[5] & 0x10) at += 10;
    while (at < n && p[at] == 0) at++;
  }
  if (at > n || n - at < 4) {
    if (!id3) return -1;
    set(m, SV_MEDIA_AUDIO, "mp3"); /* the frames lie past the head */
    return 0;
  }
  if (p[at] == 0xff && (p[at + 1] & 0xf6) == 0xf0) {
    set(m, SV_MEDIA_AUDIO, "aac");
    return 0;
  }
  if (mp3_frame(p + at, &f) < 0) return -1;
  set(m, SV_MEDIA_AUDIO, "mp3");
  x = at + 4 + f.side;
  if (n - at >= 4 + f.side + 12 && (memcmp(p + x, "Xing", 4) == 0 || memcmp(p + x, "Info", 4) == 0)) {
    if (p[x + 7] & 1) m->duration = be(p + x + 8, 4) * f.samples / f.rate;
  } else if (n - at >= 36 + 18 && memcmp(p + at + 36, "VBRI", 4) == 0) {
    m->duration = be(p + at + 36 + 14, 4) * f.samples / f.rate;
  } else if (m->size >= (double)at) {
    m->duration = (m->size - (double)at) * 8 / f.bitrate;
  }
  return 0;
}

/* OGG: the granule position of the last page in p[0, n) over the stream's rate */
static void ogg_last(const unsigned char *p, size_t n, sv_media *m) {
  size_t i = n;
  m->tail = -1;
  if (m->rate <= 0 || n < 27) return;
  for (i = n - 27 + 1; i-- > 0;) {
    if (memcmp(p + i, "OggS", 4) != 0 || p[i + 4] != 0 || all_ones(p + i + 6, 8) || (p[i + 13] & 0x80)) continue;
    if (le(p + i + 6, 8) >= m->pre_skip) m->duration = (le(p + i + 6, 8) - m->pre_skip) / m->rate;
    return;
  }
}

static void ogg(const unsigned char *p, size_t n, sv_media *m) {
  size_t body = n >= 27 ? 27 + (size_t)p[26] : n, left = body < n ? n - body : 0;
  const unsigned char *q = p + (left ? body : 0);
  set(m, SV_MEDIA_AUDIO, "ogg");
  if (left >= 16 && memcmp(q, "\x01vorbis", 7) == 0) {
    m->rate = le(q + 12, 4);
  } else if (left >= 19 && memcmp(q, "OpusHead", 8) == 0) {
    m->rate = 48000;
    m->pre_skip = le(q + 10, 2);
  }
  if (m->rate <= 0 || m->size < 0) return;
  if (m->size <= (double)n) ogg_last(p, n, m);
  else m->tail = m->size > OGG_TAIL ? m->size - OGG_TAIL : 0;
}

/* ------------------------------------------------------------------- text */

/* Text, recognisably not media: UTF-8 (a sequence the head cuts short at its end
   aside; a BOM skipped) with no control character but whitespace, named by its
   first character: an HTML page, JSON, XML (an SVG too) or text.  0 when it is not. */
static int text(const unsigned char *p, size_t n, sv_media *m) {
  size_t i = n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0 ? 3 : 0, end = n;
  while (end > i && n - end < 3 && (p[end - 1] & 0xc0) == 0x80) end--;
  if (end > i && p[end - 1] >= 0xc0) end--; /* its lead byte */
  if (i == n || sv_utf8_count((const char *)p + i, end - i) < 0) return 0;
  for (; i < n; i++) {
    if (p[i] == 0x7f || (p[i] < 0x20 && (p[i] < '\t' || p[i] > '\r'))) return 0;
  }
  for (i = 0; i < n && (isspace(p[i]) || p[i] >= 0x80); i++) {}
  set(m, SV_MEDIA_TEXT, i == n ? "text" : p[i] == '{' || p[i] == '[' ? "json" : p[i] != '<' ? "text"
                        : n - i >= 5 && memcmp(p + i, "<?xml", 5) == 0 ? "xml" : "html");
  return 1;
}

/* ----------------------------------------------- addresses not on the internet */

/* Blocks of addresses the public internet does not route (RFC 6890 and its
   kin): an IPv4 address, or an IPv6 address's first 32 bits, as a number. */
typedef struct block { unsigned long net; int bits; const char *what; } block;
static const block v4[] = {
  { 0x00000000UL, 8, "a \"this network\" address" }, { 0x0a000000UL, 8, "a private address" },
  { 0x64400000UL, 10, "a shared (carrier-grade NAT) address" }, { 0x7f000000UL, 8, "a loopback address" },
  { 0xa9fe0000UL, 16, "a link-local address" }, { 0xac100000UL, 12, "a private address" },
  { 0xc0000000UL, 24, "a reserved address" }, { 0xc0000200UL, 24, "a documentation address" },
  { 0xc0a80000UL, 16, "a private address" }, { 0xc6120000UL, 15, "a benchmarking address" },
  { 0xc6336400UL, 24, "a documentation address" }, { 0xcb007100UL, 24, "a documentation address" },
  { 0xe0000000UL, 4, "a multicast address" }, { 0xf0000000UL, 4, "a reserved address" }, { 0, 0, NULL }
};
static const block v6[] = {
  { 0xfc000000UL, 7, "a unique local address" }, { 0xfe800000UL, 10, "a link-local address" },
  { 0xfec00000UL, 10, "a site-local address" }, { 0xff000000UL, 8, "a multicast address" },
  { 0x20010db8UL, 32, "a documentation address" }, { 0, 0, NULL }
};

const char *sv_addr_private(const unsigned char *a, int is_v6) {
  static const unsigned char zero[12], mapped[12] = { [10] = 0xff, [11] = 0xff },
                             nat64[12] = { 0, 0x64, 0xff, 0x9b };
  const block *b = is_v6 ? v6 : v4;
  unsigned long x;
  if (is_v6 && memcmp(a, zero, 12) == 0) return be(a + 12, 4) == 1 ? "a loopback address" : "a reserved address";
  if (is_v6 && (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)) a += 12, b = v4; /* an IPv4 address inside */
  x = (unsigned long)be(a, 4);
  for (; b->what; b++)
    if ((x ^ b->net) >> (32 - b->bits) == 0) return b->what;
  return NULL;
}

const char *sv_host_private(const char *host, size_t len) {
  char h[256];
  unsigned char a[16];
  struct in_addr in;
  if (len && host[len - 1] == '.') len--; /* "localhost." is "localhost" */
  if (len < 2 || len >= sizeof h) return NULL;
  if (host[0] == '[') { /* an IPv6 address; with a zone, a link-local one */
    memcpy(h, host + 1, len - 2);
    h[len - 2] = '\0';
    if (strchr(h, '%')) return "a link-local address";
    return inet_pton(AF_INET6, h, a) == 1 ? sv_addr_private(a, 1) : NULL;
  }
  memcpy(h, host, len);
  h[len] = '\0';
  if (strcasecmp(h, "localhost") == 0 || (len > 10 && strcasecmp(h + len - 10, ".localhost") == 0)) return "a loopback name";
  if (inet_aton(h, &in) == 0) return NULL; /* a name (also 127.1, 0x7f.1, 2130706433: the resolver's forms) */
  return sv_addr_private((const unsigned char *)&in.s_addr, 0);
}

/* ------------------------------------------------------------ the readers */

int sv_media_sniff(const unsigned char *p, size_t n, double total, sv_media *m, sv_buf *why) {
  sv_media_init(m);
  m->size = total >= 0 ? total : -1;
  if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) {
    set(m, SV_MEDIA_IMAGE, "png");
    if (n >= 24 && memcmp(p + 12, "IHDR", 4) == 0) {
      m->width = be(p + 16, 4);
      m->height = be(p + 20, 4);
    }
  } else if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) {
    jpeg(p, n, m);
  } else if (n >= 10 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) {
    set(m, SV_MEDIA_IMAGE, "gif");
    m->width = le(p + 6, 2);
    m->height = le(p + 8, 2);
  } else if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) {
    webp(p, n, m);
  } else if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WAVE", 4) == 0) {
    wav(p, n, m);
  } else if (n >= 12 && memcmp(p + 4, "ftyp", 4) == 0) {
    return mp4(p, n, m, why);
  } else if (n >= 4 && memcmp(p, "OggS", 4) == 0) {
    ogg(p, n, m);
  } else if (mpeg_audio(p, n, m) < 0 && !text(p, n, m)) {
    sv_buf_adds(why, "not an image, video or audio file this client reads: it begins ");
    sv_quote(why, (const char *)p, n, 24);
    return -1;
  }
  return 0;
}

int sv_media_tail(sv_media *m, const unsigned char *bytes, size_t n, double offset, sv_buf *why) {
  if (offset < 0 || (m->size >= 0 && offset + (double)n > m->size)) {
    sv_buf_addf(why, "%.0f bytes at byte %.0f run past the file's %.0f bytes", (double)n, offset, m->size);
    return -1;
  }
  if (m->type && (strcmp(m->type, "mp4") == 0 || strcmp(m->type, "mov") == 0 || strcmp(m->type, "m4a") == 0))
    return top(bytes, n, offset, 1, m, why);
  if (m->type && strcmp(m->type, "ogg") == 0) {
    ogg_last(bytes, n, m);
    return 0;
  }
  sv_buf_addf(why, "a %s file has no tail to read", m->type ? m->type : "media");
  return -1;
}

/* The duration check both whole-MP4 checks end with: 1, or -1 with why. */
static int duration_ok(double duration, double expected, sv_buf *why) {
  if (expected >= 0 && duration >= 0 && fabs(duration - expected) > 1) {
    sv_buf_addf(why, "duration %.1f s, the task says %g s", duration, expected);
    return -1;
  }
  return 1;
}

/* ------------------------------------------------- an MP4 given in order */

void sv_mp4s_init(sv_mp4s *s) {
  memset(s, 0, sizeof *s);
  s->duration = -1;
  s->snap.duration = -1;
}

void sv_mp4s_free(sv_mp4s *s) {
  free(s->moov);
  s->moov = NULL;
}

static int mp4s_fail(sv_mp4s *s) {
  s->failed = 1;
  return -1;
}

/* The bytes of the header being read: 8, or 16 once its first 8 say its size is 64 bits. */
static unsigned hdr_need(const sv_mp4s *s) {
  return s->hdr_len >= 8 && be(s->hdr, 4) == 1 ? 16 : 8;
}

/* The moov's first bytes are all here: read for its duration, then let go. */
static void mp4s_moov_read(sv_mp4s *s) {
  sv_media m;
  sv_media_init(&m);
  if (s->moov && s->moov_len) walk(s->moov, s->moov_len, &m, 0);
  if (m.duration >= 0) s->duration = m.duration;
  sv_mp4s_free(s);
  s->moov_want = s->moov_len = 0;
}

/* A top-level box header whole in s->hdr: the box taken (its end, moov kept to read).  0, or -1 with why. */
static int mp4s_box(sv_mp4s *s, sv_buf *why) {
  sv_box b;
  if (box_read(s->hdr, s->hdr_len, HUGE_VAL, &b, why) < 0) {
    sv_buf_addf(why, " at byte %.0f", s->next);
    return mp4s_fail(s);
  }
  if (s->boxes++ == 0 && strcmp(b.type, "ftyp") != 0) {
    sv_buf_adds(why, NO_FTYP);
    sv_quote(why, (const char *)s->hdr, s->hdr_len, 16);
    return mp4s_fail(s);
  }
  memcpy(s->last_type, b.type, 5);
  s->last_size = b.size;
  s->last_at = s->next;
  s->next = b.size >= HUGE_VAL ? HUGE_VAL : s->next + b.size; /* (a size of 0: to the end) */
  s->hdr_len = 0;
  if (strcmp(b.type, "mdat") == 0) s->seen_mdat = 1;
  if (strcmp(b.type, "moov") == 0 && !s->seen_moov) {
    double body_len = b.size - b.hdr;
    s->seen_moov = 1;
    s->moov_want = body_len < MOOV_READ ? (size_t)body_len : MOOV_READ;
    s->moov_len = 0;
    if (s->moov_want && !(s->moov = malloc(s->moov_want))) {
      sv_buf_adds(why, "out of memory");
      return mp4s_fail(s);
    }
    if (!s->moov_want) mp4s_moov_read(s);
  }
  return 0;
}

int sv_mp4s_feed(sv_mp4s *s, const unsigned char *p, size_t n, sv_buf *why) {
  if (s->failed) return -1;
  while (n > 0) {
    size_t k;
    if (s->at < s->next) { /* in a box's body: the moov's first bytes kept */
      k = (double)n < s->next - s->at ? n : (size_t)(s->next - s->at);
      if (s->moov_want > s->moov_len) {
        size_t c = k < s->moov_want - s->moov_len ? k : s->moov_want - s->moov_len;
        memcpy(s->moov + s->moov_len, p, c);
        s->moov_len += c;
        if (s->moov_len == s->moov_want) mp4s_moov_read(s);
      }
    } else { /* a header: 8 bytes, 16 with a 64-bit size */
      if (s->hdr_len == 0) { /* a box starts: where a resume reads it again from */
        s->snap.at = s->at, s->snap.boxes = s->boxes, s->snap.moov = s->seen_moov, s->snap.mdat = s->seen_mdat;
        s->snap.duration = s->duration;
      }
      k = n < hdr_need(s) - s->hdr_len ? n : hdr_need(s) - s->hdr_len;
      memcpy(s->hdr + s->hdr_len, p, k);
      s->hdr_len += (unsigned)k;
      if (s->hdr_len == hdr_need(s) && mp4s_box(s, why) < 0) return -1;
    }
    s->at += (double)k;
    p += k, n -= k;
  }
  return 0;
}

int sv_mp4s_end(sv_mp4s *s, double expected, sv_buf *why) {
  if (s->failed) return -1;
  if (s->at == 0) sv_buf_adds(why, "not an MP4: the file is empty");
  else if (s->hdr_len > 0 && !s->boxes) { /* fewer bytes than a header: no ftyp */
    sv_buf_adds(why, NO_FTYP);
    sv_quote(why, (const char *)s->hdr, s->hdr_len, 16);
  } else if (s->hdr_len > 0) sv_buf_addf(why, HEADER_PAST_END, s->next, s->at);
  else if (s->next < HUGE_VAL && s->next > s->at) sv_buf_addf(why, BOX_PAST_END, s->last_type, s->last_at,
                                                              s->last_size, s->at);
  else if (!s->seen_moov || !s->seen_mdat) sv_buf_addf(why, "no %s box", s->seen_moov ? "mdat" : "moov");
  if (why->len) return mp4s_fail(s);
  if (s->moov_want) mp4s_moov_read(s); /* a moov cut by the end: what came is read */
  return duration_ok(s->duration, expected, why) < 0 ? mp4s_fail(s) : 1;
}

int sv_mp4s_save(const sv_mp4s *s, sv_buf *out) {
  int busy = s->hdr_len > 0 || s->moov_want > 0; /* a box half read: read again from its start */
  double at = busy ? s->snap.at : s->at, next = busy ? s->snap.at : s->next;
  double d = busy ? s->snap.duration : s->duration; /* in microseconds: whole numbers read alike in any locale */
  sv_buf_addf(out, "%.0f %.0f %d %d %d %.0f", at, next >= HUGE_VAL ? -1.0 : next, busy ? s->snap.boxes : s->boxes,
              busy ? s->snap.moov : s->seen_moov, busy ? s->snap.mdat : s->seen_mdat, d < 0 ? -1.0 : floor(d * 1e6));
  return busy;
}

int sv_mp4s_load(sv_mp4s *s, const char *text) {
  double at, next, duration;
  int boxes, moov, mdat;
  sv_mp4s_init(s);
  if (sscanf(text, "%lf %lf %d %d %d %lf", &at, &next, &boxes, &moov, &mdat, &duration) != 6 || at < 0 ||
      next < -1 || boxes < 0 || (next >= 0 && next < at))
    return -1;
  s->at = at, s->next = next < 0 ? HUGE_VAL : next, s->boxes = boxes, s->seen_moov = moov != 0;
  s->seen_mdat = mdat != 0, s->duration = duration < 0 ? -1 : duration / 1e6;
  return 0;
}

/* ------------------------------------------------------- a downloaded MP4 */

/* The stream's check fed from fd (pread: its position is not moved): the box headers and the moov's first
   bytes only, every other body skipped unread. */
int sv_mp4_check_fd(int fd, double expected, double *duration, int *open_end, sv_buf *why) {
  unsigned char buf[16384];
  struct stat st;
  sv_mp4s s;
  int rc = -1;
  *duration = -1;
  sv_mp4s_init(&s);
  if (fstat(fd, &st) < 0) {
    sv_buf_adds(why, strerror(errno));
    return -1;
  }
  while (s.at < (double)st.st_size && !s.failed) {
    double left = (double)st.st_size - s.at;
    size_t want = s.moov_want ? sizeof buf : 16; /* the moov's first bytes, or a header's 16 at most */
    ssize_t got;
    if (s.at < s.next && !s.moov_want) { /* a body not read: its bytes skipped */
      s.at = s.next < (double)st.st_size ? s.next : (double)st.st_size;
      continue;
    }
    got = pread(fd, buf, left < (double)want ? (size_t)left : want, (off_t)s.at);
    if (got > 0) sv_mp4s_feed(&s, buf, (size_t)got, why);
    else if (got == 0 || errno != EINTR) {
      sv_buf_addf(why, "read error at byte %.0f: %s", s.at, got ? strerror(errno) : "the file is shorter than it was");
      s.failed = 1;
    }
  }
  if (!s.failed && sv_mp4s_end(&s, -1, why) == 1) {
    *duration = s.duration;
    if (open_end) *open_end = s.next >= HUGE_VAL;
    rc = duration_ok(s.duration, expected, why);
  }
  sv_mp4s_free(&s);
  return rc;
}
