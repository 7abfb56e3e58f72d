/* starvideos.core: the module functions of the Lua binding of the C core,
   and its open, which adds those of its objects (lsv.h).  The binding never
   calls a Lua function (no require, no lua_call).  Lua encodes `extra` with
   lua-cjson (that text is the one form the core checks and sends); an answer
   is read once, in C: the core's verdict, with the task table built from its
   scan (error.c). */
#include "lsv.h"

#include "compat.h"

#include <curl/curlver.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A Lua error table back into an sv_error (kind, status, retry_after). */
static void to_error(lua_State *L, int idx, sv_error *e) {
  const char *kind;
  int k;
  sv_error_clear(e);
  lua_getfield(L, idx, "kind");
  kind = lua_tostring(L, -1);
  for (k = 0; kind && k <= SV_E_LAST; k++)
    if (strcmp(sv_kind_name((sv_kind)k), kind) == 0) { e->kind = (sv_kind)k; break; }
  lua_getfield(L, idx, "status");
  e->status = lua_isnumber(L, -1) ? (long)lua_tointeger(L, -1) : 0;
  lua_getfield(L, idx, "retry_after");
  e->retry_after = lua_isnumber(L, -1) ? (double)lua_tonumber(L, -1) : -1;
  lua_pop(L, 3);
}

/* ------------------------------------------------- Lua table -> params */

/* A table (at idx, absolute) that is a sequence of 1..n (n may be 0) becomes LIST, others TABLE. */
static int table_is_list(lua_State *L, int idx, size_t *n) {
  size_t count = 0;
  lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
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

/* A table that names a local file ({file = "cat.png"}, its only field) becomes FILE; one with a `file` that is
   not that says what it is (models.c's message). */
static void file_ref(lua_State *L, int idx, sv_value *v) {
  int fields = 0;
  lua_pushliteral(L, "file");
  lua_rawget(L, idx);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return; }
  lua_pushnil(L);
  while (lua_next(L, idx)) { lua_pop(L, 1); fields++; }
  if (lua_type(L, -1) == LUA_TSTRING && fields == 1) {
    v->type = SV_V_FILE;
    v->str = lua_tolstring(L, -1, &v->len); /* the table keeps it alive */
  } else {
    v->str = lua_type(L, -1) != LUA_TSTRING ? "a table whose file is not a string"
                                            : "a table with fields besides file";
  }
  lua_pop(L, 1);
}

static void scalar(lua_State *L, int idx, sv_value *v) {
  idx = lua_absindex(L, idx);
  memset(v, 0, sizeof *v);
  switch (lua_type(L, idx)) {
  case LUA_TNIL: v->type = SV_V_NIL; break;
  case LUA_TBOOLEAN: v->type = SV_V_BOOL; v->boolean = lua_toboolean(L, idx); break;
  case LUA_TNUMBER: v->type = SV_V_NUMBER; v->num = (double)lua_tonumber(L, idx); break;
  case LUA_TSTRING: v->type = SV_V_STRING; v->str = lua_tolstring(L, idx, &v->len); break;
  case LUA_TTABLE: v->type = SV_V_TABLE; file_ref(L, idx, v); break;
  default:
    v->type = SV_V_OTHER;
    v->str = luaL_typename(L, idx);
    v->len = strlen(v->str);
  }
}

/* Fill v from the value at idx.  Lists get their items in a new userdata kept
   in the anchors table. */
static void value(lua_State *L, int idx, sv_value *v, int anchors) {
  size_t n, i;
  sv_value *items;
  idx = lua_absindex(L, idx);
  scalar(L, idx, v);
  if (v->type != SV_V_TABLE || v->str || !table_is_list(L, idx, &n)) return;
  items = lua_newuserdatauv(L, sizeof(sv_value) * (n ? n : 1), 0);
  lua_rawseti(L, anchors, (int)lua_rawlen(L, anchors) + 1);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, idx, (int)i + 1);
    scalar(L, -1, &items[i]); /* the table keeps the string alive */
    lua_pop(L, 1);
  }
  v->type = SV_V_LIST;
  v->items = items;
  v->n = n;
}

/* The params' `extra` key: its one form is the JSON text (argument 2), so the
   table's value is not converted. */
static int is_extra(lua_State *L, int idx) {
  size_t len;
  const char *k = lua_tolstring(L, idx, &len);
  return len == 5 && memcmp(k, "extra", 5) == 0;
}

/* Convert the params table at argument 1 (but its `extra`) and the JSON text of
   `extra` at 2, when given; argument 3 true: URLs only (a body as sent), else a
   reference may be a local file.  Pushes one table that keeps every converted piece alive while p is in
   use.  Returns 0 or -1 with err set. */
static int to_params(lua_State *L, sv_params *p, sv_error *err) {
  size_t count = 0, i = 0;
  sv_field *fields;
  int anchors;
  luaL_checktype(L, 1, LUA_TTABLE);
  sv_error_clear(err);
  memset(p, 0, sizeof *p);
  luaL_checkstack(L, 12, "starvideos: converting params");
  if (!lua_isnoneornil(L, 2)) p->extra_json = luaL_checklstring(L, 2, &p->extra_len);
  p->files = !lua_toboolean(L, 3);
  lua_newtable(L); /* keeps the userdata made here alive: the stack depth stays the same */
  anchors = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      char key[64];
      if (lua_type(L, -1) == LUA_TNUMBER) snprintf(key, sizeof key, "[%.14g]", (double)lua_tonumber(L, -1));
      else snprintf(key, sizeof key, "[%s]", luaL_typename(L, -1));
      return sv_error_set(err, SV_E_INVALID, key, "%s: unknown field (params take named fields such as model and prompt)", key);
    }
    if (!is_extra(L, -1)) count++;
  }
  fields = lua_newuserdatauv(L, sizeof(sv_field) * (count ? count : 1), 0);
  lua_rawseti(L, anchors, 1);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    sv_field *f;
    if (is_extra(L, -2)) { lua_pop(L, 1); continue; }
    f = &fields[i++];
    f->name = lua_tolstring(L, -2, &f->name_len); /* the params table keeps its keys alive */
    value(L, -1, &f->value, anchors);
    lua_pop(L, 1); /* the value; the key stays for lua_next */
  }
  p->fields = fields;
  p->n = count;
  return 0;
}

/* ------------------------------------------------------------ module */

/* The sv_warnings of p pushed as a list of { field =, because =, message = } (empty when the
   service takes all it is asked): 0, or -1 with err (p invalid, or no memory). */
static int push_warnings(lua_State *L, const sv_params *p, sv_error *err) {
  sv_buf out = {0};
  const sv_warning *w;
  size_t i, n;
  if (sv_validate_warn(p, NULL, &out, err)) { sv_buf_free(&out); return -1; }
  w = (const sv_warning *)(void *)out.data;
  n = out.len / sizeof *w;
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    lua_createtable(L, 0, 3);
    lsv_set_cstr(L, "field", w[i].field);
    lsv_set_cstr(L, "because", w[i].because);
    lsv_set_cstr(L, "message", w[i].message);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  sv_buf_free(&out);
  return 0;
}

/* validate(params [, extra_json [, urls_only]]) -> true, warnings | nil, err */
static int l_validate(lua_State *L) {
  sv_params p;
  sv_error err;
  if (to_params(L, &p, &err)) return lsv_fail(L, &err);
  lua_pushboolean(L, 1);
  if (push_warnings(L, &p, &err)) return lsv_fail(L, &err);
  return 2;
}

/* build_create(params [, extra_json [, urls_only]]) -> path, body, warnings | nil, err */
static int l_build_create(lua_State *L) {
  sv_params p;
  sv_error err;
  sv_buf body = {0};
  const char *path;
  if (to_params(L, &p, &err)) return lsv_fail(L, &err);
  if (sv_build_create(&p, &body, &path, &err)) { sv_buf_free(&body); return lsv_fail(L, &err); }
  lua_pushstring(L, path);
  lua_pushlstring(L, sv_buf_cstr(&body), body.len);
  sv_buf_free(&body);
  if (push_warnings(L, &p, &err)) return lsv_fail(L, &err);
  return 3;
}

/* result_path(id) -> path | nil, err */
static int l_result_path(lua_State *L) {
  size_t len;
  const char *id = luaL_checklstring(L, 1, &len);
  sv_buf out = {0};
  sv_error err;
  sv_error_clear(&err);
  if (sv_result_path(id, len, &out, &err)) { sv_buf_free(&out); return lsv_fail(L, &err); }
  lua_pushlstring(L, sv_buf_cstr(&out), out.len);
  sv_buf_free(&out);
  return 1;
}

/* verdict(op, status, body, retry_after, wire, message, bytes, total, secret, heads, what, limits, from, first)
   -> task, err, wire[, bytes, total | rate limits]: the same reading of an exchange for a
   transport written in Lua as the libcurl one gets (task: the answer as a
   table; a download's is ""). */
static int l_verdict(lua_State *L) {
  sv_exchange x;
  memset(&x, 0, sizeof x);
  x.op = (sv_op)luaL_checkoption(L, 1, NULL, sv_op_names);
  x.status = (long)luaL_optinteger(L, 2, 0);
  x.body = luaL_optlstring(L, 3, "", &x.body_len);
  x.retry_after = luaL_optstring(L, 4, NULL);
  x.wire = (sv_wire)luaL_checkoption(L, 5, "none", sv_wire_names);
  x.message = luaL_optstring(L, 6, "");
  x.bytes = (double)luaL_optnumber(L, 7, 0);
  x.total = (double)luaL_optnumber(L, 8, -1);
  x.heads = luaL_optlstring(L, 10, NULL, &x.heads_len);
  x.what = luaL_optstring(L, 11, NULL);
  x.limits = luaL_optlstring(L, 12, NULL, &x.limits_len);
  x.from = (double)luaL_optnumber(L, 13, 0), x.first = (double)luaL_optnumber(L, 14, x.from); /* (a range's) */
  return lsv_push_verdict(L, &x, luaL_optstring(L, 9, NULL));
}

/* retry(op, wire, err, attempt, policy, rnd) -> delay | nil: the one retry policy
   (sv_retry_decide), for API calls and downloads alike.  policy: max_retries (a
   download's: its resume_limit), backoff, max_backoff, max_wait, every one
   required (the options table gives them; clamped here, never defaulted), and
   garbled_final (a download's, a ranged exchange's: a garbled answer is not asked again).
   rnd is a uniform number in [0, 1) for the jitter.  err is only read. */
static int l_retry(lua_State *L) {
  sv_op op = (sv_op)luaL_checkoption(L, 1, NULL, sv_op_names);
  sv_wire wire = (sv_wire)luaL_checkoption(L, 2, NULL, sv_wire_names);
  sv_error e;
  sv_retry_policy p;
  double delay = 0, rnd;
  lua_Integer attempt;
  luaL_checktype(L, 3, LUA_TTABLE);
  attempt = luaL_checkinteger(L, 4);
  luaL_checktype(L, 5, LUA_TTABLE);
  rnd = (double)luaL_checknumber(L, 6);
  p.max_retries = (int)lsv_need_number(L, 5, "max_retries", 0, 1000, "retry");
  p.backoff = lsv_need_number(L, 5, "backoff", 0, 86400, "retry");
  p.max_backoff = lsv_need_number(L, 5, "max_backoff", 0, 86400, "retry");
  p.max_wait = lsv_need_number(L, 5, "max_wait", 0, 86400.0 * 365, "retry");
  lua_getfield(L, 5, "garbled_final");
  p.garbled_final = lua_toboolean(L, -1);
  lua_pop(L, 1);
  to_error(L, 3, &e);
  if (!(rnd >= 0)) rnd = 0; /* and NaN */
  if (rnd >= 1) rnd = 0.9999999;
  if (!sv_retry_decide(op, wire, &e, attempt > 1000 ? 1000 : attempt < 1 ? 1 : (int)attempt, &p, rnd, &delay)) return 0;
  lua_pushnumber(L, delay);
  return 1;
}

/* check_url(url, field, base) -> parts | nil, err: the one URL check and
   parser (sv_url_parse).  base true: a base URL (no query, fragment or '@');
   else any http(s) URL a download may be given.  err names field (default
   "url").  parts: {scheme = "http" | "https", host = (as written, [...] for
   IPv6), port = (the scheme's when none is written), authority =
   host[:port], path = (no query: "/" when empty), target = (path and query,
   as a request line takes it)}. */
static int l_check_url(lua_State *L) {
  size_t len = 0, q, frag;
  sv_url u;
  const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
  const char *field = luaL_optstring(L, 2, "url");
  int kind = lua_toboolean(L, 3) ? SV_URL_BASE : SV_URL_ANY;
  sv_error err;
  sv_error_clear(&err);
  if (!s) {
    sv_error_set(&err, SV_E_INVALID, field, "%s: expected an http(s) URL, got %s", field, luaL_typename(L, 1));
    return lsv_fail(L, &err);
  }
  if (sv_url_parse(s, len, field, kind, &u, &err) != 0) return lsv_fail(L, &err);
  q = u.path_at + strcspn(s + u.path_at, "?#");
  frag = u.path_at + strcspn(s + u.path_at, "#");
  lua_createtable(L, 0, 6);
  lsv_set_cstr(L, "scheme", u.https ? "https" : "http");
  lsv_set_str(L, "host", s + u.host_at, u.host_len);
  lsv_set_int(L, "port", (lua_Integer)u.port);
  lsv_set_str(L, "authority", s + u.host_at, u.auth_len);
  if (q > u.path_at) lua_pushlstring(L, s + u.path_at, q - u.path_at);
  else lua_pushliteral(L, "/");
  lua_setfield(L, -2, "path");
  if (q > u.path_at) lua_pushlstring(L, s + u.path_at, frag - u.path_at);
  else { lua_pushliteral(L, "/"); lua_pushlstring(L, s + q, frag - q); lua_concat(L, 2); }
  lua_setfield(L, -2, "target");
  return 1;
}

/* check_proxy(url) -> {url =, user =, password =} | nil, err: a proxy's URL
   (sv_proxy_parse): url without its credentials ("http://host:port"), user and
   password percent-decoded (absent when the URL names no user).  err never
   holds the credentials. */
static int l_check_proxy(lua_State *L) {
  size_t len = 0;
  const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
  sv_proxy p;
  sv_error err;
  sv_error_clear(&err);
  if (!s) {
    sv_error_set(&err, SV_E_INVALID, "proxy", "proxy: expected http://[user:password@]host:port, got %s",
                 luaL_typename(L, 1));
    return lsv_fail(L, &err);
  }
  if (sv_proxy_parse(s, len, &p, &err) != 0) return lsv_fail(L, &err);
  lua_createtable(L, 0, 3);
  lsv_set_str(L, "url", p.url.data, p.url.len);
  if (p.has_user) {
    lsv_set_str(L, "user", sv_buf_cstr(&p.user), p.user.len);
    lsv_set_str(L, "password", sv_buf_cstr(&p.password), p.password.len);
  }
  sv_proxy_free(&p);
  return 1;
}

/* redirect(url, status, location, hops, public) -> next | nil | false, message: the one redirect rule
   (sv_redirect) of an answer of status with location (nil: none) to url after hops redirects: the next hop's URL,
   nil when it is no redirect, false and why it is not followed (public: its host as written must be public). */
static int l_redirect(lua_State *L) {
  size_t llen = 0;
  const char *from = luaL_checkstring(L, 1);
  long status = (long)luaL_checkinteger(L, 2);
  const char *loc = luaL_optlstring(L, 3, NULL, &llen);
  int hops = (int)luaL_checkinteger(L, 4), rc;
  sv_buf to = {0};
  sv_error err;
  sv_error_clear(&err);
  rc = sv_redirect(from, status, loc, llen, hops, lua_toboolean(L, 5), &to, &err);
  if (rc > 0) lua_pushlstring(L, sv_buf_cstr(&to), to.len);
  else if (rc == 0) lua_pushnil(L);
  else lua_pushboolean(L, 0), lua_pushstring(L, err.message);
  sv_buf_free(&to);
  return rc < 0 ? 2 : 1;
}

/* tunnel_refused(status, proxy, target) -> wire, message: a proxy's answer to its CONNECT (sv_tunnel_refused) */
static int l_tunnel_refused(lua_State *L) {
  char msg[512];
  sv_wire wire = sv_tunnel_refused((long)luaL_checkinteger(L, 1), luaL_optstring(L, 2, NULL),
                                   luaL_optstring(L, 3, NULL), msg, sizeof msg);
  lua_pushstring(L, sv_wire_names[wire]);
  lua_pushstring(L, msg);
  return 2;
}

/* too_long(cap, its_length, url) -> message: a download's body past its cap (sv_too_long); without url, another
   answer's past max_body */
static int l_too_long(lua_State *L) {
  char msg[512];
  sv_too_long((double)luaL_checknumber(L, 1), lua_toboolean(L, 2), luaL_optstring(L, 3, NULL), msg, sizeof msg);
  lua_pushstring(L, msg);
  return 1;
}

/* content_range(value) -> start, total | nil: a whole Content-Range (sv_content_range) */
static int l_content_range(lua_State *L) {
  size_t n = 0;
  const char *v = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &n) : NULL;
  double start, total;
  if (!v || sv_content_range(v, n, &start, &total) != 0) return 0;
  lua_pushnumber(L, (lua_Number)start);
  lua_pushnumber(L, (lua_Number)total);
  return 2;
}

/* The list of words, up to the first NULL or n of them (n: (size_t)-1 for all). */
static void push_list_n(lua_State *L, const char *const *words, size_t n) {
  size_t i;
  lua_newtable(L);
  for (i = 0; words && i < n && words[i]; i++) {
    lua_pushstring(L, words[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
}
static void push_list(lua_State *L, const char *const *words) { push_list_n(L, words, (size_t)-1); }

/* A row's ignored fields: { {field =, when =, why =}, ... } */
static void push_ignored(lua_State *L, const sv_ignored *ig) {
  int i;
  lua_newtable(L);
  for (i = 0; ig && ig[i].field; i++) {
    lua_createtable(L, 0, 3);
    lsv_set_cstr(L, "field", ig[i].field);
    lsv_set_cstr(L, "when", ig[i].when);
    lsv_set_cstr(L, "why", ig[i].why);
    lua_rawseti(L, -2, i + 1);
  }
}

static void push_models(lua_State *L) {
  size_t i;
  lua_createtable(L, 0, (int)sv_model_count);
  for (i = 0; i < sv_model_count; i++) {
    const sv_model *m = &sv_models[i];
    lua_createtable(L, 0, 12);
    lsv_set_cstr(L, "name", m->name);
    lsv_set_cstr(L, "endpoint", m->endpoint);
    lua_createtable(L, 0, 4);
    lsv_set_int(L, "min", m->duration_min);
    lsv_set_int(L, "max", m->duration_max);
    lua_pushboolean(L, m->duration_required); lua_setfield(L, -2, "required");
    if (m->duration_default) lsv_set_int(L, "default", m->duration_default);
    lua_setfield(L, -2, "duration");
    push_list(L, m->ratios); lua_setfield(L, -2, "ratios");
    lsv_set_cstr(L, "default_ratio", m->default_ratio);
    push_list(L, m->resolutions); lua_setfield(L, -2, "resolutions");
    if (m->prompt_max) lsv_set_int(L, "prompt_max", m->prompt_max);
    lsv_set_int(L, "max_images", m->max_images);
    lsv_set_int(L, "max_images_with_video", m->max_images_with_video);
    lsv_set_int(L, "max_videos", m->max_videos);
    lsv_set_int(L, "max_audios", m->max_audios);
    lua_pushboolean(L, m->legacy_aliases); lua_setfield(L, -2, "legacy_aliases");
    push_ignored(L, m->ignored); lua_setfield(L, -2, "ignored");
    lua_setfield(L, -2, m->name);
  }
}

static int l_now(lua_State *L) { lua_pushnumber(L, sv_monotonic()); return 1; }

/* wall() -> seconds since the epoch, with their fraction (the log's time stamps) */
static int l_wall(lua_State *L) { lua_pushnumber(L, sv_wallclock()); return 1; }

static int l_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  sv_sleep(s > 1e6 ? 1e6 : (double)s);
  return 0;
}

/* uid() -> the process's user id (a per-user folder of leases) */
static int l_uid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getuid());
  return 1;
}

static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* file_kind(path[, follow]) -> "file" | "folder" | "link" | "other" | nil, message, errno:
   what is at path, by lstat (with follow by stat: what its links lead to; nothing is opened: a FIFO never blocks) */
static int l_file_kind(lua_State *L) {
  int err;
  const char *kind = sv_file_kind(luaL_checkstring(L, 1), lua_toboolean(L, 2), &err);
  if (kind) { lua_pushstring(L, kind); return 1; }
  lua_pushnil(L);
  lua_pushstring(L, strerror(err));
  lua_pushinteger(L, err);
  return 3;
}

/* The rest of fd (a regular file, its size a hint) read, at most max bytes, then closed: pushed, 1; else nil and
   why naming path, 2 (more than max: the file is larger, or grew past it). */
/* "path is larger than max", pushed (max in MiB when it is some) */
static void larger(lua_State *L, const char *path, size_t max) {
  if (max >= 1 << 20) lua_pushfstring(L, "%s is larger than %d MiB", path, (int)(max >> 20));
  else lua_pushfstring(L, "%s is larger than %d bytes", path, (int)max);
}

static int read_rest(lua_State *L, int fd, const char *path, size_t max, off_t size) {
  size_t cap = (size_t)size < max ? (size_t)size + 1 : max + 1, len = 0;
  char *buf, *grown;
  ssize_t n;
  int e = 0;
  if (cap < 65536) cap = 65536;
  if (!(buf = malloc(cap))) e = ENOMEM;
  while (!e && len <= max) {
    if (len == cap) { /* longer than it said (procfs says 0): grown, up to max + 1 */
      size_t more = cap * 2 > max + 1 ? max + 1 : cap * 2;
      if (!(grown = realloc(buf, more))) { e = ENOMEM; break; }
      buf = grown, cap = more;
    }
    n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { e = n < 0 ? errno : 0; break; }
    len += (size_t)n;
  }
  close(fd);
  if (!e && len <= max) lua_pushlstring(L, buf, len);
  free(buf);
  if (!e && len <= max) return 1;
  lua_pushnil(L);
  if (e) lua_pushfstring(L, "%s cannot be read: %s", path, strerror(e));
  else larger(L, path, max);
  return 2;
}

/* read_whole(path, max) -> the bytes of the regular file at path | nil, why (naming path): opened once, without
   waiting (O_NONBLOCK: a FIFO, or a link to one, never blocks the open), then judged on that handle (fstat: a
   folder, a FIFO, a device or a socket refused unread; more than max bytes refused) and read to its end: what
   was judged is what is read, though the path be replaced meanwhile. */
static int l_read_whole(lua_State *L) {
  const char *path = luaL_checkstring(L, 1), *what = NULL;
  lua_Number max = luaL_checknumber(L, 2);
  struct stat st;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY), e = fd < 0 ? errno : 0;
  if (!e && fstat(fd, &st) != 0) e = errno;
  if (!e && S_ISDIR(st.st_mode)) what = "is a folder";
  else if (!e && !S_ISREG(st.st_mode)) {
    what = S_ISFIFO(st.st_mode) ? "is not a regular file: it is a FIFO" : S_ISSOCK(st.st_mode)
      ? "is not a regular file: it is a socket" : "is not a regular file: it is a device";
  }
  if (!e && !what && (lua_Number)st.st_size <= max) return read_rest(L, fd, path, (size_t)max, st.st_size);
  if (fd >= 0) close(fd);
  lua_pushnil(L);
  if (e) lua_pushfstring(L, "%s cannot be read: %s", path, strerror(e));
  else if (what) lua_pushfstring(L, "%s %s", path, what);
  else larger(L, path, (size_t)max);
  return 2;
}

/* file_key(path) -> the key of the file at path (docs/batch.md "Keys"): its folder's real
   path (., .., repeated slashes and symlinks resolved) and its name; nothing: no folder there */
static int l_file_key(lua_State *L) {
  const char *path = luaL_checkstring(L, 1), *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
  char *real;
  lua_pushlstring(L, path, (size_t)(name - path)); /* the folder, its slash kept ("/" stays "/") */
  if (!(real = realpath(name > path ? lua_tostring(L, -1) : ".", NULL))) return 0;
  lua_pushfstring(L, "%s%s%s", real, strcmp(real, "/") ? "/" : "", name);
  free(real);
  return 1;
}

/* hash(s) -> 16 hex digits; random_id() -> 16 random hex digits */
/* http_date(s) -> seconds since the epoch, or nil (nginx's transport reads Date with it) */
static int l_http_date(lua_State *L) {
  double t = sv_http_date(luaL_checkstring(L, 1));
  if (t < 0) return 0;
  lua_pushnumber(L, t);
  return 1;
}

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

/* request_id() -> a new X-Request-Id: a random UUID (v4), lowercase (request.lua, one per attempt). */
static int l_request_id(lua_State *L) {
  char out[37];
  sv_request_id(out);
  lua_pushstring(L, out);
  return 1;
}

/* --------------------------------------------------------------- open */

/* The transport's binding (curl.c): linked into the static library (and
   the ASan build), where the core gives it as core.curl; core.so leaves it to
   starvideos.curl, so the weak reference is NULL there. */
extern int lsv_curl_register(lua_State *L) __attribute__((weak, visibility("hidden")));

static const luaL_Reg funcs[] = {
  { "validate", l_validate }, { "build_create", l_build_create }, { "result_path", l_result_path },
  { "verdict", l_verdict }, { "retry", l_retry }, { "check_url", l_check_url }, { "check_proxy", l_check_proxy },
  { "redirect", l_redirect }, { "tunnel_refused", l_tunnel_refused },
  { "too_long", l_too_long }, { "content_range", l_content_range }, { "http_date", l_http_date }, { "hash", l_hash },
  { "file_kind", l_file_kind }, { "file_key", l_file_key }, { "read_whole", l_read_whole },
  { "random_id", l_random_id }, { "request_id", l_request_id }, { "now", l_now }, { "wall", l_wall }, { "sleep", l_sleep }, { "isatty", l_isatty },
  { "uid", l_uid },
  { NULL, NULL }
};

LUAOPEN_API int luaopen_starvideos_core(lua_State *L) {
  int k;
  lsv_error_metatable(L);
  luaL_newlib(L, funcs);
  lsv_open_part(L);
  lsv_open_commit(L);
  lsv_open_run(L);
  lsv_open_lock(L);
  lsv_open_media(L);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "error_mt");
  lua_remove(L, -2);
  if (lsv_curl_register) {
    lsv_curl_register(L);
    lua_setfield(L, -2, "curl");
  }
  /* the libcurl starvideos.curl is built with (its header only: core.so does not
     link libcurl), for the default User-Agent (options.lua) */
  lsv_set_cstr(L, "libcurl_version", LIBCURL_VERSION);
  push_models(L);
  lua_setfield(L, -2, "models");
  lua_newtable(L); /* the kinds of error made above the core that are transient (errors.lua) */
  lua_newtable(L); /* every kind, in order (types/starvideos.lua's ErrorKind: tools/types.lua) */
  for (k = SV_E_INVALID; k <= SV_E_LAST; k++) {
    lua_pushstring(L, sv_kind_name((sv_kind)k));
    lua_rawseti(L, -2, k - SV_E_INVALID + 1);
    if (sv_transient((sv_kind)k, SV_WIRE_NONE, 0)) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -3, sv_kind_name((sv_kind)k));
    }
  }
  lua_setfield(L, -3, "kinds");
  lua_setfield(L, -2, "transient");
  push_list(L, sv_field_names);
  lua_setfield(L, -2, "fields");
  {
    size_t n;
    const char *const *media = sv_media_fields(&n);
    push_list_n(L, media, n); /* those of them that name reference media (create.lua, the emulator) */
    lua_setfield(L, -2, "media_fields");
  }
  lua_pushinteger(L, SV_ERROR_PAGE_MAX); /* both transports' (nginx/transport.lua's too) */
  lua_setfield(L, -2, "error_page_max");
  lua_pushinteger(L, SV_PARTS_KEPT);
  lua_setfield(L, -2, "parts_kept");
  lsv_set_cstr(L, "_VERSION", "starvideos.core 0.4.0");
  return 1;
}
