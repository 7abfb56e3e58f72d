/* starvideos.redis: a non-blocking Redis connection (issue 14; TLS, users and
   unix sockets: issue 38).

   Its own shared object (build/starvideos/redis.so), loaded only when a store
   is used (rocks/redis/lua/starvideos/fleet/store.lua), so that the library builds, loads
   and works where hiredis is missing.  Nothing here ever waits but conn:poll,
   and that at most the `wait` it is given: the connect and the TLS handshake
   are non-blocking (sock.c), commands are queued in an output buffer, and
   bytes move only when poll(2) says the socket is ready.  hiredis is used for
   its protocol writer and reader alone (redisFormatCommandArgv, redisReader):
   its connections are not (Debian's 0.14 has no TLS; docs/architecture.md).

     redis.connect(host, port[, opts]) -> conn | nil, err
         host a numeric address or a name (a name is resolved by getaddrinfo,
         which may block: the store passes what the user wrote); port nil: host
         is a unix socket's path.  opts: timeout, the longest the server may
         stay silent while something is pending (the connect, the handshake or
         a command) before the connection is broken with err (none when
         absent); tls = true with ca_file (else the system's CAs), cert_file
         and key_file (a client certificate), server_name (SNI and the name
         checked; else host), verify = false (no check of the certificate nor
         of its name).
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
     conn:tls() -> {version =, cipher =, subject =, issuer =} once the handshake is done, else nil
     conn:close()                            idempotent, also __gc and __close
     redis.null                              the nil reply (a NULL light
                                             userdata, equal to ngx.null)

   Every err is a string naming host:port (or the path): refused, reset,
   closed, timeout, the TLS handshake's failure (a certificate refused: why).
   The module never calls Lua but through the binding's own API. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "../../../csrc/lua/compat.h" /* and lua.h, lauxlib.h */
#include "sock.h"

#ifndef LUAOPEN_API
#define LUAOPEN_API __attribute__((visibility("default")))
#endif

#define CONN_MT "starvideos.redis"

typedef struct {
  rsock s;
  int open;                /* s holds a socket (close frees it) */
  redisReader *rd;
  char *out;               /* the commands not written yet: out[done, len) */
  size_t len, done, cap;
  lua_Integer sent, got;   /* commands queued, replies read */
  double timeout;          /* seconds; <= 0: none */
  double last;             /* when the server last moved (or the wait began) */
  char where[300];         /* "host:port", or the socket's path */
  char err[1024];          /* set once: the connection is broken */
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
    if (redisReaderGetReply(k->rd, &p) != REDIS_OK) { fail(k, "bad reply", k->rd->errstr); return n; }
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

/* The TLS options of opts (at index 3) into o; strings stay on the Lua stack's table. */
static void tls_opts(lua_State *L, rsock_opts *o) {
  static const char *const names[] = { "ca_file", "cert_file", "key_file", "server_name" };
  const char **slots[] = { &o->ca_file, &o->cert_file, &o->key_file, &o->server_name };
  int i;
  o->tls = lua_getfield(L, 3, "tls") != LUA_TNIL && lua_toboolean(L, -1);
  o->verify = lua_getfield(L, 3, "verify") == LUA_TNIL || lua_toboolean(L, -1);
  lua_pop(L, 2);
  for (i = 0; i < 4; i++) {
    int t = lua_getfield(L, 3, names[i]);
    if (t != LUA_TNIL && t != LUA_TSTRING) luaL_error(L, "redis.connect: %s: a string expected", names[i]);
    *slots[i] = lua_tostring(L, -1); /* (the table holds it) */
    lua_pop(L, 1);
  }
}

static int r_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_optinteger(L, 2, 0);
  rsock_opts o;
  lconn *k;
  double timeout = 0;
  memset(&o, 0, sizeof o);
  if (lua_isnoneornil(L, 2) ? host[0] != '/' : port < 1 || port > 65535)
    return luaL_argerror(L, 2, "a TCP port (1 to 65535) expected, or nil for a unix socket's path");
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "timeout") != LUA_TNIL) {
      timeout = (double)lua_tonumber(L, -1);
      if (!(timeout > 0)) return luaL_argerror(L, 3, "timeout: a number of seconds > 0 expected");
    }
    lua_pop(L, 1);
    tls_opts(L, &o);
  }
  if (o.tls && port == 0) return luaL_argerror(L, 3, "tls: not over a unix socket");
  k = lua_newuserdatauv(L, sizeof *k, 1);
  memset(k, 0, sizeof *k);
  luaL_setmetatable(L, CONN_MT);
  lua_newtable(L); /* the replies read, by number */
  lua_setiuservalue(L, -2, 1);
  if (port) snprintf(k->where, sizeof k->where, "%s:%d", host, (int)port);
  else snprintf(k->where, sizeof k->where, "%s", host);
  k->timeout = timeout;
  k->last = now();
  k->open = 1;
  if (!(k->rd = redisReaderCreate())) return push_err(L, k, "connect", "out of memory");
  if (rsock_open(&k->s, host, (int)port, &o) != 0) return push_err(L, k, "connect", k->s.why);
  return 1;
}

/* The command's bytes appended to k->out. */
static int queue(lconn *k, int argc, const char **argv, const size_t *lens) {
  char *cmd = NULL;
  long long n = redisFormatCommandArgv(&cmd, argc, argv, lens);
  if (n < 0 || !cmd) return -1;
  if (k->done == k->len) k->done = k->len = 0;
  if (k->len + (size_t)n > k->cap) {
    size_t cap = (k->len + (size_t)n) * 2;
    char *p = realloc(k->out, cap);
    if (!p) { redisFreeCommand(cmd); return -1; }
    k->out = p;
    k->cap = cap;
  }
  memcpy(k->out + k->len, cmd, (size_t)n);
  k->len += (size_t)n;
  redisFreeCommand(cmd);
  return 0;
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
  if (!k->open) return luaL_error(L, "redis %s: the connection is closed", k->where);
  if (k->s.state == SOCK_READY && k->got == k->sent && rsock_closed(&k->s)) /* idle: closed meanwhile? */
    return push_err(L, k, "the server closed the connection", NULL);
  argv = lua_newuserdatauv(L, (size_t)argc * sizeof *argv, 0); /* scratch, above the arguments */
  lens = lua_newuserdatauv(L, (size_t)argc * sizeof *lens, 0);
  for (i = 0; i < argc; i++) argv[i] = lua_tolstring(L, i + 2, &lens[i]);
  if (queue(k, argc, argv, lens) != 0) return push_err(L, k, "send", "out of memory");
  if (k->sent == k->got && k->s.state == SOCK_READY) k->last = now(); /* the silence counts from here */
  lua_pushinteger(L, ++k->sent);
  return 1;
}

/* A write to a peer gone raises SIGPIPE, which would end the process.  It is
   blocked in this thread for the write, and one it raised is taken back before
   unblocking (unless one was pending already). */
static int write_out(lconn *k) {
  sigset_t pipe_set, old, pending;
  int was_pending;
  ssize_t n;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigpending(&pending);
  was_pending = sigismember(&pending, SIGPIPE);
  n = rsock_write(&k->s, k->out + k->done, k->len - k->done);
  if (n < 0 && !was_pending) {
    struct timespec zero = { 0, 0 };
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE)) sigtimedwait(&pipe_set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (n > 0) k->done += (size_t)n;
  return n < 0 ? -1 : 0;
}

/* What the socket holds read into hiredis' reader, and the whole replies into the table at -1. */
static int read_in(lua_State *L, lconn *k) {
  char buf[16384];
  int n = 0;
  for (;;) {
    ssize_t r = rsock_read(&k->s, buf, sizeof buf);
    if (r > 0) {
      k->last = now();
      if (redisReaderFeed(k->rd, buf, (size_t)r) != REDIS_OK) { fail(k, "bad reply", k->rd->errstr); break; }
    }
    if (r < 0) {
      n += drain(L, k); /* whole replies before the end still count */
      fail(k, k->s.why, NULL);
      return n;
    }
    if (r < (ssize_t)sizeof buf && !rsock_buffered(&k->s)) break;
  }
  return n + drain(L, k);
}

/* One pass: what poll(2) says is ready moves; replies go to the table at -1.
   ms: how long poll(2) may wait. */
static int step(lua_State *L, lconn *k, int ms) {
  int r, out = k->len > k->done, in = k->got < k->sent;
  struct pollfd p = { .fd = k->s.fd, .events = rsock_events(&k->s, out, in) };
  if (!p.events) return 0;
  r = rsock_buffered(&k->s) ? 1 : poll(&p, 1, ms);
  if (r < 0 && errno != EINTR) { fail(k, "poll", strerror(errno)); return 0; }
  if (r <= 0) return 0;
  if (k->s.state != SOCK_READY) {
    int was = k->s.state;
    if (rsock_progress(&k->s) != 0) { /* (a handshake's why says TLS) */
      fail(k, k->s.state == SOCK_HANDSHAKE ? k->s.why : "connect", k->s.state == SOCK_HANDSHAKE ? NULL : k->s.why);
      return 0;
    }
    if (k->s.state != was) k->last = now();
    if (k->s.state != SOCK_READY) return 0;
  }
  if (k->len > k->done && write_out(k) != 0) { fail(k, k->s.why, NULL); return 0; }
  return in ? read_in(L, k) : 0;
}

static int r_poll(lua_State *L) {
  lconn *k = luaL_checkudata(L, 1, CONN_MT);
  double wait = luaL_optnumber(L, 2, 0), deadline;
  int n = 0;
  if (!(wait >= 0)) return luaL_argerror(L, 2, "seconds >= 0 expected");
  if (k->err[0]) return push_err(L, k, NULL, NULL);
  if (!k->open) return luaL_error(L, "redis %s: the connection is closed", k->where);
  deadline = now() + wait;
  lua_getiuservalue(L, 1, 1); /* the replies read */
  for (;;) {
    double left = deadline - now(), t = now();
    int ms;
    if (k->timeout > 0 && (k->s.state != SOCK_READY || k->got < k->sent)) {
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
    if (k->s.state == SOCK_READY && k->got == k->sent && k->len == k->done) break; /* nothing pending */
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
    if (k->err[0] || !k->open) {
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

static int r_tls(lua_State *L) {
  lconn *k = luaL_checkudata(L, 1, CONN_MT);
  char name[256];
  X509 *cert;
  if (!k->open || !k->s.ssl || k->s.state != SOCK_READY) return 0;
  lua_createtable(L, 0, 4);
  lua_pushstring(L, SSL_get_version(k->s.ssl));
  lua_setfield(L, -2, "version");
  lua_pushstring(L, SSL_get_cipher_name(k->s.ssl));
  lua_setfield(L, -2, "cipher");
  if ((cert = SSL_get_peer_certificate(k->s.ssl))) {
    lua_pushstring(L, X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof name));
    lua_setfield(L, -2, "subject");
    lua_pushstring(L, X509_NAME_oneline(X509_get_issuer_name(cert), name, sizeof name));
    lua_setfield(L, -2, "issuer");
    X509_free(cert);
  }
  return 1;
}

static int r_close(lua_State *L) {
  lconn *k = luaL_checkudata(L, 1, CONN_MT);
  if (k->open) rsock_close(&k->s);
  if (k->rd) redisReaderFree(k->rd);
  free(k->out);
  k->open = 0;
  k->rd = NULL;
  k->out = NULL;
  k->len = k->done = k->cap = 0;
  return 0;
}

static const luaL_Reg conn_methods[] = {
  { "send", r_send }, { "poll", r_poll }, { "reply", r_reply }, { "pending", r_pending },
  { "tls", r_tls }, { "close", r_close }, { NULL, NULL }
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
