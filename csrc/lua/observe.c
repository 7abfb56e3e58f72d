/* What an HTTP exchange leaves for the metrics and the traces (extras/observe.lua, docs/observability.md),
   noted in C where the exchange ends (a Lua histogram's update costs several times as much): its request
   duration counted in an array this object owns (by operation, status class and the histogram's
   bucket, read and zeroed by exchanges_take when the metrics are written or flushed); its CLIENT span is the
   tracer's (extras/trace.lua), given the op's name from here. */
#include "lsv.h"

#include "compat.h"

#include <stdlib.h>
#include <string.h>

#define MT "starvideos.exchanges"
#define OPS 8      /* request ops known (request.lua's), at most */
#define BOUNDS 16  /* a histogram's bounds, at most (+Inf: one bucket more) */
#define CODES 6    /* 1xx .. 5xx, error */

static const char *const codes[CODES] = { "1xx", "2xx", "3xx", "4xx", "5xx", "error" };

typedef struct obs {
  int nle, nops, download, count; /* download: the op index a job's media GET counts as; count: metrics on */
  double le[BOUNDS];
  char rop[OPS][16], op[OPS][16]; /* a request's op, the metrics' name of it */
  double n[OPS][CODES][BOUNDS + 1], sum[OPS][CODES], bytes;
} obs;

/* t[i] of the list at idx as a string of fewer than size bytes into out (raises otherwise). */
static void copy_field(lua_State *L, int idx, int i, char *out, size_t size) {
  size_t len;
  const char *s;
  lua_rawgeti(L, idx, i);
  s = lua_tolstring(L, -1, &len);
  luaL_argcheck(L, s && len < size, 2, "ops: {request op, metrics op} strings");
  memcpy(out, s, len + 1);
  lua_pop(L, 1);
}

/* exchanges(bounds, ops, count) -> an object noting exchanges: bounds the duration histogram's (ascending),
   ops a list of {request op, the metrics' operation}; count: whether durations are counted. */
static int l_exchanges(lua_State *L) {
  obs *h;
  int i;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  h = lsv_new_object(L, sizeof *h, 0, MT);
  h->nle = (int)lua_rawlen(L, 1), h->nops = (int)lua_rawlen(L, 2), h->count = lua_toboolean(L, 3), h->download = -1;
  luaL_argcheck(L, h->nle <= BOUNDS, 1, "at most 16 bounds");
  luaL_argcheck(L, h->nops <= OPS, 2, "at most 8 ops");
  for (i = 0; i < h->nle; i++) {
    lua_rawgeti(L, 1, i + 1);
    h->le[i] = luaL_checknumber(L, -1);
    lua_pop(L, 1);
  }
  for (i = 0; i < h->nops; i++) {
    lua_rawgeti(L, 2, i + 1);
    luaL_argcheck(L, lua_istable(L, -1), 2, "ops: a list of {request op, metrics op}");
    copy_field(L, -1, 1, h->rop[i], sizeof h->rop[i]);
    copy_field(L, -1, 2, h->op[i], sizeof h->op[i]);
    if (strcmp(h->op[i], "download") == 0) h->download = i;
    lua_pop(L, 1);
  }
  return 1;
}

/* The index of the op at idx (the request's, at 2) among h's, -1 when it is none of them; a media GET of a
   job's (an upload's part of the video, storage/object.lua) counts as a download. */
static int op_of(lua_State *L, const obs *h, int idx) {
  size_t len = 0;
  const char *rop = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
  int i;
  for (i = 0; rop && i < h->nops && !(len < sizeof h->rop[i] && h->rop[i][len] == 0 &&
                                      memcmp(rop, h->rop[i], len) == 0); i++) {}
  if (!rop || i == h->nops) return -1;
  if (i != h->download && h->download >= 0 && len == 5 && memcmp(rop, "media", 5) == 0) {
    lua_getfield(L, 2, "owner");
    if (lua_istable(L, -1)) lua_getfield(L, -1, "job");
    else lua_pushnil(L);
    if (lua_toboolean(L, -1)) i = h->download;
    lua_pop(L, 2);
  }
  return i;
}

/* req's number field k (at idx), or dflt. */
static double num_field(lua_State *L, int idx, const char *k, double dflt) {
  double v;
  lua_getfield(L, idx, k);
  v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : dflt;
  lua_pop(L, 1);
  return v;
}

/* The duration's count (and a download's bytes, counted from its offset) of an exchange of op i. */
static void count(lua_State *L, obs *h, int i, double t, int code) {
  double dt = t - (lua_type(L, 4) == LUA_TNUMBER ? lua_tonumber(L, 4) : t), bytes;
  int b = 0;
  while (b < h->nle && dt > h->le[b]) b++;
  h->n[i][code][b] += 1;
  h->sum[i][code] += dt;
  if (i != h->download || lua_type(L, 8) != LUA_TNUMBER) return;
  bytes = lua_tonumber(L, 8) - (strcmp(lua_tostring(L, 3), "download") == 0 ? num_field(L, 2, "offset", 0) : 0);
  if (bytes > 0) h->bytes += bytes;
}

/* exchange_note(h, req, op, started, t, status, wire, bytes) -> the metrics' name of req's op (nil: none of
   h's ops, the exchange not observed): an exchange of req (its op and the time it was sent, nil: never) ended at
   t, status its answer's when wire is "none", bytes a download's; its duration counted when h counts. */
static int l_exchange_note(lua_State *L) {
  obs *h = lua_touserdata(L, 1);
  double t = luaL_checknumber(L, 5);
  int i, code = CODES - 1;
  if (!h || !lua_getmetatable(L, 1) || !lua_rawequal(L, -1, lua_upvalueindex(1)))
    return luaL_argerror(L, 1, "an object of core.exchanges");
  luaL_checktype(L, 2, LUA_TTABLE);
  i = op_of(L, h, 3);
  if (i < 0) return 0;
  if (lua_type(L, 6) == LUA_TNUMBER && lua_type(L, 7) == LUA_TSTRING && strcmp(lua_tostring(L, 7), "none") == 0 &&
      lua_tonumber(L, 6) >= 100 && lua_tonumber(L, 6) < 600)
    code = (int)(lua_tonumber(L, 6) / 100) - 1;
  if (h->count) count(L, h, i, t, code);
  lua_pushstring(L, h->op[i]);
  return 1;
}

/* exchanges_take(h) -> a list of op, code, part, value for each count since the last take (part: a bucket's
   index from 1, 0 the sum), and the bytes downloaded; the counts zeroed. */
static int l_exchanges_take(lua_State *L) {
  obs *h = luaL_checkudata(L, 1, MT);
  int i, c, b, n = 0;
  lua_newtable(L);
  for (i = 0; i < h->nops; i++)
    for (c = 0; c < CODES; c++)
      for (b = 0; b <= h->nle + 1; b++) {
        double *v = b <= h->nle ? &h->n[i][c][b] : &h->sum[i][c];
        if (*v == 0) continue;
        lua_pushstring(L, h->op[i]);
        lua_rawseti(L, -2, ++n);
        lua_pushstring(L, codes[c]);
        lua_rawseti(L, -2, ++n);
        lua_pushinteger(L, b <= h->nle ? b + 1 : 0);
        lua_rawseti(L, -2, ++n);
        lua_pushnumber(L, *v);
        lua_rawseti(L, -2, ++n);
        *v = 0;
      }
  lua_pushnumber(L, h->bytes);
  h->bytes = 0;
  return 2;
}

/* ---------------------------------------------------------- the CLIENT spans' values */

#define SLOTS_MT "starvideos.span_slots"

/* A CLIENT span's values, kept from its exchange to its export: its strings in text (url, method, op, error.type,
   the error's message, the parent's trace id and span id, each at its length), the rest in s. */
typedef struct slot {
  sv_span s;
  char *text;
  size_t size;
} slot;

typedef struct slots {
  lua_Integer cap;
  slot *slot;
} slots;

static int slots_gc(lua_State *L) {
  slots *q = luaL_checkudata(L, 1, SLOTS_MT);
  lua_Integer k;
  for (k = 0; q->slot && k < q->cap; k++) free(q->slot[k].text);
  free(q->slot);
  q->slot = NULL;
  return 0;
}

/* span_slots(cap) -> room for cap CLIENT spans' values (extras/trace.lua's queue: slot k of its ring). */
static int l_span_slots(lua_State *L) {
  lua_Integer cap = luaL_checkinteger(L, 1);
  slots *q;
  luaL_argcheck(L, cap > 0 && cap <= 1000000, 1, "a number of slots from 1 to 1000000");
  q = lsv_new_object(L, sizeof *q, 0, SLOTS_MT);
  q->slot = calloc((size_t)cap, sizeof *q->slot);
  if (!q->slot) return luaL_error(L, "out of memory");
  q->cap = cap;
  return 1;
}

/* The string at idx (or the field k of the table at idx when k), NULL and 0 when it is none. */
static const char *str_at(lua_State *L, int idx, const char *k, size_t *len) {
  *len = 0;
  if (k) {
    if (!lua_istable(L, idx)) return NULL;
    lua_getfield(L, idx, k);
    idx = -1;
  }
  return lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, len) : NULL;
}

/* The strings of the span put (their order: sv_span's url, method, op, etype, emsg, trace, parent). */
static int put_strings(lua_State *L, slot *sl, const char *const *str, const size_t *len) {
  size_t need = 0, at = 0;
  int i;
  const char **to[7];
  size_t *to_len[7], none = 0;
  to[0] = &sl->s.url, to[1] = &sl->s.method, to[2] = &sl->s.op, to[3] = &sl->s.etype, to[4] = &sl->s.emsg;
  to[5] = &sl->s.trace, to[6] = &sl->s.parent;
  to_len[0] = &sl->s.url_len, to_len[1] = &sl->s.method_len, to_len[2] = &sl->s.op_len;
  to_len[3] = &sl->s.etype_len, to_len[4] = &sl->s.emsg_len, to_len[5] = to_len[6] = &none;
  for (i = 0; i < 7; i++) need += len[i] + 1;
  if (need > sl->size) {
    char *t = realloc(sl->text, need);
    if (!t) return luaL_error(L, "out of memory");
    sl->text = t, sl->size = need;
  }
  for (i = 0; i < 7; i++) {
    *to[i] = str[i] ? sl->text + at : NULL;
    *to_len[i] = len[i];
    if (str[i]) memcpy(sl->text + at, str[i], len[i]);
    sl->text[at + len[i]] = 0;
    at += len[i] + 1;
  }
  return 0;
}

/* span_put(slots, k, url, method, op, t0, t1, status or wire, attempt, err, parent): the values of the CLIENT
   span of an exchange into slot k: status a number (an answer's) or how the wire ended (a string), err a table
   ({kind =, message =}) or false, parent a table ({trace =, id =}) or false.  error.type: the status when an
   answer came, else how the wire ended, else the error's kind. */
static int l_span_put(lua_State *L) {
  slots *q = lua_touserdata(L, 1);
  lua_Integer k = luaL_checkinteger(L, 2);
  const char *str[7];
  size_t len[7] = { 0, 0, 0, 0, 0, 0, 0 };
  slot *sl;
  if (!q || !lua_getmetatable(L, 1) || !lua_rawequal(L, -1, lua_upvalueindex(1)))
    return luaL_argerror(L, 1, "the span_slots of the queue");
  luaL_argcheck(L, k >= 1 && k <= q->cap, 2, "a slot of the queue");
  sl = &q->slot[k - 1];
  lua_settop(L, 11);
  str[0] = str_at(L, 3, NULL, &len[0]), str[1] = str_at(L, 4, NULL, &len[1]), str[2] = str_at(L, 5, NULL, &len[2]);
  sl->s.t0 = lua_tonumber(L, 6), sl->s.t1 = lua_tonumber(L, 7);
  sl->s.status = lua_type(L, 8) == LUA_TNUMBER ? (long)lua_tonumber(L, 8) : 0;
  sl->s.resend = (long)lua_tonumber(L, 9) - 1;
  sl->s.failed = lua_istable(L, 10);
  str[3] = sl->s.failed && !sl->s.status ? str_at(L, 8, NULL, &len[3]) : NULL;
  if (!str[3] && sl->s.failed) str[3] = str_at(L, 10, "kind", &len[3]);
  if (!str[3] && sl->s.failed) str[3] = "error", len[3] = 5;
  str[4] = str_at(L, 10, "message", &len[4]);
  str[5] = str_at(L, 11, "trace", &len[5]);
  if (len[5] != 32) str[5] = NULL, len[5] = 0;
  str[6] = str_at(L, 11, "id", &len[6]);
  if (len[6] != 16) str[6] = NULL, len[6] = 0;
  if (!str[0]) str[0] = "", len[0] = 0;
  if (!str[1]) str[1] = "", len[1] = 0;
  if (!str[2]) str[2] = "", len[2] = 0;
  put_strings(L, sl, str, len);
  return 0;
}

const sv_span *lsv_span_slot(lua_State *L, int idx, lua_Integer k) {
  slots *q = luaL_checkudata(L, idx, SLOTS_MT);
  return k >= 1 && k <= q->cap && q->slot[k - 1].text ? &q->slot[k - 1].s : NULL;
}

void lsv_open_observe(lua_State *L) {
  static const luaL_Reg fns[] = { { "exchanges", l_exchanges }, { "exchanges_take", l_exchanges_take },
                                  { "span_slots", l_span_slots }, { NULL, NULL } };
  if (luaL_newmetatable(L, MT)) {
    lsv_set_cstr(L, "__name", MT);
  }
  if (luaL_newmetatable(L, SLOTS_MT)) {
    lua_pushcfunction(L, slots_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pushcclosure(L, l_span_put, 1); /* (their upvalues: the classes, checked without a look-up by name) */
  lua_setfield(L, -3, "span_put");
  lua_pushcclosure(L, l_exchange_note, 1);
  lua_setfield(L, -2, "exchange_note");
  luaL_setfuncs(L, fns, 0);
}
