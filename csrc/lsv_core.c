/* starvideos.core: the Lua binding of the C core.  Lua tables in, Lua tables out;
   JSON answers are decoded by lua-cjson and JSON null becomes nil.  No Lua is
   ever called from a libcurl callback: the core's callbacks are plain C, and this
   file runs only between sv_client_perform calls. */
#include "sv_core.h"

#include <lauxlib.h>
#include <lua.h>

#include "compat.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef LUAOPEN_API
#define LUAOPEN_API __attribute__((visibility("default")))
#endif

#define CLIENT_MT "starvideos.client"
#define REQ_MT "starvideos.request"
#define ERROR_MT "starvideos.error"
#define CJSON_KEY "starvideos.cjson"

typedef struct lclient { sv_client *c; } lclient;
typedef struct lreq { sv_req *r; int op; } lreq;

/* --------------------------------------------------------------- errors */

static void push_error(lua_State *L, const sv_error *e) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, sv_kind_name(e->kind));
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, e->message);
  lua_setfield(L, -2, "message");
  if (e->field[0]) { lua_pushstring(L, e->field); lua_setfield(L, -2, "field"); }
  if (e->status > 0) { lua_pushinteger(L, e->status); lua_setfield(L, -2, "status"); }
  if (e->retry_after >= 0) { lua_pushnumber(L, e->retry_after); lua_setfield(L, -2, "retry_after"); }
  if (e->maybe_created) { lua_pushboolean(L, 1); lua_setfield(L, -2, "maybe_created"); }
  if (e->id[0]) { lua_pushstring(L, e->id); lua_setfield(L, -2, "id"); }
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

/* ------------------------------------------------- Lua table -> params */

/* A value that is a sequence of 1..n (n may be 0) becomes LIST, other tables TABLE. */
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
  lua_rawseti(L, anchors, (lua_Integer)lua_rawlen(L, anchors) + 1);
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
      lua_rawgeti(L, idx, (lua_Integer)i + 1);
      scalar(L, -1, &items[i]); /* the table keeps the string alive */
      lua_pop(L, 1);
    }
    v->type = SV_V_LIST;
    v->items = items;
    v->n = n;
  } else if (is_extra) {
    /* extra: only its keys matter to the validator */
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

/* Encode `extra` with lua-cjson.  Pushes the JSON text (or leaves nil). */
static int encode_extra(lua_State *L, int extra_idx, sv_error *err) {
  lua_getfield(L, LUA_REGISTRYINDEX, CJSON_KEY);
  lua_getfield(L, -1, "encode");
  lua_remove(L, -2);
  lua_pushvalue(L, extra_idx);
  lua_call(L, 1, 2);
  if (lua_isnil(L, -2)) {
    sv_error_set(err, SV_E_INVALID, "extra", "extra: cannot be sent as JSON: %s",
                 lua_tostring(L, -1) ? lua_tostring(L, -1) : "unknown reason");
    lua_pop(L, 2);
    return -1;
  }
  lua_pop(L, 1);
  return 0;
}

/* Convert the table at idx.  Pushes one table that keeps every converted piece
   alive while p is in use.  Returns 0 or -1 with err set. */
static int to_params(lua_State *L, int idx, sv_params *p, sv_error *err) {
  size_t count = 0, i = 0;
  sv_field *fields;
  int has_extra = 0, anchors;
  idx = lua_absindex(L, idx);
  sv_error_clear(err);
  memset(p, 0, sizeof *p);
  luaL_checkstack(L, 8, "starvideos: converting params");
  lua_newtable(L);
  anchors = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      char key[64];
      if (lua_type(L, -1) == LUA_TNUMBER) snprintf(key, sizeof key, "[%s]", lua_tostring(L, -1));
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
    int is_extra;
    f->name = lua_tolstring(L, -2, &f->name_len); /* the params table keeps its keys alive */
    is_extra = f->name_len == 5 && memcmp(f->name, "extra", 5) == 0;
    value(L, -1, &f->value, is_extra, anchors);
    if (is_extra && lua_type(L, -1) == LUA_TTABLE) has_extra = 1;
    lua_pop(L, 1); /* the value; the key stays for lua_next */
  }
  p->fields = fields;
  p->n = count;
  if (has_extra) {
    lua_getfield(L, idx, "extra");
    if (encode_extra(L, lua_gettop(L), err)) { lua_pop(L, 1); return -1; }
    lua_remove(L, -2);
    p->extra_json = lua_tolstring(L, -1, &p->extra_len);
    anchor(L, anchors);
  }
  return 0;
}

/* ------------------------------------------------- JSON text -> table */

/* JSON null becomes nil; a whole number becomes a Lua integer (lua-cjson decodes
   every number as a float, and 5.0 would print as "5.0"). */
static void clean(lua_State *L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  if (depth > 100) return;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int t = lua_type(L, -1);
    if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL) {
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, idx); /* clearing a field during traversal is allowed */
      continue;
    }
    if (t == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      lua_Number n = lua_tonumber(L, -1);
      if (n == floor(n) && fabs(n) < 9007199254740992.0) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushinteger(L, (lua_Integer)n);
        lua_rawset(L, idx); /* assigning an existing field during traversal is allowed */
        continue;
      }
    }
    if (t == LUA_TTABLE) clean(L, -1, depth + 1);
    lua_pop(L, 1);
  }
}

/* Pushes the decoded object, or nil + error.  A create's answer that cannot be
   decoded still names the task it created, when its id can be read. */
static int decode(lua_State *L, const char *body, size_t len, int op) {
  lua_getfield(L, LUA_REGISTRYINDEX, CJSON_KEY);
  lua_getfield(L, -1, "decode");
  lua_remove(L, -2);
  lua_pushlstring(L, body, len);
  lua_call(L, 1, 2);
  if (lua_type(L, -2) != LUA_TTABLE) {
    sv_error e;
    sv_error_clear(&e);
    sv_error_set(&e, SV_E_PROTOCOL, NULL, "the answer is not a JSON object: %s",
                 lua_tostring(L, -1) ? lua_tostring(L, -1) : "unexpected value");
    if (op == SV_OP_CREATE) {
      e.maybe_created = 1;
      sv_json_task_id(body, len, e.id, sizeof e.id);
    }
    lua_pop(L, 2);
    return fail_with(L, &e);
  }
  lua_pop(L, 1);
  clean(L, -1, 0);
  return 1;
}

/* ------------------------------------------------------------ module */

static int l_validate(lua_State *L) {
  sv_params p;
  sv_error err;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (to_params(L, 1, &p, &err) || sv_validate(&p, NULL, &err)) return fail_with(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_build_create(lua_State *L) {
  sv_params p;
  sv_error err;
  sv_buf body;
  const char *path;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (to_params(L, 1, &p, &err)) return fail_with(L, &err);
  sv_buf_init(&body);
  if (sv_build_create(&p, &body, &path, &err)) { sv_buf_free(&body); return fail_with(L, &err); }
  lua_pushstring(L, path);
  lua_pushlstring(L, sv_buf_cstr(&body), body.len);
  sv_buf_free(&body);
  return 2;
}

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

static const char *const op_names[] = { "create", "query", "download", NULL };

/* read_answer(op, status, body, retry_after) -> task | nil, err (for other transports) */
static int l_read_answer(lua_State *L) {
  sv_answer a;
  sv_error err;
  a.op = (sv_op)luaL_checkoption(L, 1, NULL, op_names);
  a.status = (long)luaL_checkinteger(L, 2);
  a.body = luaL_optlstring(L, 3, "", &a.body_len);
  a.retry_after = luaL_optstring(L, 4, NULL);
  if (sv_read_answer(&a, sv_wallclock(), &err)) return fail_with(L, &err);
  return decode(L, a.body, a.body_len, a.op);
}

static void push_list(lua_State *L, const char *const *words) {
  int i;
  lua_newtable(L);
  for (i = 0; words && words[i]; i++) {
    lua_pushstring(L, words[i]);
    lua_rawseti(L, -2, i + 1);
  }
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
    lua_pushinteger(L, m->duration_min); lua_setfield(L, -2, "min");
    lua_pushinteger(L, m->duration_max); lua_setfield(L, -2, "max");
    lua_pushboolean(L, m->duration_required); lua_setfield(L, -2, "required");
    if (m->duration_default) { lua_pushinteger(L, m->duration_default); lua_setfield(L, -2, "default"); }
    lua_setfield(L, -2, "duration");
    push_list(L, m->ratios); lua_setfield(L, -2, "ratios");
    lua_pushstring(L, m->default_ratio); lua_setfield(L, -2, "default_ratio");
    push_list(L, m->resolutions); lua_setfield(L, -2, "resolutions");
    if (m->prompt_max) { lua_pushinteger(L, m->prompt_max); lua_setfield(L, -2, "prompt_max"); }
    lua_pushinteger(L, m->max_images); lua_setfield(L, -2, "max_images");
    lua_pushinteger(L, m->max_images_with_video); lua_setfield(L, -2, "max_images_with_video");
    lua_pushinteger(L, m->max_videos); lua_setfield(L, -2, "max_videos");
    lua_pushinteger(L, m->max_audios); lua_setfield(L, -2, "max_audios");
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

/* ------------------------------------------------------------ client */

static lclient *check_client(lua_State *L) {
  lclient *lc = luaL_checkudata(L, 1, CLIENT_MT);
  if (!lc->c) luaL_error(L, "the starvideos client is closed");
  return lc;
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
  v = lua_tostring(L, -1); /* stays alive while the options table holds it */
  lua_pop(L, 1);
  return v;
}

/* new_client{base_url=, api_key=, ...}: options already checked by the Lua side. */
static int l_new_client(lua_State *L) {
  sv_config cfg;
  char errbuf[128];
  lclient *lc;
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(&cfg, 0, sizeof cfg);
  cfg.base_url = opt_string(L, 1, "base_url");
  cfg.api_key = opt_string(L, 1, "api_key");
  cfg.ca_file = opt_string(L, 1, "ca_file");
  cfg.user_agent = opt_string(L, 1, "user_agent");
  cfg.timeout = opt_number(L, 1, "timeout", 30);
  cfg.connect_timeout = opt_number(L, 1, "connect_timeout", 10);
  cfg.max_retries = (int)opt_number(L, 1, "max_retries", 2);
  cfg.max_connections = (int)opt_number(L, 1, "max_connections", 16);
  cfg.backoff = opt_number(L, 1, "retry_backoff", 0.5);
  cfg.max_retry_wait = opt_number(L, 1, "max_retry_wait", 60);
  luaL_argcheck(L, cfg.base_url != NULL, 1, "base_url missing");
  lc = lua_newuserdatauv(L, sizeof *lc, 0);
  lc->c = NULL;
  luaL_setmetatable(L, CLIENT_MT);
  lc->c = sv_client_new(&cfg, errbuf, sizeof errbuf);
  if (!lc->c) return luaL_error(L, "starvideos: %s", errbuf);
  return 1;
}

static int push_req(lua_State *L, sv_req *r, int op) {
  lreq *lr = lua_newuserdatauv(L, sizeof *lr, 1);
  lr->r = r;
  lr->op = op;
  luaL_setmetatable(L, REQ_MT);
  lua_pushvalue(L, 1); /* the client lives as long as its requests */
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static double opt_deadline(lua_State *L, int idx) {
  return lua_isnoneornil(L, idx) ? 0 : (double)luaL_checknumber(L, idx);
}

static int c_create(lua_State *L) {
  lclient *lc = check_client(L);
  sv_params p;
  sv_error err;
  sv_req *r;
  double deadline = opt_deadline(L, 3);
  int top;
  luaL_checktype(L, 2, LUA_TTABLE);
  top = lua_gettop(L);
  if (to_params(L, 2, &p, &err)) return fail_with(L, &err);
  r = sv_client_create(lc->c, &p, deadline, &err);
  lua_settop(L, top);
  if (!r) return fail_with(L, &err);
  return push_req(L, r, SV_OP_CREATE);
}

static int c_query(lua_State *L) {
  lclient *lc = check_client(L);
  size_t len;
  const char *id = luaL_checklstring(L, 2, &len);
  sv_error err;
  sv_req *r;
  sv_error_clear(&err);
  r = sv_client_query(lc->c, id, len, opt_deadline(L, 3), &err);
  if (!r) return fail_with(L, &err);
  return push_req(L, r, SV_OP_QUERY);
}

static int c_download(lua_State *L) {
  lclient *lc = check_client(L);
  sv_download_opts o;
  sv_error err;
  sv_req *r;
  o.url = luaL_checkstring(L, 2);
  o.path = luaL_checkstring(L, 3);
  o.resume_limit = (int)luaL_optinteger(L, 5, 5);
  sv_error_clear(&err);
  r = sv_client_download(lc->c, &o, opt_deadline(L, 4), &err);
  if (!r) return fail_with(L, &err);
  return push_req(L, r, SV_OP_DOWNLOAD);
}

static int c_perform(lua_State *L) {
  lclient *lc = check_client(L);
  lua_Number wait = luaL_optnumber(L, 2, 0);
  lua_pushinteger(L, sv_client_perform(lc->c, wait > 0 ? (double)wait : 0));
  return 1;
}

static int c_active(lua_State *L) {
  lclient *lc = check_client(L);
  lua_pushinteger(L, sv_client_active(lc->c));
  return 1;
}

static const char *const event_names[] = { "request", "response", "retry" };

/* events() -> a list of the events queued since the last call */
static int c_events(lua_State *L) {
  lclient *lc = check_client(L);
  sv_event ev;
  int n = 0;
  lua_newtable(L);
  while (sv_client_event(lc->c, &ev)) {
    lua_createtable(L, 0, 8);
    lua_pushstring(L, event_names[ev.type]); lua_setfield(L, -2, "type");
    lua_pushinteger(L, ev.req_id); lua_setfield(L, -2, "request");
    lua_pushinteger(L, ev.attempt); lua_setfield(L, -2, "attempt");
    lua_pushstring(L, ev.method); lua_setfield(L, -2, "method");
    lua_pushstring(L, ev.path); lua_setfield(L, -2, "path");
    if (ev.status) { lua_pushinteger(L, ev.status); lua_setfield(L, -2, "status"); }
    if (ev.type == SV_EV_RETRY) {
      lua_pushnumber(L, ev.delay); lua_setfield(L, -2, "delay");
      lua_pushstring(L, ev.reason); lua_setfield(L, -2, "reason");
    }
    if (ev.type == SV_EV_RESPONSE) { lua_pushnumber(L, ev.elapsed); lua_setfield(L, -2, "elapsed"); }
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

static int c_close(lua_State *L) {
  lclient *lc = luaL_checkudata(L, 1, CLIENT_MT);
  if (lc->c) { sv_client_free(lc->c); lc->c = NULL; }
  return 0;
}

/* ------------------------------------------------------------ requests */

static lreq *check_req(lua_State *L) { return luaL_checkudata(L, 1, REQ_MT); }

static int r_done(lua_State *L) {
  lreq *lr = check_req(L);
  lua_pushboolean(L, !lr->r || sv_req_done(lr->r));
  return 1;
}

static int r_id(lua_State *L) {
  lreq *lr = check_req(L);
  if (!lr->r) return 0;
  lua_pushinteger(L, sv_req_id(lr->r));
  return 1;
}

/* result() -> task (create, query) | true (download) | nil, err; nil when not done */
static int r_result(lua_State *L) {
  lreq *lr = check_req(L);
  const char *body;
  size_t len;
  const sv_error *err;
  if (!lr->r) {
    sv_error e;
    sv_error_clear(&e);
    sv_error_set(&e, SV_E_IO, NULL, "the request was cancelled");
    return fail_with(L, &e);
  }
  if (!sv_req_done(lr->r)) return 0;
  if (sv_req_result(lr->r, &body, &len, &err)) return fail_with(L, err);
  if (lr->op == SV_OP_DOWNLOAD) { lua_pushboolean(L, 1); return 1; }
  return decode(L, body, len, lr->op);
}

static int r_progress(lua_State *L) {
  lreq *lr = check_req(L);
  sv_progress p;
  if (!lr->r) return 0;
  sv_req_progress(lr->r, &p);
  lua_pushinteger(L, (lua_Integer)p.now_bytes);
  if (p.total_bytes >= 0) lua_pushinteger(L, (lua_Integer)p.total_bytes);
  else lua_pushnil(L);
  lua_pushinteger(L, p.attempt);
  return 3;
}

static int r_close(lua_State *L) {
  lreq *lr = check_req(L);
  if (lr->r) { sv_req_free(lr->r); lr->r = NULL; }
  return 0;
}

/* --------------------------------------------------------------- open */

static const luaL_Reg client_methods[] = {
  { "create", c_create }, { "query", c_query }, { "download", c_download },
  { "perform", c_perform }, { "active", c_active }, { "events", c_events },
  { "close", c_close }, { NULL, NULL }
};

static const luaL_Reg req_methods[] = {
  { "done", r_done }, { "id", r_id }, { "result", r_result }, { "progress", r_progress },
  { "cancel", r_close }, { "close", r_close }, { NULL, NULL }
};

static const luaL_Reg funcs[] = {
  { "validate", l_validate }, { "build_create", l_build_create },
  { "result_path", l_result_path }, { "read_answer", l_read_answer },
  { "new_client", l_new_client }, { "now", l_now }, { "wallclock", l_wallclock },
  { "sleep", l_sleep }, { "isatty", l_isatty }, { NULL, NULL }
};

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
}

LUAOPEN_API int luaopen_starvideos_core(lua_State *L) {
  /* a private lua-cjson instance (cjson.safe: errors come back as nil, msg) */
  lua_getglobal(L, "require");
  lua_pushstring(L, "cjson.safe");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "decode_max_depth");
  lua_pushinteger(L, 64);
  lua_call(L, 1, 0);
  lua_setfield(L, LUA_REGISTRYINDEX, CJSON_KEY);
  lua_pop(L, 1);

  new_class(L, CLIENT_MT, client_methods, c_close);
  new_class(L, REQ_MT, req_methods, r_close);
  luaL_newmetatable(L, ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, error_concat);
  lua_setfield(L, -2, "__concat");

  luaL_newlib(L, funcs);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "error_mt");
  lua_remove(L, -2);
  push_models(L);
  lua_setfield(L, -2, "models");
  push_list(L, sv_field_names);
  lua_setfield(L, -2, "fields");
  lua_pushstring(L, "starvideos.core 0.1.0");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
