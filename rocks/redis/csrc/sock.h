/* The store's socket (rocks/redis/csrc/sock.c): TCP (every address of a name tried
   in turn), a unix socket, or TLS over TCP on OpenSSL, never blocking but in
   getaddrinfo.  redis.c moves the bytes; this says what to wait for.  Each
   function that fails leaves why in s->why (never a password: none is here). */
#ifndef STARVIDEOS_REDIS_SOCK_H
#define STARVIDEOS_REDIS_SOCK_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

enum { SOCK_CONNECTING = 1, SOCK_HANDSHAKE, SOCK_READY };

typedef struct rsock_opts {
  int tls, verify;            /* verify: the peer's certificate and name checked (0: neither) */
  const char *ca_file;        /* NULL: the system's CAs */
  const char *cert_file, *key_file; /* a client certificate and its key, or NULL */
  const char *server_name;    /* SNI and the name checked; NULL: the host */
} rsock_opts;

typedef struct rsock {
  int fd, state, own_ai;
  short want;                 /* what OpenSSL waits for before its next step (POLLIN, POLLOUT, 0) */
  struct addrinfo *ai, *next; /* the host's addresses, those left to try */
  SSL_CTX *ctx;
  SSL *ssl;
  char why[256];
} rsock;

/* Starts a connection to host:port (port 0: host is a unix socket's path):
   0 (s->state says where it is), or -1. */
int rsock_open(rsock *s, const char *host, int port, const rsock_opts *o);
/* The poll(2) events to wait for: the connect, the handshake, else the
   bytes to write (out) and the replies awaited (in). */
short rsock_events(const rsock *s, int out, int in);
/* The connect or the handshake moved on after a poll: 0, or -1. */
int rsock_progress(rsock *s);
/* Bytes written or read (0: it would wait), or -1 (read: the peer closed too). */
ssize_t rsock_write(rsock *s, const char *buf, size_t len);
ssize_t rsock_read(rsock *s, char *buf, size_t len);
/* Bytes TLS decrypted and holds: read them without waiting. */
int rsock_buffered(const rsock *s);
/* Whether an idle connection was closed by its peer. */
int rsock_closed(rsock *s);
void rsock_close(rsock *s);

#endif
