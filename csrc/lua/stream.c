/* starvideos.stream: an upload's check of a video's bytes as they pass (the
   core's sv_stream, stream.c), made by starvideos.sign's stream(). */
#include "lsv.h"

#include "compat.h"

#include <stdio.h>
#include <string.h>

/* tap first: the libcurl transport feeds it (lsv.h's STREAM_MT); tapped, largest: what it was fed, the most at
   once; why: what the check said when it refused the bytes (failed) */
typedef struct lstream {
  sv_tap tap;
  sv_stream *s;
  double tapped;
  size_t largest;
  int failed;
  char why[256];
} lstream;

/* The tap's feed: the bytes into the stream as they come (a write's few KiB: never a whole part in one step). */
static int tap_feed(sv_tap *tap, const char *p, size_t n) {
  lstream *ls = (lstream *)tap;
  sv_buf why = { 0 };
  if (!ls->s || ls->failed) return -1;
  if (sv_stream_feed(ls->s, p, n, &why) < 0) {
    ls->failed = 1;
    snprintf(ls->why, sizeof ls->why, "%s", sv_buf_cstr(&why));
    sv_buf_free(&why);
    return -1;
  }
  ls->tapped += (double)n;
  if (n > ls->largest) ls->largest = n;
  return 0;
}

static sv_stream *check_stream(lua_State *L) {
  lstream *ls = luaL_checkudata(L, 1, STREAM_MT);
  if (!ls->s) luaL_error(L, "the stream was closed");
  return ls->s;
}

/* stream(seconds, md5 [, saved]) -> stream | nil, why: seconds the video lasts (< 0: any), md5 whether its
   parts need an MD5 (Content-MD5), saved a state stream:save() gave (nil: from byte 0) */
static int l_stream(lua_State *L) {
  double expected = luaL_checknumber(L, 1);
  int md5 = lua_toboolean(L, 2);
  const char *saved = luaL_optstring(L, 3, NULL);
  sv_buf why = { 0 };
  lstream *ls = lsv_new_object(L, sizeof *ls, 0, STREAM_MT);
  ls->tap.feed = tap_feed;
  ls->s = sv_stream_new(expected, md5, saved, &why);
  if (!ls->s) return lsv_answer(L, -1, &why);
  return 1;
}

/* s:feed(bytes) -> true | nil, why (no whole MP4 can come of them: the check's words) */
static int s_feed(lua_State *L) {
  sv_stream *s = check_stream(L);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  sv_buf why = { 0 };
  return lsv_answer(L, sv_stream_feed(s, p, n, &why), &why);
}

/* s:tapped() -> bytes, largest: what the transport fed it (send{tap = s}), the most in one write | nil, why
   (the check refused them: no whole MP4 can come of them) */
static int s_tapped(lua_State *L) {
  lstream *ls = luaL_checkudata(L, 1, STREAM_MT);
  if (ls->failed) {
    lua_pushnil(L);
    lua_pushstring(L, ls->why);
    return 2;
  }
  lua_pushnumber(L, ls->tapped);
  lua_pushinteger(L, (lua_Integer)ls->largest);
  return 2;
}

/* s:from() -> where the next bytes fed must start; s:at() -> the bytes hashed */
static int s_from(lua_State *L) { lua_pushnumber(L, sv_stream_from(check_stream(L))); return 1; }
static int s_at(lua_State *L) { lua_pushnumber(L, sv_stream_at(check_stream(L))); return 1; }

/* s:part() -> sha256 (hex), sha256 (base64), md5 (base64, or nil) of the bytes since the last part */
static int s_part(lua_State *L) {
  sv_stream_sums sums;
  if (sv_stream_part(check_stream(L), &sums) < 0) return luaL_error(L, "libcrypto failed to hash");
  lua_pushstring(L, sums.sha256_hex);
  lua_pushstring(L, sums.sha256_b64);
  if (sums.md5_b64[0]) lua_pushstring(L, sums.md5_b64);
  else lua_pushnil(L);
  return 3;
}

/* s:save() -> the state's text | nil (not at a multiple of 64 bytes) */
static int s_save(lua_State *L) {
  sv_buf out = { 0 };
  if (sv_stream_save(check_stream(L), &out) < 0) lua_pushnil(L);
  else lua_pushlstring(L, out.data ? out.data : "", out.len);
  sv_buf_free(&out);
  return 1;
}

/* s:finish() -> sha256 (hex) | nil, why [, true: not a whole MP4 of its duration] */
static int s_finish(lua_State *L) {
  char hex[SV_SHA256_HEX + 1];
  sv_buf why = { 0 };
  int rc = sv_stream_end(check_stream(L), hex, &why);
  if (rc == 0) {
    sv_buf_free(&why);
    lua_pushstring(L, hex);
    return 1;
  }
  lsv_answer(L, -1, &why);
  lua_pushboolean(L, rc == -2);
  return 3;
}

static int s_gc(lua_State *L) {
  lstream *ls = luaL_checkudata(L, 1, STREAM_MT);
  sv_stream_free(ls->s);
  ls->s = NULL;
  return 0;
}

void lsv_open_stream(lua_State *L) {
  static const luaL_Reg methods[] = { { "feed", s_feed }, { "from", s_from }, { "at", s_at }, { "part", s_part },
                                      { "save", s_save }, { "finish", s_finish }, { "tapped", s_tapped },
                                      { "close", s_gc },
                                      { NULL, NULL } };
  static const luaL_Reg funcs[] = { { "stream", l_stream }, { NULL, NULL } };
  lsv_new_class(L, STREAM_MT, methods, s_gc);
  luaL_setfuncs(L, funcs, 0);
}
