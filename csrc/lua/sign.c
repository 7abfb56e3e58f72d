/* starvideos.sign: Standard Webhooks signatures and SHA-256 (the core's sign.c, on libcrypto), a
   module of its own so that libcrypto is loaded only where a signature is made
   or checked: notify (notify.lua) and starvideos.verify_webhook load it on
   first use (options.lazy), `require "starvideos"` never does.  Like
   starvideos.core, it never calls a Lua function. */
#include "lsv.h"

#include "compat.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The id, timestamp and body of a webhook at 2..4: strings (a timestamp may be
   an integer number); raises on any other type. */
static const char *webhook_arg(lua_State *L, int i, size_t *len) {
  if (i == 3 && lua_type(L, i) == LUA_TNUMBER) {
    lua_Number n = lua_tonumber(L, i);
    char b[32]; /* "%.0f": lua_pushfstring has no 64-bit integer on 5.1 */
    if (n != floor(n) || n < 0 || n > 9007199254740991.0) luaL_argerror(L, i, "timestamp: a whole number of seconds");
    snprintf(b, sizeof b, "%.0f", (double)n);
    lua_pushstring(L, b);
    lua_replace(L, i);
  }
  return luaL_checklstring(L, i, len);
}

/* sign(secret, id, timestamp, body) -> "v1,<base64>" | nil, err (a bad secret)
   match(secret, id, timestamp, body, signatures) -> true | false | nil, err:
   whether one of the space-separated values of signatures is the signature,
   compared in constant time (the core's sign.c) */
static int webhook(lua_State *L, int match) {
  size_t sl, il, tl, bl, hl;
  const char *secret = luaL_checklstring(L, 1, &sl), *id = webhook_arg(L, 2, &il), *ts = webhook_arg(L, 3, &tl),
             *body = webhook_arg(L, 4, &bl), *header = match ? luaL_checklstring(L, 5, &hl) : NULL;
  char out[SV_SIGN_MAX];
  sv_error err;
  sv_error_clear(&err);
  if (sv_webhook_sign(secret, sl, id, il, ts, tl, body, bl, out, &err) < 0) return lsv_fail(L, &err);
  if (match) lua_pushboolean(L, sv_webhook_match(out, header, hl));
  else lua_pushstring(L, out);
  return 1;
}

static int l_webhook_sign(lua_State *L) { return webhook(L, 0); }
static int l_webhook_match(lua_State *L) { return webhook(L, 1); }

/* sha256(s) -> 64 lowercase hex digits; sha256_file(path) -> hex | nil, why */
static int sha256(lua_State *L, int file) {
  size_t len = 0;
  const char *s = luaL_checklstring(L, 1, &len);
  char out[SV_SHA256_HEX + 1];
  sv_buf why = { 0 };
  if (sv_sha256(s, len, file ? s : NULL, out, &why) < 0) {
    lsv_answer(L, -1, &why); /* nil, why: raised for a string (libcrypto failed) */
    return file ? 2 : lua_error(L);
  }
  lua_pushstring(L, out);
  return 1;
}

static int l_sha256(lua_State *L) { return sha256(L, 0); }
static int l_sha256_file(lua_State *L) { return sha256(L, 1); }

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

static const luaL_Reg funcs[] = { { "sign", l_webhook_sign },     { "match", l_webhook_match },
                                  { "sha256", l_sha256 },         { "sha256_file", l_sha256_file },
                                  { "sigv4", l_sigv4 },           { "uri_encode", l_uri_encode },
                                  { NULL, NULL } };

LUAOPEN_API int luaopen_starvideos_sign(lua_State *L) {
  lsv_error_metatable(L); /* the error tables of a bad secret */
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lsv_set_cstr(L, "_VERSION", "starvideos.sign 0.3.0");
  /* SHA256: the hasher core.commit_start takes, run on its commit thread: this
     module then stays loaded for good (a thread may outlive the state) */
  sv_helper_pin_module();
  lua_pushlightuserdata(L, (void *)&sv_sha256_hasher);
  lua_setfield(L, -2, "SHA256");
  /* part_commit(fd, size, part, dest) -> true, sha256 | nil, message: part.c's, hashing
     (nginx's thread pool commits a download with it) */
  lsv_push_part_commit(L, &sv_sha256_hasher);
  lua_setfield(L, -2, "part_commit");
  lsv_open_stream(L); /* stream(): an upload's check of a video's bytes (csrc/lua/stream.c) */
  return 1;
}
