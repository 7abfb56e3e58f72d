/* starvideos.sign: Standard Webhooks signatures and SHA-256 (the core's sign.c, on libcrypto), a
   module of its own so that libcrypto is loaded only where a signature is made
   or checked: notify (notify.lua) and starvideos.verify_webhook load it on
   first use (options.lazy), `require "starvideos"` never does.  Like
   starvideos.core, it never calls a Lua function. */
#include "lsv.h"

#include "compat.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A file's SHA-256 taken on a helper thread (a job's parent checked while a frame loop goes on): a work (work.c),
   whose handle dropped while the thread hashes costs its caller nothing. */
typedef struct hashing_job {
  int rc; /* set by the thread, with hex or why */
  char hex[SV_SHA256_HEX + 1];
  char why[512];
  char path[1]; /* (its whole name: the data is made as long as it needs) */
} hashing_job;

static void hashing_run(sv_work *w, void *data) {
  hashing_job *h = data;
  sv_buf why = { 0 };
  (void)w;
  h->rc = sv_sha256(NULL, 0, h->path, h->hex, &why);
  if (h->rc != 0) snprintf(h->why, sizeof h->why, "%s", sv_buf_cstr(&why));
  sv_buf_free(&why);
}

static const sv_work_kind hashing_kind = { hashing_run, NULL, NULL };

static int hashing_push(lua_State *L, sv_work *w) {
  hashing_job *h = sv_work_data(w);
  if (h->rc == 0) {
    lua_pushstring(L, h->hex);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, h->why);
  return 2;
}

static const lsv_work_class hashing_class = { "starvideos.hashing", "hashing", hashing_push };

/* sha256_start(path) -> handle | nil, why: the file's SHA-256 taken on a helper thread (at the lowest priority),
   so that the caller goes on; handle:poll() -> nil while it works, then hex | nil, why (as sha256_file's);
   handle:close() (or its collection) never waits for the thread (it lets go of the work when it ends) */
static int l_sha256_start(lua_State *L) {
  return lsv_start_work(L, &hashing_class, &hashing_kind, sizeof(hashing_job), offsetof(hashing_job, path));
}

/* An Ed25519 signer (a provenance record's): its key, read once, lives in C; Lua sees a handle whose tostring
   names no byte of it. */
#define ED25519_MT "starvideos.ed25519"

static sv_ed25519 **check_key(lua_State *L) {
  sv_ed25519 **k = luaL_checkudata(L, 1, ED25519_MT);
  if (!*k) luaL_error(L, "the signing key was closed");
  return k;
}

/* key:sign(message) -> the signature in base64 (88 characters) */
static int k_sign(lua_State *L) {
  sv_ed25519 **k = check_key(L);
  size_t len;
  const char *msg = luaL_checklstring(L, 2, &len);
  char b64[SV_ED25519_B64];
  if (sv_ed25519_sign(*k, msg, len, b64) != 0) return luaL_error(L, "Ed25519 signing failed (libcrypto)");
  lua_pushstring(L, b64);
  return 1;
}

/* key:public() -> its raw public key (32 bytes) */
static int k_public(lua_State *L) {
  unsigned char pub[SV_ED25519_PUBLIC];
  if (sv_ed25519_public(*check_key(L), pub) != 0) return luaL_error(L, "Ed25519: no public key (libcrypto)");
  lua_pushlstring(L, (const char *)pub, sizeof pub);
  return 1;
}

static int k_gc(lua_State *L) {
  sv_ed25519 **k = luaL_checkudata(L, 1, ED25519_MT);
  sv_ed25519_free(*k);
  *k = NULL;
  return 0;
}

static int k_tostring(lua_State *L) {
  (void)luaL_checkudata(L, 1, ED25519_MT);
  lua_pushliteral(L, "starvideos.ed25519 (a signing key)");
  return 1;
}

/* ed25519_key(path) -> key | nil, why (naming path, never the key: sv_ed25519_load) */
static int l_ed25519_key(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  sv_buf why = { 0 };
  sv_ed25519 **k = lsv_new_object(L, sizeof *k, 0, ED25519_MT);
  *k = sv_ed25519_load(path, &why);
  if (!*k) return lsv_answer(L, -1, &why);
  sv_buf_free(&why);
  return 1;
}

/* ed25519_verify(pubkey_path, message, signature_b64) -> true | false, and the key's raw public bytes | nil, why
   (the key file cannot be used) */
static int l_ed25519_verify(lua_State *L) {
  size_t len, slen;
  const char *path = luaL_checkstring(L, 1), *msg = luaL_checklstring(L, 2, &len), *sig = luaL_checklstring(L, 3, &slen);
  unsigned char pub[SV_ED25519_PUBLIC];
  sv_buf why = { 0 };
  int rc = sv_ed25519_verify(path, msg, len, sig, slen, pub, &why);
  if (rc < 0) return lsv_answer(L, -1, &why);
  sv_buf_free(&why);
  lua_pushboolean(L, rc);
  lua_pushlstring(L, (const char *)pub, sizeof pub);
  return 2;
}

static const luaL_Reg funcs[] = { { "sign", l_webhook_sign },     { "match", l_webhook_match },
                                  { "sha256", l_sha256 },         { "sha256_file", l_sha256_file },
                                  { "sha256_start", l_sha256_start },
                                  { "ed25519_key", l_ed25519_key }, { "ed25519_verify", l_ed25519_verify },
                                  { NULL, NULL } };

LUAOPEN_API int luaopen_starvideos_sign(lua_State *L) {
  lsv_error_metatable(L); /* the error tables of a bad secret */
  lua_pop(L, 1);
  lsv_new_work_class(L, &hashing_class);
  {
    static const luaL_Reg key_methods[] = { { "sign", k_sign }, { "public", k_public }, { "close", k_gc },
                                            { NULL, NULL } };
    lsv_new_class(L, ED25519_MT, key_methods, k_gc);
    luaL_getmetatable(L, ED25519_MT);
    lua_pushcfunction(L, k_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
  }
  luaL_newlib(L, funcs);
  lsv_set_cstr(L, "_VERSION", "starvideos.sign 0.4.0");
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
