/* SigV4 for the starvideos-s3 rock (its C module starvideos.sigv4: sigv4.c and
   lua.c here), on the core's sv_buf and sv_error: the core's sign.so has none of it. */
#ifndef SV_SIGV4_H
#define SV_SIGV4_H

#include "../../../csrc/core/sv_core.h"

/* AWS Signature Version 4 (sigv4.c, on libcrypto), as S3 and the stores that
   speak its API check it.  The canonical URI is path as given: S3 encodes a
   key's bytes once, '/' kept (sv_uri_encode(.., 1)), and never normalises it.
   query: nquery pairs (name, value), decoded: encoded here and sorted by name,
   then value.  headers: nheaders pairs (at most 32) signed besides host and
   the signer's own: names lowercased, values with the blanks around them gone
   and each run of them one space, sorted; a name given twice is refused.
   payload: the body's SHA-256 in lowercase hex, or "UNSIGNED-PAYLOAD".  token:
   a session token, or NULL.  time: seconds since the epoch (UTC).
   expires 0: header auth, the signer's headers x-amz-date, x-amz-content-sha256
   (payload) and x-amz-security-token (with a token) signed and to be sent,
   out->authorization the Authorization value, out->query the query to send.
   expires 1..604800: a presigned URL (query auth, as the SDK's S3 presigner
   makes it: X-Amz-Algorithm, -Credential, -Date, -Expires, -Security-Token,
   x-amz-content-sha256 = payload, -SignedHeaders and -Signature), out->query the
   whole query to send.  out->canonical and out->to_sign: the canonical request
   and the string to sign, for checks.  0, or -1 with err (invalid_request, the
   field named, never a secret's value), out freed; else sv_sigv4_free(out). */
typedef struct sv_sigv4 {
  const char *method, *host, *path;
  const char *const *query;
  size_t nquery;
  const char *const *headers;
  size_t nheaders;
  const char *payload, *region, *service, *access_key, *secret_key, *token;
  double time;
  long expires;
} sv_sigv4;
typedef struct sv_sigv4_out {
  char date[17];      /* YYYYMMDDTHHMMSSZ: x-amz-date */
  char signature[65]; /* lowercase hex */
  sv_buf canonical, to_sign, signed_headers, authorization, query;
  sv_buf credential, expires; /* (the query's values, kept while it is built) */
} sv_sigv4_out;
SV_API int sv_sigv4_sign(const sv_sigv4 *r, sv_sigv4_out *out, sv_error *err);
SV_API void sv_sigv4_free(sv_sigv4_out *out);
/* s[0, len) percent-encoded as SigV4 and S3 do: the unreserved bytes of RFC
   3986 (A-Z a-z 0-9 - _ . ~) as they are, '/' too with keep_slash, every
   other byte %XX (capitals), UTF-8 as its bytes. */
SV_API void sv_uri_encode(sv_buf *out, const char *s, size_t len, int keep_slash);

#endif
