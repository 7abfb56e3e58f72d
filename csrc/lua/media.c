/* The media functions of starvideos.core (the core's media.c and the media
   rules of models.c): media_sniff, media_tail and media_check (a download's
   whole-MP4 check is its commit's: commit.c, part.c).  An info table is the Lua
   face of an sv_media: what was found, and nothing for what was not. */
#include "lsv.h"

#include "compat.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const types[] = { "png", "jpeg", "webp", "gif", "mp4", "mov", "wav", "mp3", "m4a", "aac", "ogg",
                                     "html", "json", "xml", "text", NULL };
static const char *const kinds[] = { "image", "video", "audio", "text", NULL };

/* t[key] = v when v is at least lo (an integer when it is one), else nil */
static void set_num(lua_State *L, const char *key, double v, double lo) {
  if (!(v >= lo)) lua_pushnil(L);
  else if (v == floor(v) && v <= 9007199254740991.0) lua_pushinteger(L, (lua_Integer)v);
  else lua_pushnumber(L, v);
  lua_setfield(L, -2, key);
}

/* *m into the info table on top */
static void fill_info(lua_State *L, const sv_media *m) {
  lsv_set_cstr(L, "kind", sv_media_kind_name(m->kind));
  lsv_set_cstr(L, "type", m->type);
  set_num(L, "width", m->width, 1);
  set_num(L, "height", m->height, 1);
  set_num(L, "duration", m->duration, 0);
  set_num(L, "size", m->size, 0);
  set_num(L, "tail", m->tail, 0);
  set_num(L, "rate", m->rate, 1); /* an OGG's, for media_tail */
  set_num(L, "pre_skip", m->pre_skip, 1);
}

/* info[key] of the info table at idx: a number >= 0, or `none` when absent */
static double info_num(lua_State *L, int idx, const char *key, double none, int arg, const char *where) {
  double v = none;
  lua_getfield(L, idx, key);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0) || isinf(lua_tonumber(L, -1)))
      luaL_argerror(L, arg, lua_pushfstring(L, "%s.%s: expected a number of 0 or more", where, key));
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* The info table at idx back into *m; raises naming argument arg and `where` on a
   bad one. */
static void to_info(lua_State *L, int idx, sv_media *m, int arg, const char *where) {
  int i;
  if (!lua_istable(L, idx)) luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected an info table", where));
  sv_media_init(m);
  lua_getfield(L, idx, "kind");
  for (i = 0; kinds[i] && !(lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), kinds[i]) == 0); i++) {}
  if (!kinds[i])
    luaL_argerror(L, arg, lua_pushfstring(L, "%s.kind: expected \"image\", \"video\", \"audio\" or \"text\"", where));
  m->kind = (sv_media_kind)(i + 1);
  lua_getfield(L, idx, "type");
  for (i = 0; types[i] && !(lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), types[i]) == 0); i++) {}
  if (!types[i]) luaL_argerror(L, arg, lua_pushfstring(L, "%s.type: expected a type media_sniff gives", where));
  m->type = types[i];
  lua_pop(L, 2);
  m->size = info_num(L, idx, "size", -1, arg, where);
  m->width = info_num(L, idx, "width", 0, arg, where);
  m->height = info_num(L, idx, "height", 0, arg, where);
  m->duration = info_num(L, idx, "duration", -1, arg, where);
  m->tail = info_num(L, idx, "tail", -1, arg, where);
  m->rate = info_num(L, idx, "rate", 0, arg, where);
  m->pre_skip = info_num(L, idx, "pre_skip", 0, arg, where);
}

/* the info table at idx (0: a new one) filled from *m, or nil and why */
static int answer(lua_State *L, int rc, const sv_media *m, sv_buf *why, int idx) {
  if (rc < 0) return lsv_answer(L, rc, why);
  sv_buf_free(why);
  if (idx) lua_pushvalue(L, idx);
  else lua_newtable(L);
  fill_info(L, m);
  return 1;
}

/* media_sniff(head [, total]) -> info | nil, why */
static int l_media_sniff(lua_State *L) {
  size_t n;
  const char *head = luaL_checklstring(L, 1, &n);
  double total = luaL_optnumber(L, 2, -1);
  sv_media m;
  sv_buf why = { 0 };
  if (!lua_isnoneornil(L, 2) && !(total >= 0 && !isinf(total))) luaL_argerror(L, 2, "total: a size of 0 or more");
  return answer(L, sv_media_sniff((const unsigned char *)head, n, total, &m, &why), &m, &why, 0);
}

/* media_tail(info, bytes, offset) -> info (the same table, filled) | nil, why */
static int l_media_tail(lua_State *L) {
  size_t n;
  const char *bytes = luaL_checklstring(L, 2, &n);
  double offset = luaL_checknumber(L, 3);
  sv_media m;
  sv_buf why = { 0 };
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!(offset >= 0 && !isinf(offset))) luaL_argerror(L, 3, "offset: a byte offset of 0 or more");
  to_info(L, 1, &m, 1, "info");
  return answer(L, sv_media_tail(&m, (const unsigned char *)bytes, n, offset, &why), &m, &why, 1);
}

/* items[i].key: a string; raises naming it */
static const char *item_string(lua_State *L, size_t i, const char *key) {
  const char *s;
  lua_getfield(L, -1, key);
  if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 2, lua_pushfstring(L, "items[%d].%s: expected a string", (int)i, key));
  s = lua_tostring(L, -1);
  lua_pop(L, 1); /* the items table keeps it alive */
  return s;
}

/* media_check(model, items [, min_side [, note_side]]) -> findings: { field =, message =, definite = }...
   (sides in px: an image's shorter side under min_side refused, under note_side a note; 0: none) */
static int l_media_check(lua_State *L) {
  const char *model = luaL_checkstring(L, 1);
  double min_side = luaL_optnumber(L, 3, 0), note_side = luaL_optnumber(L, 4, 0);
  size_t n, i;
  sv_media *infos;
  sv_media_item *items;
  sv_buf out = { 0 };
  sv_error err;
  const sv_media_finding *f;
  char where[40];
  luaL_checktype(L, 2, LUA_TTABLE);
  n = (size_t)lua_rawlen(L, 2);
  infos = lua_newuserdata(L, n * sizeof *infos + 1);
  items = lua_newuserdata(L, n * sizeof *items + 1);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 2, (lua_Integer)i + 1);
    if (!lua_istable(L, -1)) luaL_argerror(L, 2, lua_pushfstring(L, "items[%d]: expected a table", (int)i + 1));
    items[i].field = item_string(L, i + 1, "field");
    items[i].name = item_string(L, i + 1, "name");
    lua_getfield(L, -1, "status");
    if (!lua_isnil(L, -1) && !lua_isinteger(L, -1))
      luaL_argerror(L, 2, lua_pushfstring(L, "items[%d].status: expected an HTTP status", (int)i + 1));
    items[i].status = (long)lua_tointeger(L, -1);
    lua_getfield(L, -2, "info");
    items[i].info = NULL;
    if (!lua_isnil(L, -1)) {
      snprintf(where, sizeof where, "items[%d].info", (int)i + 1);
      to_info(L, lua_gettop(L), &infos[i], 2, where);
      items[i].info = &infos[i];
    }
    lua_pop(L, 3);
  }
  sv_error_clear(&err);
  if (sv_media_check(model, items, n, min_side, note_side, &out, &err) < 0) {
    sv_buf_free(&out);
    if (err.kind == SV_E_INVALID) return luaL_argerror(L, strcmp(err.field, "model") == 0 ? 1 : 2, err.message);
    return luaL_error(L, "%s", err.message);
  }
  lua_createtable(L, (int)(out.len / sizeof *f), 0);
  for (f = (const sv_media_finding *)(void *)out.data, i = 0; i < out.len / sizeof *f; i++) {
    lua_createtable(L, 0, 3);
    lsv_set_cstr(L, "field", f[i].field);
    lsv_set_cstr(L, "message", f[i].message);
    lua_pushboolean(L, f[i].definite);
    lua_setfield(L, -2, "definite");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  sv_buf_free(&out);
  return 1;
}

/* private_host(host) -> why | nil: the refusal of a reference URL's host (as
   check_url gives it) that is a non-public address (sv_host_private), or nil */
static int l_private_host(lua_State *L) {
  size_t len;
  const char *host = luaL_checklstring(L, 1, &len), *what = sv_host_private(host, len);
  if (!what) return 0;
  lua_pushfstring(L, SV_NOT_PUBLIC, host, what);
  return 1;
}

static const luaL_Reg funcs[] = {
  { "media_sniff", l_media_sniff }, { "media_tail", l_media_tail }, { "media_check", l_media_check },
  { "private_host", l_private_host }, { NULL, NULL }
};

void lsv_open_media(lua_State *L) {
  luaL_setfuncs(L, funcs, 0);
  lsv_set_cstr(L, "CANNOT_FETCH", SV_CANNOT_FETCH); /* in every refusal of a non-public reference address */
}
