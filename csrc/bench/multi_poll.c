/* Baseline of `make bench` (bench/poll_many.lua): COUNT tasks polled once each
   through libcurl's multi interface, what a C programmer writes: every request
   added at once, libcurl keeping at most MAX_CONNECTIONS connections open
   (CURLMOPT_MAX_TOTAL_CONNECTIONS, the rest queued), the same request the
   client sends (URL PREFIX + "task_%04d", Authorization, Accept, User-Agent),
   every body read whole and its HTTP status checked.

     multi_poll URL_PREFIX API_KEY USER_AGENT COUNT MAX_CONNECTIONS

   The clock runs from before the first handle is made to the last answer;
   prints  REQUESTS n SECONDS s BYTES b  and exits 1 when any request failed. */
#include "bench.h"

struct xfer {
  CURL *easy;
  char url[512];
  struct body body;
};

int main(int argc, char **argv) {
  struct curl_slist *headers = NULL;
  struct xfer *xs;
  char auth[512];
  long count, conns, i, done = 0, failed = 0;
  unsigned long long bytes = 0;
  int running = 1;
  double t0, t1;
  CURLM *multi;
  if (argc != 6) {
    fprintf(stderr, "usage: multi_poll URL_PREFIX API_KEY USER_AGENT COUNT MAX_CONNECTIONS\n");
    return 2;
  }
  count = atol(argv[4]);
  conns = atol(argv[5]);
  if (count < 1 || conns < 1) return 2;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", argv[2]);
  headers = curl_slist_append(headers, auth);
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Expect:");
  xs = calloc((size_t)count, sizeof *xs);
  if (!headers || !xs) return 1;

  t0 = now();
  multi = curl_multi_init();
  if (!multi) return 1;
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, conns);
  for (i = 0; i < count; i++) {
    struct xfer *x = &xs[i];
    snprintf(x->url, sizeof x->url, "%stask_%04ld", argv[1], i + 1);
    x->easy = curl_easy_init();
    if (!x->easy) return 1;
    curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(x->easy, CURLOPT_USERAGENT, argv[3]);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, &x->body);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(multi, x->easy) != CURLM_OK) return 1;
  }
  while (running || done < count) {
    CURLMsg *m;
    int left;
    if (curl_multi_perform(multi, &running) != CURLM_OK) return 1;
    while ((m = curl_multi_info_read(multi, &left)) != NULL) {
      struct xfer *x = NULL;
      long status = 0;
      if (m->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
      curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      if (m->data.result != CURLE_OK || status != 200 || !x->body.data || !strstr(x->body.data, "\"completed\"")) {
        if (!failed)
          fprintf(stderr, "multi_poll: %s: %s, HTTP %ld\n", x->url, curl_easy_strerror(m->data.result), status);
        failed++;
      }
      bytes += x->body.len;
      done++;
      curl_multi_remove_handle(multi, m->easy_handle);
      curl_easy_cleanup(m->easy_handle);
      x->easy = NULL;
    }
    if (done < count && curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK) return 1;
  }
  curl_multi_cleanup(multi);
  t1 = now();
  printf("REQUESTS %ld SECONDS %.6f BYTES %llu\n", done, t1 - t0, bytes);
  for (i = 0; i < count; i++) free(xs[i].body.data);
  free(xs);
  curl_slist_free_all(headers);
  curl_global_cleanup();
  return failed ? 1 : 0;
}
