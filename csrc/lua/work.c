/* A helper thread's handle: a Lua value holding a work (the core's sv_work, work.c) of one of the binding's kinds,
   each a class of its own (lsv_work_class: starvideos.commit, commit.c; starvideos.hashing, sign.c;
   starvideos.run, run.c) with the same two methods: poll, nil while the thread works and then the class's results,
   and close (also __gc and __close), which lets go of the work and never waits for the thread: the thread ends on
   its own and frees what it still uses. */
#include "lsv.h"

#include "compat.h"

#include <string.h>

typedef struct lwork { sv_work *w; } lwork; /* w: NULL once closed */

#define CLASS(L) ((const lsv_work_class *)lua_touserdata((L), lua_upvalueindex(1)))

sv_work **lsv_push_work(lua_State *L, const lsv_work_class *c) {
  lwork *lw = lsv_new_object(L, sizeof *lw, 0, c->mt);
  return &lw->w;
}

int lsv_start_work(lua_State *L, const lsv_work_class *c, const sv_work_kind *kind, size_t size, size_t at) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  sv_work **slot = lsv_push_work(L, c); /* (made first: a memory error raised here loses no thread) */
  sv_work *w = sv_work_new(kind, size + len + 1);
  if (!w) {
    lua_pushnil(L);
    lua_pushliteral(L, "out of memory");
    return 2;
  }
  memcpy((char *)sv_work_data(w) + at, s, len + 1);
  *slot = w;
  sv_work_start(w, 1); /* (no thread to be had: done here) */
  return 1;
}

/* handle:poll() -> nothing while the thread works, then the class's results */
static int w_poll(lua_State *L) {
  const lsv_work_class *c = CLASS(L);
  lwork *lw = luaL_checkudata(L, 1, c->mt);
  if (!lw->w) return luaL_error(L, "the %s handle was closed", c->what);
  if (sv_work_poll(lw->w)) return 0;
  return c->push(L, lw->w);
}

static int w_close(lua_State *L) {
  lwork *lw = luaL_checkudata(L, 1, CLASS(L)->mt);
  sv_work_close(lw->w);
  lw->w = NULL;
  return 0;
}

void lsv_new_work_class(lua_State *L, const lsv_work_class *c) {
  static const luaL_Reg methods[] = { { "poll", w_poll }, { "close", w_close }, { NULL, NULL } };
  luaL_newmetatable(L, c->mt);
  lua_newtable(L);
  lua_pushlightuserdata(L, (void *)c);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushlightuserdata(L, (void *)c);
  lua_pushcclosure(L, w_close, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__gc");
  lua_setfield(L, -2, "__close");
  lsv_set_cstr(L, "__metatable", "starvideos");
  lua_pop(L, 1);
}
