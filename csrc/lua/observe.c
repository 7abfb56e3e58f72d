/* What an HTTP exchange leaves for the metrics and the traces (extras/observe.lua, docs/observability.md),
   noted in C where the exchange ends (a Lua histogram's update costs several times as much): its request
   duration counted in an array this object owns (by operation, status class and the histogram's
   bucket, read and zeroed by exchanges_take when the metrics are written or flushed); its CLIENT span is the
   tracer's (extras/trace.lua), given the op's name from here. */
#include "lsv.h"

#include "compat.h"

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
  h = lua_newuserdatauv(L, sizeof *h, 0);
  memset(h, 0, sizeof *h);
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
  luaL_getmetatable(L, MT);
  lua_setmetatable(L, -2);
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

void lsv_open_observe(lua_State *L) {
  static const luaL_Reg fns[] = { { "exchanges", l_exchanges }, { "exchanges_take", l_exchanges_take },
                                  { NULL, NULL } };
  if (luaL_newmetatable(L, MT)) {
    lua_pushliteral(L, MT);
    lua_setfield(L, -2, "__name");
  }
  lua_pushcclosure(L, l_exchange_note, 1); /* (its upvalue: the class, checked without a look-up by name) */
  lua_setfield(L, -2, "exchange_note");
  luaL_setfuncs(L, fns, 0);
}
