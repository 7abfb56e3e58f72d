/* What an exchange sends: the checks sv_http_send makes before it makes anything, the request's header lines
   (the caller's, its Range, its request id, the key when asked) and its easy handle's options (its client's, its
   proxy, its body, the public-only rule of a reference media URL).  What differs between the service's requests, a
   download, a webhook, a reference media URL and the user's store is sv_send's data, never an op. */
#include "internal.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HEADER_LINE_MAX 4096 /* a request's own header line (a session token may be long) */

static int add_header(struct curl_slist **list, const char *line) {
  struct curl_slist *l = curl_slist_append(*list, line);
  if (!l) return -1;
  *list = l;
  return 0;
}

/* The lines of p ("Name: value\n" each: headers_ok checked them) added.  0, or -1 out of memory. */
static int add_lines(sv_xfer *x, const char *p) {
  const char *nl;
  while ((nl = strchr(p, '\n')) != NULL) {
    char line[HEADER_LINE_MAX];
    size_t n = (size_t)(nl - p);
    memcpy(line, p, n);
    line[n] = '\0';
    if (add_header(&x->headers, line)) return -1;
    p = nl + 1;
  }
  return 0;
}

/* The request's header lines: its Range (a range's bytes offset to offset + max_body - 1; a file's from the bytes
   it has), its X-Request-Id, the key when asked, then the caller's lines.  "Expect:" keeps libcurl from waiting
   for a 100-continue before a body; an empty Content-Type, unless the lines name one, from adding a form's.  0, or
   -1 out of memory. */
static int set_headers(sv_http *h, sv_xfer *x, const sv_send *s) {
  const char *p = s->headers ? s->headers : "";
  char line[SV_REQUEST_ID_MAX + 64];
  if (x->range) snprintf(line, sizeof line, "Range: bytes=%.0f-%.0f", x->offset, x->offset + (double)x->max_body - 1);
  else snprintf(line, sizeof line, "Range: bytes=%.0f-", x->offset);
  if ((x->range || x->offset > 0) && add_header(&x->headers, line)) return -1;
  snprintf(line, sizeof line, "X-Request-Id: %s", x->request_id);
  if (x->request_id[0] && add_header(&x->headers, line)) return -1;
  if (x->service) {
    sv_buf b = {0};
    int rc;
    sv_buf_addf(&b, "Authorization: Bearer %s", h->api_key);
    rc = b.oom ? -1 : add_header(&x->headers, sv_buf_cstr(&b));
    memset(b.data ? b.data : (char *)"", 0, b.len);
    sv_buf_free(&b);
    if (rc) return -1;
  }
  if (add_header(&x->headers, "Expect:") || (!strstr(p, "Content-Type:") && add_header(&x->headers, "Content-Type:")))
    return -1;
  return add_lines(x, p);
}

/* A request's header lines (sv_send's): "Name: value\n" each, shorter than HEADER_LINE_MAX bytes, with no control
   character but their ending. */
static int headers_ok(const char *p) {
  const char *nl;
  while (*p) {
    nl = strchr(p, '\n');
    if (!nl || nl == p || (size_t)(nl - p) >= HEADER_LINE_MAX || !memchr(p, ':', (size_t)(nl - p)) ||
        !sv_header_value_ok(p, (size_t)(nl - p)))
      return 0;
    p = nl + 1;
  }
  return 1;
}

static int method_ok(const char *m) {
  static const char *const ok[] = { "GET", "HEAD", "PUT", "POST", "DELETE" };
  size_t i;
  for (i = 0; i < sizeof ok / sizeof *ok; i++)
    if (strcmp(m, ok[i]) == 0) return 1;
  return 0;
}

int sv_send_invalid(const sv_send *s, sv_error *err) {
  if (s->user_agent && (!sv_header_value_ok(s->user_agent, strlen(s->user_agent)) || !(s->connect_timeout > 0)))
    return sv_error_set(err, SV_E_INVALID, "user_agent",
                        "user_agent: control characters, or connect_timeout: not above 0");
  if (!s->url) return sv_error_set(err, SV_E_INVALID, "url", "url: expected an http(s) URL, got nothing");
  if (s->proxy && sv_proxy_parse(s->proxy, strlen(s->proxy), NULL, err) != 0) return -1;
  if (sv_url_check(s->url, strlen(s->url), "url", SV_URL_ANY, err) != 0) return -1;
  if (s->headers && !headers_ok(s->headers))
    return sv_error_set(err, SV_E_INVALID, "headers",
                        "headers: expected \"Name: value\\n\" lines without control characters");
  if (s->request_id && (strlen(s->request_id) > SV_REQUEST_ID_MAX || !*s->request_id ||
                        !sv_header_value_ok(s->request_id, strlen(s->request_id))))
    return sv_error_set(err, SV_E_INVALID, "request_id",
                        "request_id: expected 1 to %d characters without control characters", SV_REQUEST_ID_MAX);
  if (s->method && !method_ok(s->method))
    return sv_error_set(err, SV_E_INVALID, "method", "method: expected GET, HEAD, PUT, POST or DELETE");
  if (s->file && !*s->file) return sv_error_set(err, SV_E_INVALID, "path", "path: expected a file path");
  return 0;
}

/* The exchange's proxy (checked by sv_http_send; NULL: the environment's), its credentials apart and decoded
   (Basic auth: on the CONNECT of an https URL, on each request of an http one).  An https URL goes through a CONNECT
   tunnel, so the proxy never sees the key; an http one is sent to the proxy whole, key included.  0, or -1 out of
   memory. */
static int set_proxy(CURL *e, const char *proxy) {
  sv_proxy p;
  sv_error err;
  if (!proxy) return 0;
  if (sv_proxy_parse(proxy, strlen(proxy), &p, &err) != 0) return -1;
  curl_easy_setopt(e, CURLOPT_PROXY, sv_buf_cstr(&p.url));
  if (p.has_user) {
    curl_easy_setopt(e, CURLOPT_PROXYAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_PROXYUSERNAME, sv_buf_cstr(&p.user));
    curl_easy_setopt(e, CURLOPT_PROXYPASSWORD, sv_buf_cstr(&p.password));
  }
  sv_proxy_free(&p);
  return 0;
}

/* An exchange's connection (public only): refused (no socket: nothing reaches the address) when its address is
   not public, whatever name or redirect led there; libcurl may try the name's next address, but x->refused stands. */
static curl_socket_t on_media_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
  sv_xfer *x = ud;
  const void *in = &a->addr;
  const unsigned char *ip = a->family == AF_INET ? (const unsigned char *)&((const struct sockaddr_in *)in)->sin_addr
                          : (const unsigned char *)&((const struct sockaddr_in6 *)in)->sin6_addr;
  const char *what = a->family == AF_INET || a->family == AF_INET6 ? sv_addr_private(ip, a->family == AF_INET6) : NULL;
  char name[INET6_ADDRSTRLEN] = "?";
  (void)purpose;
  if (!what) return socket(a->family, a->socktype, a->protocol);
  inet_ntop(a->family, ip, name, sizeof name);
  snprintf(x->message, sizeof x->message, SV_NOT_PUBLIC, name, what);
  x->refused = 1;
  return CURL_SOCKET_BAD;
}

/* An exchange that must reach only public addresses (a reference media URL's).  Direct, each address it connects
   to is checked (on a connection of its own: a kept one was made unchecked); through a proxy (the exchange's, or
   one libcurl reads from the environment, no_proxy aside), which resolves the names, each hop's host as written is
   (sv_curl_redirect; the first one: the caller's). */
static void public_only(sv_xfer *x, const sv_send *s) {
  static const char *const vars[] = { "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY", "http_proxy" };
  int i, https = sv_url_scheme(s->url, strlen(s->url)) == 8;
  x->public_only = 1;
  for (i = 0; i < 5 && x->public_only == 1; i++) /* http_proxy for http, the https ones for https */
    if ((i < 2 || (i < 4) == https) && getenv(vars[i]) && *getenv(vars[i])) x->public_only = 2;
  if (s->proxy) x->public_only = 2;
  if (x->public_only == 2) return;
  curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETFUNCTION, on_media_socket);
  curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETDATA, x);
  curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L);
}

/* The options of the exchange's easy handle: its client's, else the transport's (sv_send's user_agent), then its
   own (URL, header list, timeout, where libcurl writes). */
static void setup_easy(sv_http *h, sv_xfer *x, const sv_send *s) {
  CURL *e = x->easy;
  const char *ca_file = s->user_agent ? s->ca_file : h->ca_file;
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  /* libcurl before 7.85 has no *_PROTOCOLS_STR: the bitmask options do the same.
     Every other libcurl name used here is in 7.68 (the oldest supported):
     csrc/curl/curl_versions.txt lists each with its version, tools/curl-compat.sh checks. */
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(e, CURLOPT_USERAGENT, s->user_agent ? s->user_agent : h->user_agent);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, sv_curl_ms(s->user_agent ? s->connect_timeout : h->connect_timeout));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  if (h->keepalive_timeout > 0) /* (whole seconds: a part of one is one) */
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)ceil(h->keepalive_timeout));
  if (ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
  if (s->stall > 0) {
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, s->stall >= 1 ? (long)fmin(s->stall, 86400.0 * 30) : 1L);
  }
  /* A request that must not ride a reused connection: when a kept-alive connection
     dies under a request, libcurl silently sends it again on a new one, and a
     create the server already took would be paid twice.  The new connection is
     still kept for the exchanges that follow. */
  if (s->fresh) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  /* a file's reads (and so its writes) of up to 128 KiB, not libcurl's 16: a 200 MB video in about 1,600 recv,
     poll and write calls each, not 12,000 (the curl tool reads 100 KB at a time) */
  if (s->file) curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 128L * 1024);
  if (s->public) public_only(x, s);
  if (s->body || (s->method && (strcmp(s->method, "PUT") == 0 || strcmp(s->method, "POST") == 0))) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
  }
  if (s->method && strcmp(s->method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (s->method && (strcmp(s->method, "PUT") == 0 || strcmp(s->method, "DELETE") == 0))
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, s->method);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, sv_on_header);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sv_on_body);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_URL, x->url);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_msg);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, sv_curl_ms(s->timeout)); /* 0: none */
}

int sv_send_setup(sv_http *h, sv_xfer *x, const sv_send *s) {
  if (set_headers(h, x, s)) return -1;
  setup_easy(h, x, s);
  return set_proxy(x->easy, s->proxy);
}
