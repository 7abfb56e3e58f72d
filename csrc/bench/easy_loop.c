/* Baseline of `make bench` (bench/query_http.lua, bench/query_https.lua): what a
   C programmer writes for sequential queries, one libcurl easy handle reused
   for every request (keep-alive, one TLS session), the same request the client
   sends (URL, Authorization, Accept, User-Agent), the whole body read into
   memory and its HTTP status checked.

     easy_loop URL API_KEY USER_AGENT SECONDS WARMUP [CA_FILE]

   WARMUP requests first (the connection, the TLS handshake), then as many
   requests as fit in SECONDS; prints
     REQUESTS n SECONDS s BYTES b CPU c
   (c: the process's CPU seconds, user + system, during those requests)
   and exits 1 on the first request that fails. */
#include "bench.h"

/* One request; 0 when it answered 200 with a task that says it is completed. */
static int one(CURL *e, struct body *b) {
  long status = 0;
  CURLcode rc;
  b->len = 0;
  rc = curl_easy_perform(e);
  if (rc != CURLE_OK) {
    fprintf(stderr, "easy_loop: %s\n", curl_easy_strerror(rc));
    return -1;
  }
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200 || !b->data || !strstr(b->data, "\"completed\"")) {
    fprintf(stderr, "easy_loop: HTTP %ld, body %.200s\n", status, b->data ? b->data : "");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct body b = { NULL, 0, 0 };
  struct curl_slist *headers = NULL;
  char auth[512];
  double seconds, t0, t;
  clock_t c0;
  long warmup, n = 0, i;
  unsigned long long bytes = 0;
  CURL *e;
  if (argc < 6 || argc > 7) {
    fprintf(stderr, "usage: easy_loop URL API_KEY USER_AGENT SECONDS WARMUP [CA_FILE]\n");
    return 2;
  }
  seconds = atof(argv[4]);
  warmup = atol(argv[5]);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", argv[2]);
  headers = curl_slist_append(headers, auth);
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Expect:");
  e = curl_easy_init();
  if (!e || !headers) return 1;
  curl_easy_setopt(e, CURLOPT_URL, argv[1]);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_USERAGENT, argv[3]);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
  if (argc == 7) curl_easy_setopt(e, CURLOPT_CAINFO, argv[6]);
  for (i = 0; i < warmup; i++)
    if (one(e, &b)) return 1;
  c0 = clock();
  t0 = t = now();
  while (t - t0 < seconds) {
    if (one(e, &b)) return 1;
    bytes += b.len;
    n++;
    t = now();
  }
  printf("REQUESTS %ld SECONDS %.6f BYTES %llu CPU %.6f\n", n, t - t0, bytes,
         (double)(clock() - c0) / CLOCKS_PER_SEC);
  curl_easy_cleanup(e);
  curl_slist_free_all(headers);
  free(b.data);
  curl_global_cleanup();
  return 0;
}
