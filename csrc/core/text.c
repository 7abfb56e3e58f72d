/* Text: UTF-8 counted and checked, a string quoted for a message, values sent
   as headers (a task id among them). */
#include "sv_core.h"

#include <stdio.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t left) {
  unsigned c = s[0];
  size_t n, i;
  unsigned long cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
  else return 0;
  if (left < n) return 0;
  for (i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return n;
}

long sv_utf8_count(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  long count = 0;
  while (i < len) {
    size_t n = utf8_seq(p + i, len - i);
    if (!n) return -1;
    i += n;
    count++;
  }
  return count;
}

void sv_quote(sv_buf *out, const char *s, size_t len, size_t max) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  sv_buf_add(out, "\"", 1);
  while (i < len) {
    size_t n = utf8_seq(p + i, len - i);
    if (i >= max) { sv_buf_adds(out, "..."); break; }
    if (n > 1 || (n == 1 && p[i] >= 0x20 && p[i] != 0x7F && p[i] != '"' && p[i] != '\\')) {
      sv_buf_add(out, p + i, n);
    } else if (p[i] == '"' || p[i] == '\\') {
      sv_buf_addf(out, "\\%c", p[i]);
      n = 1;
    } else {
      sv_buf_addf(out, "\\x%02X", p[i]);
      n = 1;
    }
    i += n;
  }
  sv_buf_add(out, "\"", 1);
}

int sv_header_value_ok(const char *s, size_t len) {
  size_t i;
  if (!s) return len == 0;
  for (i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F) return 0;
  return 1;
}

int sv_task_id_ok(const char *id, size_t len) {
  return id && len > 0 && len <= SV_ID_MAX && sv_header_value_ok(id, len);
}

void sv_hex(const unsigned char *b, size_t n, char *out) {
  size_t i;
  for (i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", b[i]); /* and the NUL */
}
