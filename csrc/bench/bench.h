/* What the two C baselines of `make bench` share (easy_loop.c, multi_poll.c):
   an answer's body kept in memory, the libcurl write callback that fills it,
   and the monotonic clock. */
#ifndef SV_BENCH_H
#define SV_BENCH_H

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct body {
  char *data; /* NUL-terminated once anything arrived */
  size_t len, cap;
};

/* CURLOPT_WRITEFUNCTION, with a struct body as CURLOPT_WRITEDATA */
static size_t on_body(char *ptr, size_t size, size_t n, void *userdata) {
  struct body *b = userdata;
  size_t add = size * n;
  if (b->len + add + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    char *p;
    while (cap < b->len + add + 1) cap *= 2;
    p = realloc(b->data, cap);
    if (!p) return 0;
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->len, ptr, add);
  b->len += add;
  b->data[b->len] = '\0';
  return add;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
