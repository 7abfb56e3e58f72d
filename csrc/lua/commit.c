/* starvideos.commit: a download's commit on a helper thread (the core's
   sv_commit, part.c), made by core.commit_start from a .part handle. */
#include "lsv.h"

#include "compat.h"

#define COMMIT_MT "starvideos.commit"

typedef struct lcommit { sv_commit *c; } lcommit;

/* commit_start(part, dest [, hasher [, mp4]]) -> handle | nil, message: the
   .part handle (of core.part_open, or a whole download's from t:result) flushed,
   checked to be a whole MP4 (mp4: true, or the seconds expected: lsv_opt_mp4)
   and hashed with hasher (a module's sv_hasher: starvideos.sign's SHA256) in
   one read, synced,
   checked (its size, its name still that file), renamed to dest and the
   folder synced, on a helper thread (sv_commit_start), so that the caller
   does not wait for the disk nor for the hash; the .part handle is spent.
   handle:poll() says when it is done. */
static int l_commit_start(lua_State *L) {
  const char *dest = luaL_checkstring(L, 2);
  const sv_hasher *hash = lsv_opt_hasher(L, 3);
  double seconds;
  const double *mp4 = lsv_opt_mp4(L, 4, &seconds);
  char why[256];
  lcommit *lc;
  lua_settop(L, 2);
  lc = lsv_new_object(L, sizeof *lc, 0, COMMIT_MT); /* made before the .part is taken from its handle */
  lc->c = sv_commit_start(lsv_take_part(L, 1), dest, hash, mp4, why, sizeof why);
  if (!lc->c) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  return 1;
}

/* handle:poll() -> nil while the thread works, then true [, hash] | false,
   message [, true: not a whole MP4] (the hash in hex, when a hasher was given) */
static int c_poll(lua_State *L) {
  lcommit *lc = luaL_checkudata(L, 1, COMMIT_MT);
  const char *why = "", *hex = "";
  int rc;
  if (!lc->c) return luaL_error(L, "the commit handle was closed");
  rc = sv_commit_poll(lc->c, &why, &hex); /* before why is read */
  if (rc > 0) return 0;
  lua_pushboolean(L, rc == 0);
  if (rc == 0 && !*hex) return 1;
  lua_pushstring(L, rc == 0 ? hex : why);
  if (rc != -2) return 2;
  lua_pushboolean(L, 1);
  return 3;
}

/* collected or closed: waits for the thread when it still runs */
static int c_gc(lua_State *L) {
  lcommit *lc = luaL_checkudata(L, 1, COMMIT_MT);
  if (lc->c) { sv_commit_free(lc->c); lc->c = NULL; }
  return 0;
}

void lsv_open_commit(lua_State *L) {
  static const luaL_Reg methods[] = { { "poll", c_poll }, { "close", c_gc }, { NULL, NULL } };
  static const luaL_Reg funcs[] = { { "commit_start", l_commit_start }, { NULL, NULL } };
  lsv_new_class(L, COMMIT_MT, methods, c_gc);
  luaL_setfuncs(L, funcs, 0);
}
