/* starvideos.stream: a check of a video's bytes as they pass (the core's
   sv_stream, stream.c), made by starvideos.sign's stream() or a rock's
   (lsv_push_stream, with what the rock keeps beside it: lsv.h's lsv_also). */
#include "lsv.h"

#include "compat.h"

#include <stdio.h>
#include <string.h>

/* tap first: the libcurl transport feeds it (lsv.h's STREAM_MT); tapped, largest: what it was fed, the most at
   once; why: what the check said when it refused the bytes (failed) */
typedef struct lstream {
  sv_tap tap;
  sv_stream *s;
  lsv_also *also;
  double tapped;
  size_t largest;
  int failed;
  char why[256];
} lstream;

/* The bytes into the stream, and those it hashed into also. */
static int feed(lstream *ls, const char *p, size_t n, sv_buf *why) {
  double before = sv_stream_at(ls->s), hashed;
  if (sv_stream_feed(ls->s, p, n, why) < 0) return -1;
  hashed = sv_stream_at(ls->s) - before;
  if (ls->also && hashed > 0 && ls->also->feed(ls->also, p + n - (size_t)hashed, (size_t)hashed, why) < 0) return -1;
  return 0;
}

/* The tap's feed: the bytes into the stream as they come (a write's few KiB: never a whole part in one step). */
static int tap_feed(sv_tap *tap, const char *p, size_t n) {
  lstream *ls = (lstream *)tap;
  sv_buf why = { 0 };
  if (!ls->s || ls->failed) return -1;
  if (feed(ls, p, n, &why) < 0) {
    ls->failed = 1;
    snprintf(ls->why, sizeof ls->why, "%s", sv_buf_cstr(&why));
    sv_buf_free(&why);
    return -1;
  }
  ls->tapped += (double)n;
  if (n > ls->largest) ls->largest = n;
  return 0;
}

static lstream *check_open(lua_State *L) {
  lstream *ls = luaL_checkudata(L, 1, STREAM_MT);
  if (!ls->s) luaL_error(L, "the stream was closed");
  return ls;
}

static sv_stream *check_stream(lua_State *L) { return check_open(L)->s; }

/* s:feed(bytes) -> true | nil, why (no whole MP4 can come of them: the check's words) */
static int s_feed(lua_State *L) {
  lstream *ls = check_open(L);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  sv_buf why = { 0 };
  return lsv_answer(L, feed(ls, p, n, &why), &why);
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
/* s:mark(box) -> true | nil, why: box fed after the whole MP4 fed so far (its last box's end: sv_stream_markable),
   hashed with it (and by also); nothing fed when it cannot follow */
static int s_mark(lua_State *L) {
  lstream *ls = check_open(L);
  size_t n;
  const char *box = luaL_checklstring(L, 2, &n);
  sv_buf why = { 0 };
  int rc = sv_stream_markable(ls->s, &why);
  return lsv_answer(L, rc < 0 ? rc : feed(ls, box, n, &why), &why);
}

static int s_from(lua_State *L) { lua_pushnumber(L, sv_stream_from(check_stream(L))); return 1; }
static int s_at(lua_State *L) { lua_pushnumber(L, sv_stream_at(check_stream(L))); return 1; }

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
  if (ls->also) ls->also->free(ls->also);
  ls->also = NULL;
  return 0;
}

/* The class, registered unless a module of this Lua state did it first (the same class: stream.c's). */
static void stream_class(lua_State *L) {
  static const luaL_Reg methods[] = { { "feed", s_feed }, { "from", s_from }, { "at", s_at }, { "save", s_save },
                                      { "finish", s_finish }, { "tapped", s_tapped }, { "close", s_gc }, { "mark", s_mark },
                                      { NULL, NULL } };
  int absent;
  luaL_getmetatable(L, STREAM_MT);
  absent = lua_isnil(L, -1);
  lua_pop(L, 1);
  if (absent) lsv_new_class(L, STREAM_MT, methods, s_gc);
}

int lsv_push_stream(lua_State *L, double expected, const char *saved, lsv_also *also) {
  sv_buf why = { 0 };
  lstream *ls;
  stream_class(L);
  ls = lsv_new_object(L, sizeof *ls, 0, STREAM_MT);
  ls->tap.feed = tap_feed;
  ls->also = also; /* (the userdata owns it from here: its __gc frees it) */
  ls->s = sv_stream_new(expected, saved, &why);
  if (!ls->s) return lsv_answer(L, -1, &why);
  return 1;
}

lsv_also *lsv_stream_also(lua_State *L, int idx, int (*also_feed)(lsv_also *, const char *, size_t, sv_buf *),
                          const char *what) {
  lstream *ls = luaL_checkudata(L, idx, STREAM_MT);
  if (!ls->s) luaL_error(L, "the stream was closed");
  if (!ls->also || ls->also->feed != also_feed) luaL_error(L, "%s: not a stream that keeps them", what);
  return ls->also;
}

/* stream(seconds [, saved]) -> stream | nil, why: seconds the video lasts (< 0: any), saved a state
   stream:save() gave (nil: from byte 0) */
static int l_stream(lua_State *L) {
  return lsv_push_stream(L, luaL_checknumber(L, 1), luaL_optstring(L, 2, NULL), NULL);
}

void lsv_open_stream(lua_State *L) {
  stream_class(L);
  lua_pushcfunction(L, l_stream);
  lua_setfield(L, -2, "stream");
}
