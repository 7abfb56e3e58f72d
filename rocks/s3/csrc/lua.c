/* starvideos.sigv4: AWS Signature Version 4 and S3's percent-encoding (sigv4.c)
   for Lua, the starvideos-s3 rock's C module (rocks/s3/starvideos-s3-scm-1.rockspec):
   the bucket's requests (storage/s3.lua) are signed here, on libcrypto, and the
   core's starvideos.sign keeps only the webhook signatures, SHA-256 and the
   video's check; each part's sums are this module's (parts.c).  Like
   starvideos.core, it never calls a Lua function. */
#include "../../../csrc/lua/lsv.h"
#include "parts.h"
#include "sigv4.h"

#include "../../../csrc/lua/compat.h"

#include <string.h>

/* The string pairs of the map t[field] (nil: none) into pairs[0, 2 * max), at most max + 1 of them
   (more are the signer's to refuse): their count.  The map keeps the strings alive. */
static size_t string_pairs(lua_State *L, int t, const char *field, const char **pairs, size_t max) {
  size_t n = 0;
  lua_getfield(L, t, field);
  if (!lua_isnil(L, -1)) luaL_checktype(L, -1, LUA_TTABLE);
  else { lua_pop(L, 1); return 0; }
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "sigv4: %s: names and values are strings", field);
    if (n <= max) pairs[2 * n] = lua_tostring(L, -2), pairs[2 * n + 1] = lua_tostring(L, -1), n++;
    lua_pop(L, 1);
  }
  lua_pop(L, 1); /* (t keeps the map) */
  return n;
}

static const char *opt_field(lua_State *L, int t, const char *key) {
  const char *v;
  lua_getfield(L, t, key);
  v = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
  if (!v && !lua_isnil(L, -1)) luaL_error(L, "sigv4: %s is %s, a string expected", key, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* sigv4{method =, host =, path =, query = {name = value}, headers = {name = value}, payload =, region =,
   service =, access_key =, secret_key =, session_token =, time =, expires =} -> {authorization =, date =,
   query =, signature =, signed_headers =, canonical =, string_to_sign =} | nil, err (sv_core.h's
   sv_sigv4_sign: header auth without expires, a presigned URL's query with it) */
static int l_sigv4(lua_State *L) {
  const char *q[2 * 33], *h[2 * 33];
  sv_sigv4 r;
  sv_sigv4_out o;
  sv_error err;
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(&r, 0, sizeof r);
  r.method = opt_field(L, 1, "method"), r.host = opt_field(L, 1, "host"), r.path = opt_field(L, 1, "path");
  r.payload = opt_field(L, 1, "payload"), r.region = opt_field(L, 1, "region");
  r.service = opt_field(L, 1, "service"), r.access_key = opt_field(L, 1, "access_key");
  r.secret_key = opt_field(L, 1, "secret_key"), r.token = opt_field(L, 1, "session_token");
  r.time = lsv_need_number(L, 1, "time", -1, 1e12, "sigv4");
  lua_getfield(L, 1, "expires");
  r.expires = lua_isnil(L, -1) ? 0 : (long)luaL_checknumber(L, -1);
  lua_pop(L, 1);
  r.nquery = string_pairs(L, 1, "query", q, 32), r.query = q;
  r.nheaders = string_pairs(L, 1, "headers", h, 32), r.headers = h;
  sv_error_clear(&err);
  if (sv_sigv4_sign(&r, &o, &err) < 0) return lsv_fail(L, &err);
  lua_createtable(L, 0, 7);
  lsv_set_cstr(L, "date", o.date);
  lsv_set_cstr(L, "signature", o.signature);
  lsv_set_str(L, "canonical", o.canonical.data, o.canonical.len);
  lsv_set_str(L, "string_to_sign", o.to_sign.data, o.to_sign.len);
  lsv_set_str(L, "signed_headers", o.signed_headers.data, o.signed_headers.len);
  lsv_set_str(L, "query", o.query.data, o.query.len);
  if (o.authorization.len) lsv_set_str(L, "authorization", o.authorization.data, o.authorization.len);
  sv_sigv4_free(&o);
  return 1;
}

/* uri_encode(s [, keep_slash]) -> s percent-encoded as SigV4 and S3 do (sv_uri_encode) */
static int l_uri_encode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  sv_buf b = { 0 };
  sv_uri_encode(&b, s, len, lua_toboolean(L, 2));
  if (b.oom) return luaL_error(L, "uri_encode: out of memory");
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  sv_buf_free(&b);
  return 1;
}

static const luaL_Reg funcs[] = { { "sigv4", l_sigv4 }, { "uri_encode", l_uri_encode }, { NULL, NULL } };

LUAOPEN_API int luaopen_starvideos_sigv4(lua_State *L) {
  lsv_error_metatable(L); /* the error tables of a request it refuses */
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  sv_s3_open_parts(L); /* stream() and part(): an upload's stream with each part's sums (parts.c) */
  lsv_set_cstr(L, "_VERSION", "starvideos.sigv4 0.4.0");
  return 1;
}
