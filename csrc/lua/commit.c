/* starvideos.commit: a download's commit on a helper thread (the core's
   sv_commit_start, part.c: a work, work.c), made by core.commit_start from a
   .part handle. */
#include "lsv.h"

#include "compat.h"


/* commit_start(part, dest [, hasher [, mp4 [, mark]]]) -> handle | nil, message: the
   .part handle (of core.part_open, or a whole download's from t:result) flushed,
   checked to be a whole MP4 (mp4: true, or the seconds expected: lsv_opt_mp4),
   marked (mark: a box's bytes appended after its last box, sv_mark)
   and hashed with hasher (a module's sv_hasher: starvideos.sign's SHA256) in
   one read, synced,
   checked (its size, its name still that file), renamed to dest and the
   folder synced, on a helper thread (sv_commit_start), so that the caller
   does not wait for the disk nor for the hash; the .part handle is spent.
   handle:poll() says when it is done. */
static int commit_push(lua_State *L, sv_work *c);
static const lsv_work_class commit_class = { "starvideos.commit", "commit", commit_push };

static int l_commit_start(lua_State *L) {
  const char *dest = luaL_checkstring(L, 2);
  const sv_hasher *hash = lsv_opt_hasher(L, 3);
  double seconds;
  const double *mp4 = lsv_opt_mp4(L, 4, &seconds);
  sv_mark mark = {0};
  char why[256];
  sv_work **c;
  mark.box = luaL_optlstring(L, 5, NULL, &mark.len);
  lua_settop(L, 5);
  c = lsv_push_work(L, &commit_class); /* made before the .part is taken from its handle */
  *c = sv_commit_start(lsv_take_part(L, 1), dest, hash, mp4, mark.box ? &mark : NULL, why, sizeof why);
  if (!*c) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  return 1;
}

/* handle:poll() -> nil while the thread works, then true [, hash [, marked]] | false,
   message [, true: not a whole MP4] (the hash in hex, "" when no hasher was given;
   marked: true, or why the mark could not be written (lsv_push_mark), nil without one);
   handle:close() (or its collection): the commit goes on to its end on its
   thread (a whole file takes its name), never waited for */
static int commit_push(lua_State *L, sv_work *c) {
  const char *why = "", *hex = "";
  const sv_mark *mark = NULL;
  int rc = sv_commit_result(c, &why, &hex, &mark);
  lua_pushboolean(L, rc == 0);
  if (rc == 0 && !*hex && !mark) return 1;
  lua_pushstring(L, rc == 0 ? hex : why);
  if (rc == 0) return 2 + lsv_push_mark(L, mark);
  if (rc != -2) return 2;
  lua_pushboolean(L, 1);
  return 3;
}

void lsv_open_commit(lua_State *L) {
  lsv_new_work_class(L, &commit_class);
  lua_pushcfunction(L, l_commit_start);
  lua_setfield(L, -2, "commit_start");
}
