/* starvideos.lock: a journal held under the appenders' flock, or a lease
   (the core's journal.c).  core.lock_journal and core.try_lock make one. */
#include "lsv.h"

#include "compat.h"

#include <stdlib.h>
#include <unistd.h>

#define LOCK_MT "starvideos.lock"

typedef struct llock { int fd; } llock;

/* lock_journal(path[, create]) -> lock | nil, message: the journal under the
   appenders' flock, for a rewrite; with create, opened for appending (made
   when missing): lock:append(line, sync) -> true | nil, message appends under
   that one hold.  lock:replace(tmp) -> true | nil, message renames tmp over
   it; lock:unlock() (also on close and collection) lets appenders go on */
static int push_lock(lua_State *L, int fd, sv_buf *why) {
  llock *lk;
  if (fd < 0) return lsv_answer(L, -1, why);
  sv_buf_free(why);
  lk = lsv_new_object(L, sizeof *lk, 0, LOCK_MT);
  lk->fd = fd;
  return 1;
}

static int l_lock_journal(lua_State *L) {
  sv_buf why = {0};
  return push_lock(L, sv_file_lock(luaL_checkstring(L, 1), lua_toboolean(L, 2), &why), &why);
}

/* try_lock(path[, create]) -> lock | false (another holds it) | nil, message,
   "missing" (no such file, create not given) | nil, message: a lease held
   until lock:unlock(), close or collection, or the process's end */
static int l_try_lock(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  sv_buf why = {0};
  int fd = sv_file_try_lock(path, lua_toboolean(L, 2), &why);
  if (fd != SV_LOCK_BUSY && fd != SV_LOCK_MISSING) return push_lock(L, fd, &why);
  sv_buf_free(&why);
  if (fd == SV_LOCK_BUSY) { lua_pushboolean(L, 0); return 1; }
  lua_pushnil(L);
  lua_pushfstring(L, "no lease at %s", path);
  lua_pushliteral(L, "missing");
  return 3;
}

static int held_fd(lua_State *L) {
  llock *lk = luaL_checkudata(L, 1, LOCK_MT);
  if (lk->fd < 0) luaL_error(L, "the journal lock is released");
  return lk->fd;
}

static int k_append(lua_State *L) {
  size_t len;
  const char *path = luaL_checkstring(L, 2), *line = luaL_checklstring(L, 3, &len);
  sv_buf why = {0};
  return lsv_answer(L, sv_file_append_held(held_fd(L), path, line, len, lua_toboolean(L, 4), &why), &why);
}

static int k_replace(lua_State *L) {
  const char *tmp = luaL_checkstring(L, 2), *path = luaL_checkstring(L, 3);
  sv_buf why = {0};
  return lsv_answer(L, sv_file_replace(held_fd(L), tmp, path, &why), &why);
}

static int k_unlock(lua_State *L) {
  llock *lk = luaL_checkudata(L, 1, LOCK_MT);
  if (lk->fd >= 0) { close(lk->fd); lk->fd = -1; }
  return 0;
}

/* journal_writer(path[, inline]) -> writer: the journal's writer thread
   (sv_jwriter), or with inline none: each put written before it returns.
   writer:put(lines, sync[, expect]) -> ticket: queued (expect: written only
   when the file's bytes after offset expect are all the writer's own);
   writer:poll() -> the last ticket done, and {ticket = why | true (a
   conflict)} for those that failed since the last poll, or nil;
   writer:wait(ticket[, seconds]) waits for it (at most seconds): whether it
   is done; writer:close() (also on collection)
   writes what is queued, then ends the thread. */
#define WRITER_MT "starvideos.writer"

typedef struct lwriter { sv_jwriter *w; } lwriter;

static sv_jwriter *checked_writer(lua_State *L) {
  lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
  if (!lw->w) luaL_error(L, "the journal's writer is closed");
  return lw->w;
}

static int l_journal_writer(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lwriter *lw = lsv_new_object(L, sizeof *lw, 0, WRITER_MT);
  lw->w = sv_jwriter_new(path, lua_toboolean(L, 2));
  if (!lw->w) return luaL_error(L, "out of memory");
  return 1;
}

static int w_put(lua_State *L) {
  sv_jwriter *w = checked_writer(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  long long ticket = sv_jwriter_put(w, data, len, lua_toboolean(L, 3), luaL_optnumber(L, 4, -1));
  if (!ticket) return luaL_error(L, "out of memory");
  lua_pushnumber(L, (lua_Number)ticket);
  return 1;
}

static int w_poll(lua_State *L) {
  sv_jfail *fails;
  size_t n, i;
  long long done = sv_jwriter_poll(checked_writer(L), &fails, &n);
  lua_pushnumber(L, (lua_Number)done);
  if (!n) return 1;
  lua_createtable(L, 0, (int)n);
  for (i = 0; i < n; i++) {
    if (fails[i].conflict) lua_pushboolean(L, 1);
    else lua_pushstring(L, fails[i].why);
    lua_rawseti(L, -2, (lua_Integer)fails[i].ticket);
  }
  free(fails);
  return 2;
}

static int w_wait(lua_State *L) {
  lua_pushboolean(L, sv_jwriter_wait(checked_writer(L), (long long)luaL_checknumber(L, 2), luaL_optnumber(L, 3, -1)));
  return 1;
}

static int w_close(lua_State *L) {
  lwriter *lw = luaL_checkudata(L, 1, WRITER_MT);
  sv_jwriter_free(lw->w);
  lw->w = NULL;
  return 0;
}

void lsv_open_lock(lua_State *L) {
  static const luaL_Reg methods[] = { { "replace", k_replace }, { "append", k_append }, { "unlock", k_unlock },
                                      { NULL, NULL } };
  static const luaL_Reg wmethods[] = { { "put", w_put }, { "poll", w_poll }, { "wait", w_wait },
                                       { "close", w_close }, { NULL, NULL } };
  static const luaL_Reg funcs[] = { { "lock_journal", l_lock_journal }, { "try_lock", l_try_lock },
                                    { "journal_writer", l_journal_writer }, { NULL, NULL } };
  lsv_new_class(L, LOCK_MT, methods, k_unlock);
  lsv_new_class(L, WRITER_MT, wmethods, w_close);
  luaL_setfuncs(L, funcs, 0);
}
