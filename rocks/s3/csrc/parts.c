/* The s3 rock's part sums (parts.h), on libcrypto: fed the bytes an upload's
   stream hashes (lsv.h's lsv_also), so that the transport's tap hashes a part
   a write at a time, never a whole part in one step.

     sigv4.stream(seconds, md5 [, saved]) -> stream | nil, why
         the core's stream (seconds the video lasts, < 0: any; saved a state
         stream:save() gave, nil: from byte 0) keeping each part's sums, its
         MD5 too when md5 (the store's ETag is compared with it)
     sigv4.part(stream) -> sha256 (hex), sha256 (base64), md5 (base64, or nil)
         of the bytes since the last part; a new part begins */
#include "parts.h"

#include "../../../csrc/lua/compat.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

typedef struct parts {
  lsv_also also; /* first: the stream holds it as its lsv_also */
  EVP_MD_CTX *sha, *md5; /* md5: NULL when the store takes x-amz-checksum-* */
} parts;

static int parts_begin(parts *ps) {
  return EVP_DigestInit_ex(ps->sha, EVP_sha256(), NULL) == 1 &&
         (!ps->md5 || EVP_DigestInit_ex(ps->md5, EVP_md5(), NULL) == 1);
}

static int parts_feed(lsv_also *a, const char *p, size_t n, sv_buf *why) {
  parts *ps = (parts *)a;
  if (EVP_DigestUpdate(ps->sha, p, n) == 1 && (!ps->md5 || EVP_DigestUpdate(ps->md5, p, n) == 1)) return 0;
  sv_buf_adds(why, "libcrypto failed to hash");
  return -1;
}

static void parts_free(lsv_also *a) {
  parts *ps = (parts *)a;
  EVP_MD_CTX_free(ps->sha);
  EVP_MD_CTX_free(ps->md5);
  free(ps);
}

static int l_stream(lua_State *L) {
  double expected = luaL_checknumber(L, 1);
  int md5 = lua_toboolean(L, 2);
  const char *saved = luaL_optstring(L, 3, NULL);
  parts *ps = calloc(1, sizeof *ps);
  if (!ps) return luaL_error(L, "out of memory");
  ps->also.feed = parts_feed, ps->also.free = parts_free;
  ps->sha = EVP_MD_CTX_new();
  ps->md5 = md5 ? EVP_MD_CTX_new() : NULL;
  if (!ps->sha || (md5 && !ps->md5) || !parts_begin(ps)) {
    parts_free(&ps->also);
    lua_pushnil(L);
    lua_pushstring(L, "libcrypto failed to start a digest");
    return 2;
  }
  return lsv_push_stream(L, expected, saved, &ps->also);
}

static void push_base64(lua_State *L, const unsigned char *md, unsigned n) {
  char out[45]; /* (base64 of at most 32 bytes, and its NUL) */
  EVP_EncodeBlock((unsigned char *)out, md, (int)n);
  lua_pushstring(L, out);
}

static int l_part(lua_State *L) {
  parts *ps = (parts *)lsv_stream_also(L, 1, parts_feed, "sigv4.part: a part's sums");
  unsigned char md[EVP_MAX_MD_SIZE];
  char hex[65];
  unsigned n = 0;
  if (EVP_DigestFinal_ex(ps->sha, md, &n) != 1 || n != 32) return luaL_error(L, "libcrypto failed to hash");
  sv_hex(md, n, hex);
  lua_pushstring(L, hex);
  push_base64(L, md, n);
  if (ps->md5 && (EVP_DigestFinal_ex(ps->md5, md, &n) != 1 || n != 16)) return luaL_error(L, "libcrypto failed to hash");
  if (ps->md5) push_base64(L, md, n);
  else lua_pushnil(L);
  if (!parts_begin(ps)) return luaL_error(L, "libcrypto failed to start a digest");
  return 3;
}

void sv_s3_open_parts(lua_State *L) {
  static const luaL_Reg funcs[] = { { "stream", l_stream }, { "part", l_part }, { NULL, NULL } };
  luaL_setfuncs(L, funcs, 0);
}
