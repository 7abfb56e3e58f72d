/* sv_url_check (both forms) and sv_header_value_ok on any bytes.  Properties: an
   accepted base_url is http(s)://, has a host, and holds nothing a header or a
   request line could be split with (no control character, space, '?', '#', '@');
   an accepted URL of the other form (a video's) is http(s):// with a host, holds
   no control character, space or non-ASCII byte and no '@' before its path, and
   every base_url is one; a refusal names its field and is one printable line.
   sv_proxy_parse: what it
   accepts, stripped of its credentials, is a base URL; a refusal names proxy
   and is one printable line. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  sv_error err;
  size_t i;
  int ok, hv;

  hv = sv_header_value_ok(s, size);
  for (i = 0; i < size; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) break;
  PROPERTY(hv == (i == size), "sv_header_value_ok refuses exactly the control characters");

  sv_error_clear(&err);
  ok = sv_url_check(s, size, "base_url", SV_URL_BASE, &err) == 0;
  if (ok) {
    PROPERTY(hv, "an accepted base_url is a safe header value");
    PROPERTY(sv_url_scheme(s, size) > 0, "an accepted base_url is http(s) with a host");
    for (i = 0; i < size; i++) {
      unsigned char c = (unsigned char)s[i];
      PROPERTY(c > 0x20 && c < 0x7f && c != '?' && c != '#' && c != '@' && c != '\\',
               "an accepted base_url holds no space, query, fragment or userinfo");
    }
  } else {
    PROPERTY(err.kind == SV_E_INVALID && strcmp(err.field, "base_url") == 0, "a refusal names base_url");
    PROPERTY(strncmp(err.message, "base_url: ", 10) == 0, "a refusal message starts with the field");
    for (i = 0; err.message[i]; i++)
      PROPERTY((unsigned char)err.message[i] >= 0x20 && err.message[i] != 0x7f, "a refusal is one printable line");
  }
  {
    int any = sv_url_check(s, size, "video_url", SV_URL_ANY, &err) == 0;
    size_t host_end;
    if (ok) PROPERTY(any, "an accepted base_url is an accepted URL");
    if (any) {
      PROPERTY(sv_url_scheme(s, size) > 0, "an accepted URL is http(s) with a host");
      for (i = 0; i < size; i++)
        PROPERTY((unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f, "an accepted URL is printable ASCII");
      i = s[4] == ':' ? 7 : 8;
      for (host_end = i; host_end < size && s[host_end] != '/' && s[host_end] != '?' && s[host_end] != '#'; host_end++)
        PROPERTY(s[host_end] != '@', "an accepted URL has no userinfo");
    } else {
      PROPERTY(err.kind == SV_E_INVALID && strcmp(err.field, "video_url") == 0, "a refusal names its field");
      PROPERTY(strncmp(err.message, "video_url: ", 11) == 0, "a refusal message starts with its field");
      for (i = 0; err.message[i]; i++)
        PROPERTY((unsigned char)err.message[i] >= 0x20 && err.message[i] != 0x7f, "a refusal is one printable line");
    }
  }
  {
    sv_proxy p;
    sv_error_clear(&err);
    if (sv_proxy_parse(s, size, &p, &err) == 0) {
      PROPERTY(sv_url_check(sv_buf_cstr(&p.url), p.url.len, "proxy", SV_URL_BASE, &err) == 0,
               "an accepted proxy without its credentials is a base URL");
      sv_proxy_free(&p);
    } else {
      PROPERTY(strcmp(err.field, "proxy") == 0 && strncmp(err.message, "proxy: ", 7) == 0, "a refusal names proxy");
      for (i = 0; err.message[i]; i++)
        PROPERTY((unsigned char)err.message[i] >= 0x20 && err.message[i] != 0x7f, "a refusal is one printable line");
    }
  }
  return 0;
}
