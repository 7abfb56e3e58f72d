/* starvideos.part: the handle on a download's .part (sv_part, the core's
   part.c), the one both transports write through: core.part_open makes one
   for a transport written in Lua, t:result hands a whole libcurl download's
   over, core.commit_start takes it.  Its methods:
     write(s) -> true | nil, message              buffered
     chunks(s, i) -> i', bytes | nil, message     the whole chunks of a chunked
                                                  body in s from i (sv_part_chunks)
     flush() -> true | nil, message
     at() -> bytes accepted (the offset of the next byte)
     truncate(at) -> true | nil, message          cut there, write on from there
     prepare() -> fd, size, path | nil, message   flushed: part_commit's
                                                  arguments, for another thread
     same() -> boolean                            the name is still this file, as
                                                  written (sv_part_same)
     close() -> true | nil, message               flush and close (also __gc)
   starvideos.sign's part_commit(fd, size, part, dest) commits prepare()'s values. */
#include "lsv.h"

#include "compat.h"

#define PART_MT "starvideos.part"

typedef struct lpart { sv_part *p; } lpart;

static sv_part *check_part(lua_State *L) {
  lpart *lp = luaL_checkudata(L, 1, PART_MT);
  if (!lp->p) luaL_error(L, "the .part handle was closed");
  return lp->p;
}

static int p_write(lua_State *L) {
  sv_part *p = check_part(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  sv_buf why = {0};
  return lsv_answer(L, sv_part_write(p, s, len, &why), &why);
}

static int p_chunks(lua_State *L) {
  sv_part *p = check_part(L);
  size_t len, pos;
  const char *s = luaL_checklstring(L, 2, &len);
  lua_Integer from = luaL_checkinteger(L, 3);
  double bytes;
  sv_buf why = {0};
  if (from < 1) from = 1;
  pos = (size_t)from - 1;
  if (pos > len) pos = len;
  bytes = sv_part_chunks(p, s, len, &pos, &why);
  if (bytes < 0) return lsv_answer(L, -1, &why);
  sv_buf_free(&why);
  lua_pushinteger(L, (lua_Integer)pos + 1);
  lua_pushnumber(L, bytes);
  return 2;
}

static int p_flush(lua_State *L) {
  sv_part *p = check_part(L);
  sv_buf why = {0};
  return lsv_answer(L, sv_part_flush(p, &why), &why);
}

static int p_at(lua_State *L) {
  lua_pushnumber(L, sv_part_at(check_part(L)));
  return 1;
}

static int p_truncate(lua_State *L) {
  sv_part *p = check_part(L);
  sv_buf why = {0};
  return lsv_answer(L, sv_part_truncate(p, (double)luaL_checknumber(L, 2), &why), &why);
}

static int p_prepare(lua_State *L) {
  sv_part *p = check_part(L);
  sv_buf why = {0};
  if (sv_part_flush(p, &why) != 0) return lsv_answer(L, -1, &why);
  sv_buf_free(&why);
  lua_pushinteger(L, (lua_Integer)sv_part_fd(p));
  lua_pushnumber(L, sv_part_size(p));
  lua_pushstring(L, sv_part_path(p));
  return 3;
}

static int p_same(lua_State *L) {
  lua_pushboolean(L, sv_part_same(check_part(L)));
  return 1;
}

static int p_close(lua_State *L) {
  lpart *lp = luaL_checkudata(L, 1, PART_MT);
  sv_buf why = {0};
  int rc = 0;
  if (lp->p) {
    rc = sv_part_close(lp->p, &why);
    sv_part_free(lp->p);
    lp->p = NULL;
  }
  return lsv_answer(L, rc, &why);
}

void lsv_part_class(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "write", p_write }, { "chunks", p_chunks }, { "flush", p_flush }, { "at", p_at }, { "truncate", p_truncate },
    { "prepare", p_prepare }, { "same", p_same }, { "close", p_close }, { NULL, NULL }
  };
  lsv_new_class(L, PART_MT, methods, p_close);
}

sv_part **lsv_push_part(lua_State *L) {
  lpart *lp = lsv_new_object(L, sizeof *lp, 0, PART_MT);
  return &lp->p;
}

sv_part *lsv_take_part(lua_State *L, int idx) {
  lpart *lp = luaL_checkudata(L, idx, PART_MT);
  sv_part *p = lp->p;
  if (!p) luaL_argerror(L, idx, "the .part handle was already committed or closed");
  lp->p = NULL;
  return p;
}

/* part_open(path, offset[, left]) -> handle, offset | nil, message: the .part a Lua transport writes through one
   descriptor, and where it goes on (sv_part_resume: left, a handle an unfinished attempt left at path, taken, while
   it is still that file; else the file at path from offset; else from byte 0). */
static int l_part_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  double offset = (double)luaL_checknumber(L, 2);
  sv_buf why = {0};
  sv_part **slot;
  lua_settop(L, 3);
  slot = lsv_push_part(L); /* (may raise: before left is taken) */
  *slot = sv_part_resume(lua_isnil(L, 3) ? NULL : lsv_take_part(L, 3), path, &offset, &why);
  if (*slot) {
    sv_buf_free(&why);
    lua_pushnumber(L, (lua_Number)offset);
    return 2;
  }
  lua_pushnil(L);
  lua_pushstring(L, sv_buf_cstr(&why));
  sv_buf_free(&why);
  return 2;
}

/* part_commit(fd, size, part, dest [, mp4 [, mark]]) -> true, hash, marked | nil,
   message [, true: not a whole MP4]: sv_part_commit, for a thread of nginx's pool given
   a handle's prepare() values (the handle stays open in the worker until it
   answers); the hash of its upvalue's hasher (starvideos.sign's part_commit:
   SHA-256; "" without one), the check of mp4 (lsv_opt_mp4) and the mark (a box's
   bytes; marked as lsv_push_mark) in the same read. */
static int l_part_commit(lua_State *L) {
  const sv_hasher *hash = lua_touserdata(L, lua_upvalueindex(1));
  int fd = (int)luaL_checkinteger(L, 1), rc;
  lua_Number size = luaL_checknumber(L, 2);
  const char *part = luaL_checkstring(L, 3), *dest = luaL_checkstring(L, 4);
  double seconds;
  const double *mp4 = lsv_opt_mp4(L, 5, &seconds);
  char hex[SV_HASH_HEX] = "";
  sv_mark mark = {0};
  sv_buf why = {0};
  mark.box = luaL_optlstring(L, 6, NULL, &mark.len);
  rc = sv_part_commit(fd, (double)size, part, dest, hash, mp4, mark.box ? &mark : NULL, hex, &why);
  if (rc == -2) {
    lsv_answer(L, rc, &why);
    lua_pushboolean(L, 1);
    return 3;
  }
  if (rc != 0) return lsv_answer(L, rc, &why);
  sv_buf_free(&why);
  lua_pushboolean(L, 1);
  lua_pushstring(L, hex);
  return 2 + lsv_push_mark(L, mark.box ? &mark : NULL);
}

int lsv_push_mark(lua_State *L, const sv_mark *m) {
  if (!m) return 0;
  if (m->marked) lua_pushboolean(L, 1);
  else lua_pushstring(L, m->why);
  return 1;
}

/* mark_file(path, box) -> true | false, why (not markable: nothing written) | nil, message (sv_mark_file) */
static int l_mark_file(lua_State *L) {
  sv_mark m = {0};
  sv_buf why = {0};
  const char *path = luaL_checkstring(L, 1);
  m.box = luaL_checklstring(L, 2, &m.len);
  if (sv_mark_file(path, &m, &why) != 0) return lsv_answer(L, -1, &why);
  sv_buf_free(&why);
  if (m.marked) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_pushstring(L, m.why);
  return 2;
}

void lsv_push_part_commit(lua_State *L, const sv_hasher *hash) {
  lua_pushlightuserdata(L, (void *)hash);
  lua_pushcclosure(L, l_part_commit, 1);
}

const sv_hasher *lsv_opt_hasher(lua_State *L, int idx) {
  const sv_hasher *hash = lua_touserdata(L, idx);
  if (lua_isnoneornil(L, idx)) return NULL;
  if (lua_type(L, idx) != LUA_TLIGHTUSERDATA || !hash || hash->magic != SV_HASHER_MAGIC)
    luaL_argerror(L, idx, "a hasher (starvideos.sign's SHA256) expected");
  return hash;
}

const double *lsv_opt_mp4(lua_State *L, int idx, double *seconds) {
  if (!lua_toboolean(L, idx)) return NULL;
  *seconds = lua_isboolean(L, idx) ? -1 : luaL_checknumber(L, idx);
  if (!lua_isboolean(L, idx) && !(*seconds >= 0 && *seconds < 1e9))
    luaL_argerror(L, idx, "mp4: true, or the seconds expected (0 or more)");
  return seconds;
}

void lsv_open_part(lua_State *L) {
  static const luaL_Reg funcs[] = { { "part_open", l_part_open }, { "mark_file", l_mark_file }, { NULL, NULL } };
  lsv_part_class(L);
  luaL_setfuncs(L, funcs, 0);
}
