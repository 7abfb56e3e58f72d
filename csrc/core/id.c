/* Short ids: a stable hash of a text, random ones for records. */
#include "sv_core.h"

#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

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

/* n random bytes: the kernel's randomness, else the clock and the process id
   (enough to tell records and requests apart, never a secret). */
static void random_bytes(unsigned char *b, size_t n) {
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC), ok = 0;
  size_t i;
  if (fd >= 0) {
    ok = read(fd, b, n) == (ssize_t)n;
    close(fd);
  }
  if (!ok) {
    static unsigned long long count;
    struct timespec ts;
    unsigned long long v;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = ((unsigned long long)ts.tv_sec * 1000000007ULL) ^ (unsigned long long)ts.tv_nsec ^
        ((unsigned long long)getpid() << 40) ^ (++count * 0x9e3779b97f4a7c15ULL);
    for (i = 0; i < n; i++) b[i] = (unsigned char)(v >> ((i % 8) * 8)) ^ (unsigned char)(i * 31);
  }
}

/* 16 random hex digits for a record that must be told apart from every other
   process's. */
void sv_random_hex(char out[17]) {
  unsigned char b[8];
  random_bytes(b, sizeof b);
  sv_hex(b, sizeof b, out);
}

/* A request's X-Request-Id: a random UUID (version 4, RFC 9562), lowercase,
   "8-4-4-4-12" hex digits, the form a support desk takes as it is. */
void sv_request_id(char out[37]) {
  unsigned char b[16];
  char hex[33];
  random_bytes(b, sizeof b);
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* the RFC's variant */
  sv_hex(b, sizeof b, hex);
  snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}
