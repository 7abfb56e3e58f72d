/* starvideos.redis: a non-blocking Redis connection on hiredis (issue 14).

   Its own shared object (build/starvideos/redis.so), loaded only when a store
   is used (lua/starvideos/store.lua), so that the library builds, loads and
   works where hiredis is missing.  Nothing here ever waits but conn:poll, and
   that at most the `wait` it is given: the connect is non-blocking, commands
   are queued in hiredis' output buffer, and bytes move only when poll(2) says
   the socket is ready.  hiredis is used for its protocol writer and reader
   alone (redisAppendCommandArgv, redisBufferWrite, redisBufferRead,
   redisGetReplyFromReader), never for a blocking redisGetReply.

     redis.connect(host, port[, {timeout = s}]) -> conn | nil, err
         host a numeric address or a name (a name is resolved by getaddrinfo,
         which may block: the store passes what the user wrote).  timeout: the
         longest the server may stay silent while something is pending (the
         connect or a command) before the connection is broken with err; none
         when absent.
     conn:send(arg, ...) -> n | nil, err     strings (or numbers); n counts from 1
     conn:poll(wait) -> k | nil, err         moves what is ready, waits at most
         `wait` seconds (0: not at all) for the next reply; k the replies read.
     conn:reply(n) -> value | false, msg | nil[, err]
         value: bulk and status -> string, integer -> integer, nil ->
         redis.null, array -> table (an error inside one -> {err = msg}).
         false, msg: Redis answered n with an error reply.  nil: not there
         yet; nil, err: it never will be (the connection broke).  A reply is
         given once.
     conn:pending() -> the commands sent whose reply has not arrived
     conn:close()                            idempotent, also __gc and __close
     redis.null                              the nil reply (a NULL light
                                             userdata, equal to ngx.null)

   Every err is a string naming host:port (refused, reset, closed, timeout).
   The module never calls Lua but through the binding's own API. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "../lua/compat.h" /* and lua.h, lauxlib.h */

#ifndef LUAOPEN_API
#define LUAOPEN_API __attribute__((visibility("default")))
#endif

#define CONN_MT "starvideos.redis"

typedef struct {
  redisContext *c;
  int connecting;          /* the non-blocking connect is under way */
  lua_Integer sent, got;   /* commands queued, replies read */
  double timeout;          /* seconds; <= 0: none */
  double last;             /* when the server last moved (or the wait began) */
  char where[300];         /* "host:port" */
  char err[512];           /* set once: the connection is broken */
} lconn;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(lconn *k, const char *what, const char *detail) {
  if (k->err[0]) return;
  snprintf(k->err, sizeof k->err, "redis %s: %s%s%s", k->where, what, detail ? ": " : "", detail ? detail : "");
}

/* nil, the connection's error (what and detail set it first, unless one is set already). */
static int push_err(lua_State *L, lconn *k, const char *what, const char *detail) {
  if (what) fail(k, what, detail);
  luaL_pushfail(L);
  lua_pushstring(L, k->err);
  return 2;
}

/* An error reply becomes {err = msg} (an array's table has no such key). */
static void push_reply(lua_State *L, const redisReply *r) {
  size_t i;
  luaL_checkstack(L, 4, "redis: reply nested too deep");
  switch (r->type) {
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
    lua_pushlstring(L, r->str, r->len);
    break;
  case REDIS_REPLY_INTEGER:
    lua_pushinteger(L, (lua_Integer)r->integer);
    break;
  case REDIS_REPLY_ARRAY:
    lua_createtable(L, (int)r->elements, 0);
    for (i = 0; i < r->elements; i++) {
      push_reply(L, r->element[i]);
      lua_rawseti(L, -2, (int)i + 1);
    }
    break;
  case REDIS_REPLY_ERROR:
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, r->str, r->len);
    lua_setfield(L, -2, "err");
    break;
  default: /* REDIS_REPLY_NIL */
    lua_pushlightuserdata(L, NULL);
    break;
  }
}

/* Every whole reply in hiredis' reader into the replies table (at -1). */
static int drain(lua_State *L, lconn *k) {
  int n = 0;
  for (;;) {
    void *p = NULL;
    redisReply *r;
    if (redisGetReplyFromReader(k->c, &p) != REDIS_OK) { fail(k, "bad reply", k->c->errstr); return n; }
    if (!p) return n;
    r = p;
    k->got++;
    n++;
    push_reply(L, r);
    freeReplyObject(r);
    lua_pushinteger(L, k->got);
    lua_insert(L, -2);
    lua_rawset(L, -3);
  }
}

static int r_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  double timeout = 0;
  lconn *k;
  if (port < 1 || port > 65535) return luaL_argerror(L, 2, "a TCP port (1 to 65535) expected");
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "timeout") != LUA_TNIL) {
      timeout = (double)lua_tonumber(L, -1);
      if (!(timeout > 0)) return luaL_argerror(L, 3, "timeout: a number of seconds > 0 expected");
    }
    lua_pop(L, 1);
  }
  k = lua_newuserdatauv(L, sizeof *k, 1);
  memset(k, 0, sizeof *k);
  luaL_setmetatable(L, CONN_MT);
  lua_newtable(L); /* the replies read, by number */
  lua_setiuservalue(L, -2, 1);
  snprintf(k->where, sizeof k->where, "%s:%d", host, (int)port);
  k->timeout = timeout;
  k->last = now();
  k->c = redisConnectNonBlock(host, (int)port);
  if (!k->c || k->c->err) return push_err(L, k, "connect", k->c ? k->c->errstr : "out of memory");
  k->connecting = 1;
  return 1;
}

static int r_send(lua_State *L) {
  lconn *k = luaL_checkudata(L, 1, CONN_MT);
  int i, argc = lua_gettop(L) - 1;
  const char **argv;
  size_t *lens;
  if (argc < 1) return luaL_error(L, "redis: send needs a command");
  for (i = 0; i < argc; i++) {
    int t = lua_type(L, i + 2);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      return luaL_argerror(L, i + 2, lua_pushfstring(L, "a string expected, got %s", luaL_typename(L, i + 2)));
  }
  if (k->err[0]) return push_err(L, k, NULL, NULL);
  if (!k->c) return luaL_error(L, "redis %s: the connection is closed", k->where);
  if (!k->connecting && k->got == k->sent) { /* idle: did the server close it meanwhile? */
    char b;
    if (recv(k->c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
      return push_err(L, k, "the server closed the connection", NULL);
  }
  argv = lua_newuserdatauv(L, (size_t)argc * sizeof *argv, 0); /* scratch, above the arguments */
  lens = lua_newuserdatauv(L, (size_t)argc * sizeof *lens, 0);
  for (i = 0; i < argc; i++) argv[i] = lua_tolstring(L, i + 2, &lens[i]);
  if (redisAppendCommandArgv(k->c, argc, argv, lens) != REDIS_OK) return push_err(L, k, "send", k->c->errstr);
  if (k->sent == k->got && !k->connecting) k->last = now(); /* the silence counts from here */
  lua_pushinteger(L, ++k->sent);
  return 1;
}

/* hiredis writes with write(2): a peer gone raises SIGPIPE, which would end
   the process.  It is blocked in this thread for the write, and one it raised
   is taken back before unblocking (unless one was pending already). */
static int write_out(lconn *k) {
  sigset_t pipe_set, old, pending;
  int done = 0, r, was_pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigpending(&pending);
  was_pending = sigismember(&pending, SIGPIPE);
  r = redisBufferWrite(k->c, &done);
  if (r != REDIS_OK && !was_pending) {
    struct timespec zero = { 0, 0 };
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE)) sigtimedwait(&pipe_set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return r;
}

/* One pass: what poll(2) says is ready moves; replies go to the table at -1.
   ms: how long poll(2) may wait. */
static int step(lua_State *L, lconn *k, int ms) {
  int r, n = 0;
  int want_write = k->connecting || sdslen(k->c->obuf) > 0;
  int want_read = !k->connecting && k->got < k->sent;
  struct pollfd p = { .fd = k->c->fd, .events = (short)((want_write ? POLLOUT : 0) | (want_read ? POLLIN : 0)) };
  if (!want_write && !want_read) return 0;
  r = poll(&p, 1, ms);
  if (r < 0 && errno != EINTR) { fail(k, "poll", strerror(errno)); return 0; }
  if (r <= 0) return 0;
  if (k->connecting) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(k->c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
    if (soerr) { fail(k, "connect", strerror(soerr)); return 0; }
    k->connecting = 0;
    k->last = now();
  }
  if ((p.revents & (POLLOUT | POLLERR | POLLHUP)) && sdslen(k->c->obuf) > 0) {
    if (write_out(k) != REDIS_OK) { fail(k, "write", k->c->errstr); return 0; }
  }
  if (want_read && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
    r = redisBufferRead(k->c);
    if (r == REDIS_OK) k->last = now();
    n = drain(L, k); /* on a failed read too: whole replies before the end still count */
    if (r != REDIS_OK) fail(k, "read", k->c->errstr);
  }
  return n;
}

static int r_poll(lua_State *L) {
  lconn *k = luaL_checkudata(L, 1, CONN_MT);
  double wait = luaL_optnumber(L, 2, 0), deadline;
  int n = 0;
  if (!(wait >= 0)) return luaL_argerror(L, 2, "seconds >= 0 expected");
  if (k->err[0]) return push_err(L, k, NULL, NULL);
  if (!k->c) return luaL_error(L, "redis %s: the connection is closed", k->where);
  deadline = now() + wait;
  lua_getiuservalue(L, 1, 1); /* the replies read */
  for (;;) {
    double left = deadline - now(), t = now();
    int ms;
    if (k->timeout > 0 && (k->connecting || k->got < k->sent)) {
      double silent = t - k->last;
      if (silent >= k->timeout) {
        char what[64];
        snprintf(what, sizeof what, "no answer within %g s", k->timeout);
        fail(k, what, NULL);
        break;
      }
      if (k->timeout - silent < left) left = k->timeout - silent;
    }
    ms = left <= 0 ? 0 : left > 3600 ? 3600000 : (int)(left * 1000 + 0.999); /* (math.huge: an hour a pass) */
    n += step(L, k, ms);
    if (k->err[0] || n > 0 || now() >= deadline) break;
    if (!k->connecting && k->got == k->sent && sdslen(k->c->obuf) == 0) break; /* nothing pending */
  }
  lua_pop(L, 1);
  if (k->err[0] && n == 0) return push_err(L, k, NULL, NULL);
  lua_pushinteger(L, n);
  return 1;
}

static int r_reply(lua_State *L) {
  lconn *k = luaL_checkudata(L, 1, CONN_MT);
  lua_Integer n = luaL_checkinteger(L, 2);
  if (n < 1 || n > k->sent) return luaL_argerror(L, 2, "not the number of a command sent");
  if (n > k->got) {
    if (k->err[0] || !k->c) {
      luaL_pushfail(L);
      lua_pushstring(L, k->err[0] ? k->err : "the connection was closed");
      return 2;
    }
    lua_pushnil(L);
    return 1;
  }
  lua_getiuservalue(L, 1, 1); /* the replies read */
  lua_pushinteger(L, n);
  if (lua_rawget(L, -2) == LUA_TNIL) return luaL_argerror(L, 2, "that reply was already taken");
  lua_pushinteger(L, n);
  lua_pushnil(L);
  lua_rawset(L, -4);
  if (lua_type(L, -1) != LUA_TTABLE) return 1;
  if (lua_getfield(L, -1, "err") != LUA_TSTRING) { lua_pop(L, 1); return 1; }
  lua_pushboolean(L, 0); /* an error reply: false, msg */
  lua_replace(L, -3);
  return 2;
}

static int r_pending(lua_State *L) {
  lconn *k = luaL_checkudata(L, 1, CONN_MT);
  lua_pushinteger(L, k->sent - k->got);
  return 1;
}

static int r_close(lua_State *L) {
  lconn *k = luaL_checkudata(L, 1, CONN_MT);
  if (k->c) { redisFree(k->c); k->c = NULL; }
  return 0;
}

static const luaL_Reg conn_methods[] = {
  { "send", r_send }, { "poll", r_poll }, { "reply", r_reply }, { "pending", r_pending },
  { "close", r_close }, { NULL, NULL }
};

/* One close for close, __gc and __close (idempotent). */
static const luaL_Reg conn_meta[] = {
  { "__gc", r_close }, { "__close", r_close }, { NULL, NULL }
};

LUAOPEN_API int luaopen_starvideos_redis(lua_State *L) {
  if (luaL_newmetatable(L, CONN_MT)) {
    luaL_setfuncs(L, conn_meta, 0);
    luaL_newlib(L, conn_methods);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "starvideos");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, r_connect);
  lua_setfield(L, -2, "connect");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
