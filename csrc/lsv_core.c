/* starvideos.core: the Lua binding of the C core.  Strings in, strings out: the
   binding never calls a Lua function (no require, no lua_call).  Lua encodes
   `extra` and decodes answers with lua-cjson itself; this file hands it the raw
   body and the core's verdict.  It holds two classes: the libcurl transport
   (starvideos.curl) and its exchanges (starvideos.xfer). */
#include "sv_core.h"

#include <lauxlib.h>
#include <lua.h>

#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef LUAOPEN_API
#define LUAOPEN_API __attribute__((visibility("default")))
#endif

#define CURL_MT "starvideos.curl"
#define XFER_MT "starvideos.xfer"
#define ERROR_MT "starvideos.error"
#define COMMIT_MT "starvideos.commit"
#define LOCK_MT "starvideos.lock"

typedef struct lhttp { sv_http *h; } lhttp;
typedef struct lxfer { sv_xfer *x; } lxfer;
typedef struct lcommit { sv_commit *c; } lcommit;
typedef struct llock { int fd; } llock;

/* --------------------------------------------------------------- errors */

static void push_error(lua_State *L, const sv_error *e) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, sv_kind_name(e->kind));
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, e->message);
  lua_setfield(L, -2, "message");
  if (e->field[0]) { lua_pushstring(L, e->field); lua_setfield(L, -2, "field"); }
  if (e->status > 0) { lua_pushinteger(L, (lua_Integer)e->status); lua_setfield(L, -2, "status"); }
  if (e->retry_after >= 0) { lua_pushnumber(L, e->retry_after); lua_setfield(L, -2, "retry_after"); }
  if (e->maybe_created) { lua_pushboolean(L, 1); lua_setfield(L, -2, "maybe_created"); }
  if (e->id[0]) {
    lua_pushstring(L, e->id);
    lua_setfield(L, -2, "id");
    if (e->maybe_created) { lua_pushboolean(L, 1); lua_setfield(L, -2, "created"); }
  }
  luaL_setmetatable(L, ERROR_MT);
}

static int fail_with(lua_State *L, const sv_error *e) {
  lua_pushnil(L);
  push_error(L, e);
  return 2;
}

/* One readable line: "kind: message". */
static int error_tostring(lua_State *L) {
  const char *kind, *msg;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "kind");
  lua_getfield(L, 1, "message");
  kind = lua_tostring(L, -2);
  msg = lua_tostring(L, -1);
  lua_pushfstring(L, "%s: %s", kind ? kind : "error", msg ? msg : "(no message)");
  return 1;
}

static int error_concat(lua_State *L) {
  luaL_tolstring(L, 1, NULL); /* __tostring for the error, as-is for strings */
  luaL_tolstring(L, 2, NULL);
  lua_concat(L, 2);
  return 1;
}

/* A Lua error table back into an sv_error (kind, status, retry_after). */
static void to_error(lua_State *L, int idx, sv_error *e) {
  const char *kind;
  int k;
  sv_error_clear(e);
  lua_getfield(L, idx, "kind");
  kind = lua_tostring(L, -1);
  for (k = 0; kind && k <= SV_E_IO; k++)
    if (strcmp(sv_kind_name((sv_kind)k), kind) == 0) { e->kind = (sv_kind)k; break; }
  lua_getfield(L, idx, "status");
  e->status = lua_isnumber(L, -1) ? (long)lua_tointeger(L, -1) : 0;
  lua_getfield(L, idx, "retry_after");
  e->retry_after = lua_isnumber(L, -1) ? (double)lua_tonumber(L, -1) : -1;
  lua_pop(L, 3);
}

/* ------------------------------------------------- Lua table -> params */

/* A table that is a sequence of 1..n (n may be 0) becomes LIST, others TABLE. */
static int table_is_list(lua_State *L, int idx, size_t *n) {
  size_t count = 0;
  lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > len) {
      lua_pop(L, 1);
      return 0;
    }
    count++;
  }
  *n = count;
  return (lua_Integer)count == len;
}

static void scalar(lua_State *L, int idx, sv_value *v) {
  memset(v, 0, sizeof *v);
  switch (lua_type(L, idx)) {
  case LUA_TNIL: v->type = SV_V_NIL; break;
  case LUA_TBOOLEAN: v->type = SV_V_BOOL; v->boolean = lua_toboolean(L, idx); break;
  case LUA_TNUMBER: v->type = SV_V_NUMBER; v->num = (double)lua_tonumber(L, idx); break;
  case LUA_TSTRING: v->type = SV_V_STRING; v->str = lua_tolstring(L, idx, &v->len); break;
  case LUA_TTABLE: v->type = SV_V_TABLE; break;
  default:
    v->type = SV_V_OTHER;
    v->str = luaL_typename(L, idx);
    v->len = strlen(v->str);
  }
}

/* Keep the value on top of the stack alive in the anchors table, and pop it.
   The stack depth stays the same however many fields and lists there are. */
static void anchor(lua_State *L, int anchors) {
  lua_rawseti(L, anchors, (int)lua_rawlen(L, anchors) + 1);
}

/* Fill v from the value at idx.  Lists (and extra's keys) get their items in a new
   userdata kept in the anchors table. */
static void value(lua_State *L, int idx, sv_value *v, int is_extra, int anchors) {
  size_t n, i;
  scalar(L, idx, v);
  if (v->type != SV_V_TABLE) return;
  idx = lua_absindex(L, idx);
  if (table_is_list(L, idx, &n) && !(is_extra && n > 0)) {
    sv_value *items = lua_newuserdatauv(L, sizeof(sv_value) * (n ? n : 1), 0);
    anchor(L, anchors);
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, idx, (int)i + 1);
      scalar(L, -1, &items[i]); /* the table keeps the string alive */
      lua_pop(L, 1);
    }
    v->type = SV_V_LIST;
    v->items = items;
    v->n = n;
  } else if (is_extra) {
    /* extra: only its keys matter to the validator; its JSON text comes from Lua */
    sv_field *fields;
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) { lua_pop(L, 1); count++; }
    fields = lua_newuserdatauv(L, sizeof(sv_field) * (count ? count : 1), 0);
    anchor(L, anchors);
    i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      memset(&fields[i], 0, sizeof fields[i]);
      if (lua_type(L, -1) == LUA_TSTRING) fields[i].name = lua_tolstring(L, -1, &fields[i].name_len);
      else { fields[i].name = ""; fields[i].name_len = 0; }
      fields[i].value.type = SV_V_OTHER;
      i++;
    }
    v->fields = fields;
    v->n = count;
  }
}

/* Convert the params table at idx (and the JSON text of `extra` at extra_idx, when
   given).  Pushes one table that keeps every converted piece alive while p is in
   use.  Returns 0 or -1 with err set. */
static int to_params(lua_State *L, int idx, int extra_idx, sv_params *p, sv_error *err) {
  size_t count = 0, i = 0;
  sv_field *fields;
  int anchors;
  idx = lua_absindex(L, idx);
  sv_error_clear(err);
  memset(p, 0, sizeof *p);
  luaL_checkstack(L, 8, "starvideos: converting params");
  if (!lua_isnoneornil(L, extra_idx)) p->extra_json = luaL_checklstring(L, extra_idx, &p->extra_len);
  lua_newtable(L);
  anchors = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      char key[64];
      if (lua_type(L, -1) == LUA_TNUMBER) snprintf(key, sizeof key, "[%.14g]", (double)lua_tonumber(L, -1));
      else snprintf(key, sizeof key, "[%s]", luaL_typename(L, -1));
      lua_pop(L, 1);
      return sv_error_set(err, SV_E_INVALID, key, "%s: unknown field (params take named fields such as model and prompt)", key);
    }
    count++;
  }
  fields = lua_newuserdatauv(L, sizeof(sv_field) * (count ? count : 1), 0);
  anchor(L, anchors);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    sv_field *f = &fields[i++];
    f->name = lua_tolstring(L, -2, &f->name_len); /* the params table keeps its keys alive */
    value(L, -1, &f->value, f->name_len == 5 && memcmp(f->name, "extra", 5) == 0, anchors);
    lua_pop(L, 1); /* the value; the key stays for lua_next */
  }
  p->fields = fields;
  p->n = count;
  return 0;
}

/* ------------------------------------------------------------ module */

/* validate(params [, extra_json]) -> true | nil, err */
static int l_validate(lua_State *L) {
  sv_params p;
  sv_error err;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (to_params(L, 1, 2, &p, &err) || sv_validate(&p, NULL, &err)) return fail_with(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

/* build_create(params [, extra_json]) -> path, body | nil, err */
static int l_build_create(lua_State *L) {
  sv_params p;
  sv_error err;
  sv_buf body;
  const char *path;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (to_params(L, 1, 2, &p, &err)) return fail_with(L, &err);
  sv_buf_init(&body);
  if (sv_build_create(&p, &body, &path, &err)) { sv_buf_free(&body); return fail_with(L, &err); }
  lua_pushstring(L, path);
  lua_pushlstring(L, sv_buf_cstr(&body), body.len);
  sv_buf_free(&body);
  return 2;
}

/* result_path(id) -> path | nil, err */
static int l_result_path(lua_State *L) {
  size_t len;
  const char *id = luaL_checklstring(L, 1, &len);
  sv_buf out;
  sv_error err;
  sv_buf_init(&out);
  sv_error_clear(&err);
  if (sv_result_path(id, len, &out, &err)) { sv_buf_free(&out); return fail_with(L, &err); }
  lua_pushlstring(L, sv_buf_cstr(&out), out.len);
  sv_buf_free(&out);
  return 1;
}

/* task_id(body) -> the task id a JSON answer names, or nil (even from a body
   lua-cjson refuses) */
static int l_task_id(lua_State *L) {
  size_t len;
  const char *body = luaL_checklstring(L, 1, &len);
  char id[sizeof(((sv_error *)0)->id)];
  if (sv_json_task_id(body, len, id, sizeof id) != 0) return 0;
  lua_pushstring(L, id);
  return 1;
}

/* A decoded answer made plain, in place, the way a task is promised to look:
   lua-cjson's null (a NULL light userdata) removed, and on 5.3 and later a
   float that holds a whole number made an integer (lua-cjson decodes every
   number as a float).  Nested tables too, to depth 64.  Replacing or clearing
   the value of the key lua_next stands on is allowed during the walk. */
static void clean_table(lua_State *L, int t, int depth) {
  luaL_checkstack(L, 4, "starvideos: clean");
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int tv = lua_type(L, -1);
    if (tv == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL) {
      lua_pushvalue(L, -2);
      lua_pushnil(L);
      lua_rawset(L, t);
#if LUA_VERSION_NUM >= 503
    } else if (tv == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      int whole = 0;
      lua_Integer i = lua_tointegerx(L, -1, &whole);
      if (whole) {
        lua_pushvalue(L, -2);
        lua_pushinteger(L, i);
        lua_rawset(L, t);
      }
#endif
    } else if (tv == LUA_TTABLE && depth < 64) {
      clean_table(L, lua_gettop(L), depth + 1);
    }
    lua_pop(L, 1);
  }
}

/* clean(t) -> t */
static int l_clean(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  clean_table(L, 1, 0);
  return 1;
}

static const char *const op_names[] = { "create", "query", "download", NULL };
static const char *const tr_names[] = { "none", "not_sent", "timeout", "broken", "garbled", "fatal", "io", NULL };

/* The verdict's Lua face: body, err, tr, bytes, total, where body is the answer
   (a download's: "") on success and err the error table otherwise. */
static int push_verdict(lua_State *L, const sv_exchange *x, const char *secret) {
  sv_error err;
  sv_transport tr;
  int rc = sv_verdict(x, sv_wallclock(), secret, &err, &tr);
  if (rc == 0) lua_pushlstring(L, x->op == SV_OP_DOWNLOAD ? "" : x->body, x->op == SV_OP_DOWNLOAD ? 0 : x->body_len);
  else lua_pushnil(L);
  if (rc == 0) lua_pushnil(L);
  else push_error(L, &err);
  lua_pushstring(L, sv_transport_name(tr));
  if (x->op != SV_OP_DOWNLOAD) return 3;
  lua_pushinteger(L, (lua_Integer)x->bytes);
  if (x->total >= 0) lua_pushinteger(L, (lua_Integer)x->total);
  else lua_pushnil(L);
  return 5;
}

/* verdict(op, status, body, retry_after, tr, message, bytes, total, secret)
   -> body, err, tr[, bytes, total]: the same reading of an exchange for a
   transport written in Lua as the libcurl one gets. */
static int l_verdict(lua_State *L) {
  sv_exchange x;
  memset(&x, 0, sizeof x);
  x.op = (sv_op)luaL_checkoption(L, 1, NULL, op_names);
  x.status = (long)luaL_optinteger(L, 2, 0);
  x.body = luaL_optlstring(L, 3, "", &x.body_len);
  x.retry_after = luaL_optstring(L, 4, NULL);
  x.tr = (sv_transport)luaL_checkoption(L, 5, "none", tr_names);
  x.message = luaL_optstring(L, 6, "");
  x.bytes = (double)luaL_optnumber(L, 7, 0);
  x.total = (double)luaL_optnumber(L, 8, -1);
  return push_verdict(L, &x, luaL_optstring(L, 9, NULL));
}

/* retry(op, tr, err, attempt, max_retries, backoff, max_wait, rnd) -> delay | nil,
   rnd being a uniform number in [0, 1) for the jitter.  Giving up on a create
   that may have happened marks err.maybe_created. */
static int l_retry(lua_State *L) {
  sv_op op = (sv_op)luaL_checkoption(L, 1, NULL, op_names);
  sv_transport tr = (sv_transport)luaL_checkoption(L, 2, NULL, tr_names);
  sv_error e;
  double delay = 0;
  lua_Integer attempt, retries;
  double rnd = (double)luaL_optnumber(L, 8, 0.5);
  int again;
  luaL_checktype(L, 3, LUA_TTABLE);
  attempt = luaL_checkinteger(L, 4);
  retries = luaL_checkinteger(L, 5);
  to_error(L, 3, &e);
  again = sv_retry_decide(op, tr, &e, attempt > 1000 ? 1000 : (int)attempt, retries > 1000 ? 1000 : (int)retries,
                          (double)luaL_checknumber(L, 6), (double)luaL_checknumber(L, 7),
                          rnd >= 0 && rnd < 1 ? rnd : 0.5, &delay);
  if (e.maybe_created) { lua_pushboolean(L, 1); lua_setfield(L, 3, "maybe_created"); }
  if (!again) return 0;
  lua_pushnumber(L, delay);
  return 1;
}

static void push_list(lua_State *L, const char *const *words) {
  int i;
  lua_newtable(L);
  for (i = 0; words && words[i]; i++) {
    lua_pushstring(L, words[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void push_models(lua_State *L) {
  size_t i;
  lua_createtable(L, 0, (int)sv_model_count);
  for (i = 0; i < sv_model_count; i++) {
    const sv_model *m = &sv_models[i];
    lua_createtable(L, 0, 12);
    lua_pushstring(L, m->name); lua_setfield(L, -2, "name");
    lua_pushstring(L, m->endpoint); lua_setfield(L, -2, "endpoint");
    lua_createtable(L, 0, 4);
    set_int(L, "min", m->duration_min);
    set_int(L, "max", m->duration_max);
    lua_pushboolean(L, m->duration_required); lua_setfield(L, -2, "required");
    if (m->duration_default) set_int(L, "default", m->duration_default);
    lua_setfield(L, -2, "duration");
    push_list(L, m->ratios); lua_setfield(L, -2, "ratios");
    lua_pushstring(L, m->default_ratio); lua_setfield(L, -2, "default_ratio");
    push_list(L, m->resolutions); lua_setfield(L, -2, "resolutions");
    if (m->prompt_max) set_int(L, "prompt_max", m->prompt_max);
    set_int(L, "max_images", m->max_images);
    set_int(L, "max_images_with_video", m->max_images_with_video);
    set_int(L, "max_videos", m->max_videos);
    set_int(L, "max_audios", m->max_audios);
    lua_pushboolean(L, m->legacy_aliases); lua_setfield(L, -2, "legacy_aliases");
    lua_setfield(L, -2, m->name);
  }
}

static int l_now(lua_State *L) { lua_pushnumber(L, sv_monotonic()); return 1; }
static int l_wallclock(lua_State *L) { lua_pushnumber(L, sv_wallclock()); return 1; }

static int l_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec ts, rem;
  if (!(s > 0)) return 0;
  if (s > 1e6) s = 1e6;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &rem) != 0 && errno == EINTR) ts = rem;
  return 0;
}

static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* commit(part, path) -> true | nil, message: the finished download reaches the
   disk (fsync), then takes its final name. */
static int l_commit(lua_State *L) {
  const char *part = luaL_checkstring(L, 1), *path = luaL_checkstring(L, 2);
  int fd = open(part, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || fsync(fd) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    lua_pushnil(L);
    lua_pushfstring(L, "cannot write %s: %s", part, strerror(e));
    return 2;
  }
  close(fd);
  if (rename(part, path) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot rename %s into place: %s", part, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* commit_start(part, path) -> handle | nil, message: the same commit as commit
   (and the folder synced after the rename) on a helper thread, so that the
   caller does not wait for the disk; handle:poll() says when it is done. */
static int l_commit_start(lua_State *L) {
  const char *part = luaL_checkstring(L, 1), *path = luaL_checkstring(L, 2);
  char why[256];
  lcommit *lc = lua_newuserdatauv(L, sizeof *lc, 0);
  lc->c = NULL;
  luaL_setmetatable(L, COMMIT_MT);
  lc->c = sv_commit_start(part, path, why, sizeof why);
  if (!lc->c) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  return 1;
}

static int commit_answer(lua_State *L, int rc, const char *why) {
  if (rc > 0) return 0;
  lua_pushboolean(L, rc == 0);
  if (rc == 0) return 1;
  lua_pushstring(L, why);
  return 2;
}

/* handle:poll() -> nil while the thread works, then true | false, message */
static int c_poll(lua_State *L) {
  lcommit *lc = luaL_checkudata(L, 1, COMMIT_MT);
  const char *why = "";
  int rc;
  if (!lc->c) return luaL_error(L, "the commit handle was closed");
  rc = sv_commit_poll(lc->c, &why); /* before why is read */
  return commit_answer(L, rc, why);
}

/* handle:wait() -> true | false, message (blocks until the thread is done) */
static int c_wait(lua_State *L) {
  lcommit *lc = luaL_checkudata(L, 1, COMMIT_MT);
  const char *why = "";
  int rc;
  if (!lc->c) return luaL_error(L, "the commit handle was closed");
  rc = sv_commit_wait(lc->c, &why);
  return commit_answer(L, rc, why);
}

/* collected or closed: waits for the thread when it still runs */
static int c_gc(lua_State *L) {
  lcommit *lc = luaL_checkudata(L, 1, COMMIT_MT);
  if (lc->c) { sv_commit_free(lc->c); lc->c = NULL; }
  return 0;
}

/* append(path, line, sync) -> true | nil, message: one record, whole, whatever
   other processes append at the same time */
static int l_append(lua_State *L) {
  size_t len;
  const char *path = luaL_checkstring(L, 1), *line = luaL_checklstring(L, 2, &len);
  sv_buf why;
  int rc;
  sv_buf_init(&why);
  rc = sv_file_append(path, line, len, lua_toboolean(L, 3), &why);
  if (rc == 0) lua_pushboolean(L, 1);
  else { lua_pushnil(L); lua_pushstring(L, sv_buf_cstr(&why)); }
  sv_buf_free(&why);
  return rc == 0 ? 1 : 2;
}

/* lock_journal(path) -> lock | nil, message: the journal under the appenders'
   flock, for a rewrite; lock:replace(tmp) -> true | nil, message renames tmp
   over it; lock:unlock() (also on close and collection) lets appenders go on */
static int l_lock_journal(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  llock *lk = lua_newuserdata(L, sizeof *lk);
  sv_buf why;
  lk->fd = -1;
  luaL_setmetatable(L, LOCK_MT);
  sv_buf_init(&why);
  lk->fd = sv_file_lock(path, &why);
  if (lk->fd < 0) { lua_pushnil(L); lua_pushstring(L, sv_buf_cstr(&why)); }
  sv_buf_free(&why);
  return lk->fd < 0 ? 2 : 1;
}

static int k_replace(lua_State *L) {
  llock *lk = luaL_checkudata(L, 1, LOCK_MT);
  const char *tmp = luaL_checkstring(L, 2), *path = luaL_checkstring(L, 3);
  sv_buf why;
  int rc;
  if (lk->fd < 0) return luaL_error(L, "the journal lock is released");
  sv_buf_init(&why);
  rc = sv_file_replace(lk->fd, tmp, path, &why);
  if (rc == 0) lua_pushboolean(L, 1);
  else { lua_pushnil(L); lua_pushstring(L, sv_buf_cstr(&why)); }
  sv_buf_free(&why);
  return rc == 0 ? 1 : 2;
}

static int k_unlock(lua_State *L) {
  llock *lk = luaL_checkudata(L, 1, LOCK_MT);
  if (lk->fd >= 0) { close(lk->fd); lk->fd = -1; }
  return 0;
}

/* writable(path) -> true | nil, message */
static int l_writable(lua_State *L) {
  sv_buf why;
  int rc;
  sv_buf_init(&why);
  rc = sv_file_writable(luaL_checkstring(L, 1), &why);
  if (rc == 0) lua_pushboolean(L, 1);
  else { lua_pushnil(L); lua_pushstring(L, sv_buf_cstr(&why)); }
  sv_buf_free(&why);
  return rc == 0 ? 1 : 2;
}

/* file_kind(path) -> "file" | "folder" | "link" | "other" | nil, message, errno:
   what is at path, by lstat (nothing is opened: a FIFO never blocks) */
static int l_file_kind(lua_State *L) {
  int err;
  const char *kind = sv_file_kind(luaL_checkstring(L, 1), &err);
  if (kind) { lua_pushstring(L, kind); return 1; }
  lua_pushnil(L);
  lua_pushstring(L, strerror(err));
  lua_pushinteger(L, err);
  return 3;
}

/* write_at(path, at, data[, truncate]) -> true | nil, message: data written at
   byte `at`, never through a symlink (a Lua transport's download file) */
static int l_write_at(lua_State *L) {
  size_t len;
  const char *path = luaL_checkstring(L, 1);
  lua_Number at = luaL_checknumber(L, 2);
  const char *data = luaL_checklstring(L, 3, &len);
  sv_buf why;
  int rc;
  sv_buf_init(&why);
  rc = sv_file_write_at(path, (double)at, data, len, lua_toboolean(L, 4), &why);
  if (rc == 0) lua_pushboolean(L, 1);
  else { lua_pushnil(L); lua_pushstring(L, sv_buf_cstr(&why)); }
  sv_buf_free(&why);
  return rc == 0 ? 1 : 2;
}

/* ------------------------------------------ a download's .part (sv_part)

   part_open(path, offset) -> handle | nil, message[, "short"]: the .part a Lua
   transport writes through one descriptor (sv_core.h: sv_part_open); "short"
   when offset > 0 cannot be gone on from (missing, shorter, not one regular
   file): start again from 0.  The handle:
     write(s[, i[, j]]) -> true | nil, message   s's bytes i..j, buffered
     chunks(s, i) -> i', bytes | nil, message     the whole chunks of a chunked
                                                  body in s from i (sv_part_chunks)
     flush() -> true | nil, message
     at() -> bytes accepted (the offset of the next byte)
     truncate(at) -> true | nil, message          cut there, write on from there
     commit(dest) -> true | nil, message          sv_part_commit, here and now
     prepare() -> fd, size, path | nil, message   flushed: part_commit's
                                                  arguments, for another thread
     close() -> true | nil, message               flush and close (also __gc)
   part_commit(fd, size, part, dest) -> true | nil, message: sv_part_commit, for
   a thread of nginx's pool given prepare()'s values (the handle stays open in
   the worker until it answers). */
#define PART_MT "starvideos.part"
static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close);
typedef struct lpart { sv_part *p; } lpart;

static int part_answer(lua_State *L, int rc, sv_buf *why) {
  if (rc == 0) lua_pushboolean(L, 1);
  else { lua_pushnil(L); lua_pushstring(L, sv_buf_cstr(why)); }
  sv_buf_free(why);
  return rc == 0 ? 1 : 2;
}

static sv_part *check_part(lua_State *L) {
  lpart *lp = luaL_checkudata(L, 1, PART_MT);
  if (!lp->p) luaL_error(L, "the .part handle was closed");
  return lp->p;
}

static int p_write(lua_State *L) {
  sv_part *p = check_part(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  lua_Integer i = luaL_optinteger(L, 3, 1), j = luaL_optinteger(L, 4, (lua_Integer)len);
  sv_buf why;
  if (i < 1) i = 1;
  if (j > (lua_Integer)len) j = (lua_Integer)len;
  sv_buf_init(&why);
  return part_answer(L, i > j ? 0 : sv_part_write(p, s + i - 1, (size_t)(j - i + 1), &why), &why);
}

static int p_chunks(lua_State *L) {
  sv_part *p = check_part(L);
  size_t len, pos;
  const char *s = luaL_checklstring(L, 2, &len);
  lua_Integer from = luaL_checkinteger(L, 3);
  double bytes;
  sv_buf why;
  if (from < 1) from = 1;
  pos = (size_t)from - 1;
  if (pos > len) pos = len;
  sv_buf_init(&why);
  bytes = sv_part_chunks(p, s, len, &pos, &why);
  if (bytes < 0) return part_answer(L, -1, &why);
  sv_buf_free(&why);
  lua_pushinteger(L, (lua_Integer)pos + 1);
  lua_pushnumber(L, bytes);
  return 2;
}

static int p_flush(lua_State *L) {
  sv_part *p = check_part(L);
  sv_buf why;
  sv_buf_init(&why);
  return part_answer(L, sv_part_flush(p, &why), &why);
}

static int p_at(lua_State *L) {
  lua_pushnumber(L, sv_part_at(check_part(L)));
  return 1;
}

static int p_truncate(lua_State *L) {
  sv_part *p = check_part(L);
  sv_buf why;
  sv_buf_init(&why);
  return part_answer(L, sv_part_truncate(p, (double)luaL_checknumber(L, 2), &why), &why);
}

static int p_commit(lua_State *L) {
  sv_part *p = check_part(L);
  const char *dest = luaL_checkstring(L, 2);
  sv_buf why;
  int rc;
  sv_buf_init(&why);
  rc = sv_part_flush(p, &why);
  if (rc == 0) rc = sv_part_commit(sv_part_fd(p), sv_part_size(p), sv_part_path(p), dest, &why);
  return part_answer(L, rc, &why);
}

static int p_prepare(lua_State *L) {
  sv_part *p = check_part(L);
  sv_buf why;
  sv_buf_init(&why);
  if (sv_part_flush(p, &why) != 0) return part_answer(L, -1, &why);
  sv_buf_free(&why);
  lua_pushinteger(L, (lua_Integer)sv_part_fd(p));
  lua_pushnumber(L, sv_part_size(p));
  lua_pushstring(L, sv_part_path(p));
  return 3;
}

static int p_close(lua_State *L) {
  lpart *lp = luaL_checkudata(L, 1, PART_MT);
  sv_buf why;
  int rc = 0;
  sv_buf_init(&why);
  if (lp->p) {
    rc = sv_part_close(lp->p, &why);
    sv_part_free(lp->p);
    lp->p = NULL;
  }
  return part_answer(L, rc, &why);
}

static int l_part_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Number offset = luaL_checknumber(L, 2);
  sv_buf why;
  int short_ = 0;
  lpart *lp = lua_newuserdatauv(L, sizeof *lp, 0);
  lp->p = NULL;
  luaL_getmetatable(L, PART_MT);
  if (lua_isnil(L, -1)) { /* the class, made with the first handle */
    static const luaL_Reg methods[] = {
      { "write", p_write }, { "chunks", p_chunks }, { "flush", p_flush }, { "at", p_at }, { "truncate", p_truncate },
      { "commit", p_commit }, { "prepare", p_prepare }, { "close", p_close }, { NULL, NULL }
    };
    new_class(L, PART_MT, methods, p_close);
  }
  lua_pop(L, 1);
  luaL_setmetatable(L, PART_MT);
  sv_buf_init(&why);
  lp->p = sv_part_open(path, (double)offset, &short_, &why);
  if (lp->p) { sv_buf_free(&why); return 1; }
  lua_pushnil(L);
  if (short_) lua_pushfstring(L, "cannot go on from %s: it is missing, shorter than %f bytes or not one regular file",
                              path, offset);
  else lua_pushstring(L, sv_buf_cstr(&why));
  sv_buf_free(&why);
  if (!short_) return 2;
  lua_pushliteral(L, "short");
  return 3;
}

static int l_part_commit(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  lua_Number size = luaL_checknumber(L, 2);
  const char *part = luaL_checkstring(L, 3), *dest = luaL_checkstring(L, 4);
  sv_buf why;
  sv_buf_init(&why);
  return part_answer(L, sv_part_commit(fd, (double)size, part, dest, &why), &why);
}

/* hash(s) -> 16 hex digits; random_id() -> 16 random hex digits */
static int l_hash(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char out[17];
  sv_hash_hex(s, len, out);
  lua_pushstring(L, out);
  return 1;
}

static int l_random_id(lua_State *L) {
  char out[17];
  sv_random_hex(out);
  lua_pushstring(L, out);
  return 1;
}

/* --------------------------------------------------------- the transport */

#ifndef SV_NO_CURL /* the libcurl transport: in starvideos.curl (curl.so), not in core.so */
static lhttp *check_http(lua_State *L) {
  lhttp *lh = luaL_checkudata(L, 1, CURL_MT);
  if (!lh->h) luaL_error(L, "the starvideos transport is closed");
  return lh;
}

static double opt_number(lua_State *L, int t, const char *k, double def) {
  double v;
  lua_getfield(L, t, k);
  v = lua_isnumber(L, -1) ? (double)lua_tonumber(L, -1) : def;
  lua_pop(L, 1);
  return v;
}

static const char *opt_string(lua_State *L, int t, const char *k) {
  const char *v;
  lua_getfield(L, t, k);
  v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL; /* the table keeps it alive */
  lua_pop(L, 1);
  return v;
}

/* curl{api_key=, ca_file=, user_agent=, connect_timeout=, max_connections=}: the
   options were checked (and defaulted) by the Lua side; nothing is defaulted here. */
static int l_curl(lua_State *L) {
  sv_http_config cfg;
  char errbuf[128];
  lhttp *lh;
  double conns;
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(&cfg, 0, sizeof cfg);
  cfg.api_key = opt_string(L, 1, "api_key");
  cfg.ca_file = opt_string(L, 1, "ca_file");
  cfg.user_agent = opt_string(L, 1, "user_agent");
  cfg.connect_timeout = opt_number(L, 1, "connect_timeout", 0);
  conns = opt_number(L, 1, "max_connections", 1);
  cfg.max_connections = conns >= 1 && conns <= 1024 ? (int)conns : conns > 1024 ? 1024 : 1;
  lh = lua_newuserdatauv(L, sizeof *lh, 1);
  lh->h = NULL;
  luaL_setmetatable(L, CURL_MT);
  lua_newtable(L); /* in flight: lightuserdata(xfer) -> its handle */
  lua_setiuservalue(L, -2, 1);
  lh->h = sv_http_new(&cfg, errbuf, sizeof errbuf);
  if (!lh->h) return luaL_error(L, "starvideos: %s", errbuf);
  return 1;
}

static int getbool(lua_State *L, int t, const char *k) {
  int v;
  lua_getfield(L, t, k);
  v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* t:send{op=, url=, auth=, body=, fresh=, timeout=, stall=, max_body=, file=,
   offset=, follow=} -> handle | nil, err */
static int t_send(lua_State *L) {
  lhttp *lh = check_http(L);
  sv_send s;
  sv_error err;
  sv_xfer *x;
  lxfer *lx;
  memset(&s, 0, sizeof s);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "op");
  s.op = (sv_op)luaL_checkoption(L, -1, NULL, op_names);
  lua_pop(L, 1);
  s.url = opt_string(L, 2, "url");
  lua_getfield(L, 2, "body");
  if (lua_type(L, -1) == LUA_TSTRING) s.body = lua_tolstring(L, -1, &s.body_len);
  lua_pop(L, 1);
  s.auth = getbool(L, 2, "auth");
  s.fresh = getbool(L, 2, "fresh");
  s.timeout = opt_number(L, 2, "timeout", 0);
  if (s.op == SV_OP_DOWNLOAD) { /* the fields only a download has */
    s.follow = getbool(L, 2, "follow");
    s.stall = opt_number(L, 2, "stall", 0);
    s.file = opt_string(L, 2, "file");
    s.offset = opt_number(L, 2, "offset", 0);
  } else {
    double max_body = opt_number(L, 2, "max_body", 0);
    s.max_body = (size_t)(max_body > 0 && max_body < 1e9 ? max_body : 0);
  }
  sv_error_clear(&err);
  lx = lua_newuserdatauv(L, sizeof *lx, 1);
  lx->x = NULL;
  luaL_setmetatable(L, XFER_MT);
  x = sv_http_send(lh->h, &s, NULL, &err);
  if (!x) return fail_with(L, &err);
  lx->x = x;
  lua_pushvalue(L, 1); /* the transport lives as long as its exchanges */
  lua_setiuservalue(L, -2, 1);
  lua_getiuservalue(L, 1, 1);
  lua_pushlightuserdata(L, x);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return 1;
}

/* t:poll(max_wait) -> number of finished exchanges not yet taken */
static int t_poll(lua_State *L) {
  lhttp *lh = check_http(L);
  lua_Number wait = luaL_optnumber(L, 2, 0);
  lua_pushinteger(L, sv_http_poll(lh->h, wait > 0 ? (double)wait : 0));
  return 1;
}

/* t:finished() -> the next finished handle, or nil */
static int t_finished(lua_State *L) {
  lhttp *lh = check_http(L);
  sv_xfer *x = sv_http_finished(lh->h);
  if (!x) return 0;
  lua_getiuservalue(L, 1, 1);
  lua_pushlightuserdata(L, x);
  lua_rawget(L, -2);
  lua_pushlightuserdata(L, x);
  lua_pushnil(L);
  lua_rawset(L, -4);
  return 1;
}

static lxfer *check_xfer(lua_State *L, int idx) {
  lxfer *lx = luaL_checkudata(L, idx, XFER_MT);
  if (!lx->x) luaL_argerror(L, idx, "the exchange was already taken or cancelled");
  return lx;
}

static void forget(lua_State *L, lxfer *lx) {
  lua_getiuservalue(L, 1, 1);
  lua_pushlightuserdata(L, lx->x);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  sv_xfer_free(lx->x);
  lx->x = NULL;
}

/* t:result(h) -> body, err, tr[, bytes, total]; the handle is spent */
static int t_result(lua_State *L) {
  lhttp *lh = check_http(L);
  lxfer *lx = check_xfer(L, 2);
  sv_exchange x;
  int n;
  sv_xfer_exchange(lx->x, &x);
  n = push_verdict(L, &x, sv_http_secret(lh->h));
  forget(L, lx);
  return n;
}

/* t:progress(h) -> bytes, total (nil when unknown) */
static int t_progress(lua_State *L) {
  lxfer *lx;
  double bytes, total;
  check_http(L);
  lx = check_xfer(L, 2);
  sv_xfer_progress(lx->x, &bytes, &total);
  lua_pushinteger(L, (lua_Integer)bytes);
  if (total >= 0) lua_pushinteger(L, (lua_Integer)total);
  else lua_pushnil(L);
  return 2;
}

/* t:cancel(h): the exchange ends now; its handle is spent */
static int t_cancel(lua_State *L) {
  lxfer *lx;
  check_http(L);
  lx = luaL_checkudata(L, 2, XFER_MT);
  if (lx->x) forget(L, lx);
  return 0;
}

static int t_running(lua_State *L) {
  lua_pushinteger(L, sv_http_running(check_http(L)->h));
  return 1;
}

static int t_close(lua_State *L) {
  lhttp *lh = luaL_checkudata(L, 1, CURL_MT);
  if (lh->h) { sv_http_free(lh->h); lh->h = NULL; }
  return 0;
}

static int x_gc(lua_State *L) {
  lxfer *lx = luaL_checkudata(L, 1, XFER_MT);
  if (lx->x) { sv_xfer_free(lx->x); lx->x = NULL; }
  return 0;
}

#endif /* SV_NO_CURL */

/* --------------------------------------------------------------- open */

#ifndef SV_NO_CURL
static const luaL_Reg curl_methods[] = {
  { "send", t_send }, { "poll", t_poll }, { "finished", t_finished }, { "result", t_result },
  { "progress", t_progress }, { "cancel", t_cancel }, { "running", t_running }, { "close", t_close },
  { NULL, NULL }
};
#endif

static const luaL_Reg commit_methods[] = {
  { "poll", c_poll }, { "wait", c_wait }, { "close", c_gc }, { NULL, NULL }
};

static const luaL_Reg lock_methods[] = { { "replace", k_replace }, { "unlock", k_unlock }, { NULL, NULL } };

static const luaL_Reg funcs[] = {
  { "validate", l_validate }, { "build_create", l_build_create }, { "result_path", l_result_path },
  { "verdict", l_verdict }, { "task_id", l_task_id }, { "clean", l_clean }, { "retry", l_retry },
#ifndef SV_NO_CURL
  { "curl", l_curl },
#endif
  { "commit", l_commit },
  { "commit_start", l_commit_start },
  { "append", l_append }, { "writable", l_writable }, { "file_kind", l_file_kind }, { "write_at", l_write_at }, { "hash", l_hash },
  { "part_open", l_part_open }, { "part_commit", l_part_commit },
  { "random_id", l_random_id }, { "lock_journal", l_lock_journal },
  { "now", l_now }, { "wallclock", l_wallclock }, { "sleep", l_sleep }, { "isatty", l_isatty },
  { NULL, NULL }
};

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close) {
  luaL_newmetatable(L, name);
  if (methods) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__close");
  lua_pushliteral(L, "starvideos");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

/* The error metatable (the same in core.so and curl.so), left on the stack. */
static void error_metatable(lua_State *L) {
  luaL_newmetatable(L, ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, error_concat);
  lua_setfield(L, -2, "__concat");
}

#ifndef SV_NO_CURL
static void curl_classes(lua_State *L) {
  new_class(L, CURL_MT, curl_methods, t_close);
  new_class(L, XFER_MT, NULL, x_gc);
}

/* starvideos.curl: the libcurl transport alone ({new = function(cfg)}), a module
   of its own so that `require "starvideos"` does not load libcurl and the
   libraries it brings (about 30, 7-11 ms): transport.lua loads it with the
   first client that needs it.  (The static library keeps it in the core as
   core.curl.) */
LUAOPEN_API int luaopen_starvideos_curl(lua_State *L) {
  curl_classes(L);
  error_metatable(L);
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, l_curl);
  lua_setfield(L, -2, "new");
  return 1;
}
#endif

LUAOPEN_API int luaopen_starvideos_core(lua_State *L) {
#ifndef SV_NO_CURL
  curl_classes(L);
#endif
  new_class(L, COMMIT_MT, commit_methods, c_gc);
  new_class(L, LOCK_MT, lock_methods, k_unlock);
  error_metatable(L);

  luaL_newlib(L, funcs);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "error_mt");
  lua_remove(L, -2);
  push_models(L);
  lua_setfield(L, -2, "models");
  push_list(L, sv_field_names);
  lua_setfield(L, -2, "fields");
  lua_pushliteral(L, "starvideos.core 0.2.0");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
