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

/* Redis Cluster's hash slot of a key (its CRC16, XMODEM's, modulo 16384): of
   the part between the first '{' and the '}' after it when that part is not
   empty (a hash tag: keys sharing one share a slot), else of the whole key. */
unsigned sv_redis_slot(const char *key, size_t len) {
  size_t open, close, i;
  unsigned crc = 0;
  int bit;
  for (open = 0; open < len && key[open] != '{'; open++) {}
  for (close = open + 1; close < len && key[close] != '}'; close++) {}
  if (open < len && close < len && close > open + 1) {
    key += open + 1;
    len = close - open - 1;
  }
  for (i = 0; i < len; i++) {
    crc ^= (unsigned)(unsigned char)key[i] << 8;
    for (bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    crc &= 0xffff;
  }
  return crc & 16383;
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
  sv_hex(b, sizeof b, out);
}
