/* sv_base_url_check and sv_header_value_ok on any bytes.  Properties: an accepted
   base_url is http(s)://, has a host, and holds nothing a header or a request line
   could be split with (no control character, space, '?', '#', '@'); a refusal
   names the field and is one printable line. */
#include "fuzz.h"

#include <strings.h>

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
  ok = sv_base_url_check(s, size, &err) == 0;
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
  return 0;
}
