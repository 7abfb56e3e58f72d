/* The store's socket: TCP, a unix socket, or TLS on OpenSSL (sock.h).  Why our
   own and not hiredis': Debian's hiredis (0.14) has no TLS, and hiredis 1.x's
   (hiredis_ssl) drives OpenSSL with its own blocking handshake; the store needs
   every step non-blocking under its one poll (docs/architecture.md). */
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static int say(rsock *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->why, sizeof s->why, fmt, ap);
  va_end(ap);
  return -1;
}

static int nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL, 0);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A key's passphrase is never asked on a terminal (it would block): an encrypted key is refused. */
static int no_passphrase(char *buf, int size, int rw, void *u) {
  (void)buf; (void)size; (void)rw; (void)u;
  return 0;
}

/* OpenSSL's last error in words, after what. */
static int ssl_say(rsock *s, const char *what) {
  char e[200];
  unsigned long code = ERR_peek_last_error();
  if (!code) return say(s, "%s", what);
  ERR_error_string_n(code, e, sizeof e);
  ERR_clear_error();
  return say(s, "%s: %s", what, e);
}

/* The context and connection of a TLS socket: CAs (ca_file or the system's), the peer checked unless
   verify is 0, a client certificate, SNI and the name checked (server_name, else host; an IP address is
   checked as one, without SNI). */
static int tls_setup(rsock *s, const char *host, const rsock_opts *o) {
  const char *name = o->server_name ? o->server_name : host;
  unsigned char ip[16];
  int is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
  if (!(s->ctx = SSL_CTX_new(TLS_client_method()))) return ssl_say(s, "TLS");
  SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
  SSL_CTX_set_default_passwd_cb(s->ctx, no_passphrase);
  if (o->ca_file ? SSL_CTX_load_verify_locations(s->ctx, o->ca_file, NULL) != 1
                 : SSL_CTX_set_default_verify_paths(s->ctx) != 1)
    return ssl_say(s, o->ca_file ? "TLS: ca_file cannot be read" : "TLS: the system's CAs cannot be read");
  if (o->cert_file && SSL_CTX_use_certificate_chain_file(s->ctx, o->cert_file) != 1)
    return ssl_say(s, "TLS: cert_file cannot be read");
  if (o->key_file && (SSL_CTX_use_PrivateKey_file(s->ctx, o->key_file, SSL_FILETYPE_PEM) != 1
                      || SSL_CTX_check_private_key(s->ctx) != 1))
    return ssl_say(s, "TLS: key_file cannot be read, or is not cert_file's key");
  SSL_CTX_set_verify(s->ctx, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  if (!(s->ssl = SSL_new(s->ctx))) return ssl_say(s, "TLS");
  SSL_set_mode(s->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!is_ip && SSL_set_tlsext_host_name(s->ssl, name) != 1) return ssl_say(s, "TLS: server name");
  if (o->verify && (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), name) != 1
                          : SSL_set1_host(s->ssl, name) != 1))
    return ssl_say(s, "TLS: server name");
  return 0;
}

/* The next address's connect started (or done): 0, or -1 with the last address's error. */
static int start_connect(rsock *s, int last_errno) {
  while (s->next) {
    struct addrinfo *a = s->next;
    s->next = a->ai_next;
    s->fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (s->fd < 0 || nonblocking(s->fd) < 0) {
      last_errno = errno;
      if (s->fd >= 0) close(s->fd);
      s->fd = -1;
      continue;
    }
    if (a->ai_family != AF_UNIX) {
      int one = 1;
      setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(s->fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
      s->state = SOCK_CONNECTING;
      return 0;
    }
    last_errno = errno;
    close(s->fd);
    s->fd = -1;
  }
  return say(s, "%s", strerror(last_errno ? last_errno : ECONNREFUSED));
}

/* A unix socket's path as the one address to try. */
static int unix_address(rsock *s, const char *path) {
  struct sockaddr_un *un;
  if (strlen(path) >= sizeof un->sun_path)
    return say(s, "the socket's path is longer than %zu bytes", sizeof un->sun_path - 1);
  if (!(s->ai = calloc(1, sizeof *s->ai + sizeof *un))) return say(s, "out of memory");
  un = (struct sockaddr_un *)(void *)(s->ai + 1);
  un->sun_family = AF_UNIX;
  memcpy(un->sun_path, path, strlen(path) + 1);
  s->ai->ai_family = AF_UNIX;
  s->ai->ai_socktype = SOCK_STREAM;
  s->ai->ai_addr = (struct sockaddr *)un;
  s->ai->ai_addrlen = sizeof *un;
  s->own_ai = 1; /* (freed with free, not freeaddrinfo) */
  return 0;
}

int rsock_open(rsock *s, const char *host, int port, const rsock_opts *o) {
  memset(s, 0, sizeof *s);
  s->fd = -1;
  if (port == 0) {
    if (unix_address(s, host) < 0) return -1;
  } else {
    struct addrinfo hints;
    char service[8];
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%d", port);
    if ((rc = getaddrinfo(host, service, &hints, &s->ai)) != 0) return say(s, "%s", gai_strerror(rc));
    if (o->tls && tls_setup(s, host, o) < 0) return -1;
  }
  s->next = s->ai;
  return start_connect(s, 0);
}

short rsock_events(const rsock *s, int out, int in) {
  if (s->state == SOCK_CONNECTING) return POLLOUT;
  if (s->state == SOCK_HANDSHAKE) return s->want;
  return (short)((out ? POLLOUT : 0) | (in ? POLLIN : 0) | s->want);
}

/* Why the handshake failed: the certificate refused (and why), else OpenSSL's or the system's words. */
static int handshake_failed(rsock *s, int e) {
  long v = SSL_get_verify_result(s->ssl);
  if (v != X509_V_OK && ERR_peek_last_error())
    return say(s, "TLS: the server's certificate is refused (%s)", X509_verify_cert_error_string(v));
  if (e == SSL_ERROR_SYSCALL && !ERR_peek_last_error())
    return say(s, "TLS handshake: %s", errno ? strerror(errno) : "the server closed the connection");
  return ssl_say(s, "TLS handshake");
}

int rsock_progress(rsock *s) {
  if (s->state == SOCK_CONNECTING) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
    if (soerr == 0 && !s->ssl) {
      s->state = SOCK_READY;
    } else if (soerr == 0) {
      s->state = SOCK_HANDSHAKE;
      if (SSL_set_fd(s->ssl, s->fd) != 1) return ssl_say(s, "TLS");
    } else if (soerr != EINPROGRESS) {
      close(s->fd);
      s->fd = -1;
      return start_connect(s, soerr);
    }
  }
  if (s->state == SOCK_HANDSHAKE) {
    int r, e;
    ERR_clear_error();
    errno = 0;
    if ((r = SSL_connect(s->ssl)) == 1) {
      s->state = SOCK_READY;
      s->want = 0;
      return 0;
    }
    e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      s->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
      return 0;
    }
    return handshake_failed(s, e);
  }
  return 0;
}

/* An SSL_read's or SSL_write's r: the bytes, 0 (it waits for what s->want says), or -1. */
static ssize_t ssl_moved(rsock *s, int r, const char *what) {
  int e = SSL_get_error(s->ssl, r);
  if (r > 0) {
    s->want = 0;
    return r;
  }
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    s->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    return 0;
  }
  if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && !ERR_peek_last_error() && errno == 0))
    return say(s, "the server closed the connection");
  if (e == SSL_ERROR_SYSCALL && !ERR_peek_last_error()) return say(s, "%s: %s", what, strerror(errno));
  return ssl_say(s, what);
}

ssize_t rsock_write(rsock *s, const char *buf, size_t len) {
  ssize_t n;
  if (s->ssl) {
    ERR_clear_error();
    errno = 0;
    return ssl_moved(s, SSL_write(s->ssl, buf, len > 1 << 30 ? 1 << 30 : (int)len), "write");
  }
  n = write(s->fd, buf, len);
  if (n >= 0) return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
  return say(s, "write: %s", strerror(errno));
}

ssize_t rsock_read(rsock *s, char *buf, size_t len) {
  ssize_t n;
  if (s->ssl) {
    ERR_clear_error();
    errno = 0;
    return ssl_moved(s, SSL_read(s->ssl, buf, len > 1 << 30 ? 1 << 30 : (int)len), "read");
  }
  n = read(s->fd, buf, len);
  if (n > 0) return n;
  if (n == 0) return say(s, "the server closed the connection");
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
  return say(s, "read: %s", strerror(errno));
}

int rsock_buffered(const rsock *s) { return s->ssl && s->state == SOCK_READY ? SSL_pending(s->ssl) : 0; }

int rsock_closed(rsock *s) {
  char b;
  if (s->state != SOCK_READY) return 0;
  if (s->ssl) {
    int r, e;
    ERR_clear_error();
    r = SSL_peek(s->ssl, &b, 1);
    e = SSL_get_error(s->ssl, r);
    ERR_clear_error();
    return r <= 0 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
  }
  return recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

void rsock_close(rsock *s) {
  if (s->ssl) SSL_free(s->ssl);
  if (s->ctx) SSL_CTX_free(s->ctx);
  if (s->fd >= 0) close(s->fd);
  if (s->ai && s->own_ai) free(s->ai);
  else if (s->ai) freeaddrinfo(s->ai);
  memset(s, 0, sizeof *s);
  s->fd = -1;
}
