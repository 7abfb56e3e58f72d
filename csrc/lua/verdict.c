/* The verdict's Lua face (lsv.h's lsv_push_verdict): the task table built from
   the core's one scan of an answer, the error table, the rate limits.  The
   modules that read answers link it (core, curl, sign); the s3 rock's sigv4.so,
   which reads none, does not. */
#include "lsv.h"

#include "compat.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------- the answer as a table */

/* The task table, built from the parts the core's one scan of an answer hands
   over (sv_json_sink): the shape a task is promised to have.  JSON null is no
   value (a key or an array slot left out), a number that is whole and fits is
   an integer on 5.3 and later (a float otherwise, as strtod reads it), a key
   that comes twice in a nested object keeps its last value, a null one none
   (the core refuses a key twice at the top).  Each open object or array is on the stack, an
   object's key above it until its value comes. */
#define BUILD_DEPTH 66 /* the core's scan nests 64 deep at most */

typedef struct builder {
  lua_State *L;
  int depth;
  char array[BUILD_DEPTH];       /* per open level: 1 an array, 0 an object */
  lua_Integer n[BUILD_DEPTH];    /* per open array: the slots so far */
} builder;

/* The value on top goes into the container under it (under its key). */
static void put(builder *b) {
  int d = b->depth - 1;
  if (d < 0) return; /* the whole value: it stays */
  if (b->array[d]) lua_rawseti(b->L, -2, (int)++b->n[d]);
  else lua_rawset(b->L, -3);
}

static void b_open(void *ctx, int array) {
  builder *b = ctx;
  luaL_checkstack(b->L, 4, "starvideos: answer nested too deep");
  if (b->depth >= BUILD_DEPTH) luaL_error(b->L, "starvideos: answer nested too deep");
  lua_createtable(b->L, 0, b->depth == 0 && !array ? 8 : 0); /* a task has about 8 members: made at that size */
  b->array[b->depth] = (char)array;
  b->n[b->depth] = 0;
  b->depth++;
}

static void b_close(void *ctx) {
  builder *b = ctx;
  b->depth--;
  put(b);
}

/* A key (and a string's value): its text (with its quotes) pushed, unescaped when it holds escapes. */
static void b_key(void *ctx, const char *val, size_t len, int escaped) {
  lua_State *L = ((builder *)ctx)->L;
  char small[256], *out;
  size_t n;
  if (!escaped) {
    lua_pushlstring(L, val + 1, len - 2);
    return;
  }
  out = len <= sizeof small ? small : lua_newuserdata(L, len); /* unescaped, never longer */
  n = sv_json_unescape_into(val, len, out);
  lua_pushlstring(L, out, n == (size_t)-1 ? 0 : n);
  if (out != small) lua_remove(L, -2);
}

static void b_string(void *ctx, const char *val, size_t len, int escaped) {
  b_key(ctx, val, len, escaped);
  put(ctx);
}

static void b_number(void *ctx, double v) {
  builder *b = ctx;
#if LUA_VERSION_NUM >= 503
  /* whole and within lua_Integer's range: what lua_tointegerx takes exactly */
  if (v >= (double)LUA_MININTEGER && v < -(double)LUA_MININTEGER && floor(v) == v)
    lua_pushinteger(b->L, (lua_Integer)v);
  else
#endif
    lua_pushnumber(b->L, (lua_Number)v);
  put(b);
}

static void b_literal(void *ctx, char type) {
  builder *b = ctx;
  int d = b->depth - 1;
  if (type != 'z') { lua_pushboolean(b->L, type == 't'); put(b); return; }
  if (d < 0) return;
  if (b->array[d]) { b->n[d]++; return; } /* a null slot: left out, the next keeps its place */
  lua_pushnil(b->L); /* a null member: no value (nor one an earlier same key gave) */
  lua_rawset(b->L, -3);
}

/* An API answer's rate limits (sv_read_limits), as a table {limit =, remaining =, reset =, window =, family =}
   (those it said), or nothing when it said none.  A task read from an error answer (a create's 429 that names
   the task it made: `named`) adds its status and Retry-After (status =, retry_after =): the key still holds. */
static int push_limits(lua_State *L, const sv_exchange *x, int named) {
  sv_limits l;
  double wall = sv_wallclock(), after = named ? sv_parse_retry_after(x->retry_after, wall) : -1;
  int said = sv_read_limits(x->limits, x->limits_len, wall, &l);
  if (!said && !named) return 0;
  lua_createtable(L, 0, 7);
  if (named) {
    lsv_set_int(L, "status", (lua_Integer)x->status);
    if (after >= 0) { lua_pushnumber(L, after); lua_setfield(L, -2, "retry_after"); }
  }
  if (!said) return 1;
  if (l.limit >= 0) { lua_pushnumber(L, l.limit); lua_setfield(L, -2, "limit"); }
  if (l.remaining >= 0) { lua_pushnumber(L, l.remaining); lua_setfield(L, -2, "remaining"); }
  if (l.reset >= 0) { lua_pushnumber(L, l.reset); lua_setfield(L, -2, "reset"); }
  if (l.window >= 0) { lua_pushnumber(L, l.window); lua_setfield(L, -2, "window"); }
  lua_pushstring(L, sv_limits_families[l.family]);
  lua_setfield(L, -2, "family");
  return 1;
}

/* What each reading gives beside the error (lsv_push_verdict): the service's, the task (the one value the scan
   left above top) and its rate limits; a file's, "" and its bytes and size; another host's, {status =, body =,
   headers =} (its header lines when kept) and its bytes and size.  Each returns how many it pushed after err
   (err: at -1, below which its body goes). */
static int push_bytes_total(lua_State *L, const sv_exchange *x) {
  lua_pushinteger(L, (lua_Integer)x->bytes);
  if (x->total >= 0) lua_pushinteger(L, (lua_Integer)x->total);
  else lua_pushnil(L);
  return 2;
}

static void task_body(lua_State *L, const sv_exchange *x, int top) {
  (void)x;
  lua_settop(L, top + 1);
}

static int task_rest(lua_State *L, const sv_exchange *x, int rc) {
  return push_limits(L, x, rc == 0 && (x->status < 200 || x->status > 299));
}

static void file_body(lua_State *L, const sv_exchange *x, int top) {
  (void)x;
  lua_settop(L, top);
  lua_pushliteral(L, "");
}

static void bytes_body(lua_State *L, const sv_exchange *x, int top) {
  lua_settop(L, top);
  lua_createtable(L, 0, 3);
  lsv_set_int(L, "status", (lua_Integer)x->status);
  lsv_set_str(L, "body", x->body ? x->body : "", x->body ? x->body_len : 0);
  if (x->heads) lsv_set_str(L, "headers", x->heads, x->heads_len);
}

static int other_rest(lua_State *L, const sv_exchange *x, int rc) {
  (void)rc;
  return push_bytes_total(L, x);
}

typedef struct pusher {
  void (*body)(lua_State *L, const sv_exchange *x, int top); /* a success's body, at top + 1 */
  int (*rest)(lua_State *L, const sv_exchange *x, int rc);            /* after wire */
} pusher;

static const pusher TASK = { task_body, task_rest }, FILE_ = { file_body, other_rest },
                    BYTES = { bytes_body, other_rest };
static const pusher *const pushers[] = { [SV_READS_TASK] = &TASK, [SV_READS_FILE] = &FILE_,
                                         [SV_READS_BYTES] = &BYTES };

/* body, err, wire, then what its reading gives (pushers): body is its success's (nil on an error), err the error
   table (nil on a success). */
int lsv_push_verdict(lua_State *L, const sv_exchange *x, const char *secret) {
  sv_error err;
  sv_wire wire;
  sv_exchange with = *x;
  builder b = { L, 0, { 0 }, { 0 } };
  sv_json_sink sink = { b_open, b_close, b_key, b_string, b_number, b_literal, &b };
  const pusher *p = pushers[sv_verdict_reads(x)];
  int rc, top = lua_gettop(L);
  with.sink = &sink;
  rc = sv_verdict(&with, sv_wallclock(), secret, &err, &wire);
  if (rc) {
    lua_settop(L, top);
    lua_pushnil(L);
    lsv_push_error(L, &err);
  } else {
    p->body(L, x, top);
    lua_pushnil(L);
  }
  lua_pushstring(L, sv_wire_names[wire]);
  return 3 + p->rest(L, x, rc);
}
