/* Standard Webhooks signatures (the core, no Lua): HMAC-SHA256 and base64 from
   libcrypto (OpenSSL), never a hash of our own.  The key is the base64-decoded
   part after "whsec_", else the secret's bytes (shared/CONTRACT.md); the signed
   content is id "." timestamp "." body. */
#include "sv_core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#define PREFIX "whsec_"
#define PREFIX_LEN (sizeof PREFIX - 1)

static int is_base64(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/')) return 0;
  }
  return 1;
}

/* The key of a secret into *key (malloc'd, *klen bytes): 0, or -1 with err. */
static int secret_key(const char *secret, size_t slen, unsigned char **key, size_t *klen, sv_error *err) {
  const char *b64;
  size_t n, pad = 0;
  int got;
  *key = NULL;
  if (slen == 0) return sv_error_set(err, SV_E_INVALID, "secret", "secret: empty");
  if (slen < PREFIX_LEN || memcmp(secret, PREFIX, PREFIX_LEN) != 0) {
    *key = malloc(slen);
    if (!*key) return sv_error_set(err, SV_E_IO, "secret", "secret: out of memory");
    memcpy(*key, secret, slen);
    *klen = slen;
    return 0;
  }
  b64 = secret + PREFIX_LEN;
  n = slen - PREFIX_LEN;
  while (pad < 2 && pad < n && b64[n - 1 - pad] == '=') pad++;
  if (n == 0 || n % 4 != 0 || n > (size_t)0x7fffffff || !is_base64(b64, n - pad))
    return sv_error_set(err, SV_E_INVALID, "secret",
                        "secret: the part after whsec_ is not base64 (A-Z a-z 0-9 + / =, a multiple of 4 characters)");
  *key = malloc(n / 4 * 3 + 1);
  if (!*key) return sv_error_set(err, SV_E_IO, "secret", "secret: out of memory");
  got = EVP_DecodeBlock(*key, (const unsigned char *)b64, (int)n);
  if (got < 0 || (size_t)got < pad || (size_t)got - pad == 0) {
    free(*key);
    *key = NULL;
    return sv_error_set(err, SV_E_INVALID, "secret", "secret: the part after whsec_ is not base64 of a key");
  }
  *klen = (size_t)got - pad;
  return 0;
}

int sv_webhook_sign(const char *secret, size_t slen, const char *id, size_t idlen, const char *ts, size_t tslen,
                    const char *body, size_t blen, char out[SV_SIGN_MAX], sv_error *err) {
  unsigned char *key, mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  sv_buf msg = {0};
  size_t klen = 0;
  int ok, oom;
  if (secret_key(secret, slen, &key, &klen, err) < 0) return -1;
  if (klen > 0x7fffffff) {
    free(key);
    return sv_error_set(err, SV_E_INVALID, NULL, "webhook: secret too large");
  }
  sv_buf_add(&msg, id, idlen);
  sv_buf_add(&msg, ".", 1);
  sv_buf_add(&msg, ts, tslen);
  sv_buf_add(&msg, ".", 1);
  sv_buf_add(&msg, body, blen);
  oom = msg.oom;
  ok = !oom && HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg.data, msg.len, mac, &maclen) &&
       maclen == 32;
  OPENSSL_cleanse(key, klen);
  free(key);
  sv_buf_free(&msg);
  if (!ok) return sv_error_set(err, SV_E_IO, NULL, "webhook: %s",
                               oom ? "out of memory" : "HMAC-SHA256 failed (libcrypto)");
  memcpy(out, "v1,", 3);
  EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen); /* 44 characters and a NUL */
  OPENSSL_cleanse(mac, sizeof mac);
  return 0;
}

int sv_webhook_match(const char *expected, const char *header, size_t hlen) {
  size_t elen = strlen(expected), i = 0;
  int found = 0;
  while (i < hlen) {
    size_t j = i;
    while (j < hlen && header[j] != ' ') j++;
    /* every candidate of the right length is compared whole (CRYPTO_memcmp: the
       time does not depend on where the bytes differ), none is skipped once one matched */
    if (j - i == elen) found |= CRYPTO_memcmp(header + i, expected, elen) == 0;
    i = j + 1;
  }
  return found;
}

/* The SHA-256 of s (len bytes), or with fd >= 0 of fd's bytes from its position
   to its end, into out: 0, or -1 with *e (a read's errno; 0: libcrypto failed). */
static int sha256_of(const char *s, size_t len, int fd, char out[SV_SHA256_HEX + 1], int *e) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char md[EVP_MAX_MD_SIZE], block[16384];
  unsigned int n = 0;
  int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
  *e = 0;
  while (ok && fd >= 0) { /* the file, a block at a time */
    ssize_t r = read(fd, block, sizeof block);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) *e = errno;
    if (r <= 0) break;
    ok = EVP_DigestUpdate(ctx, block, (size_t)r) == 1;
  }
  if (ok && fd < 0) ok = EVP_DigestUpdate(ctx, s, len) == 1;
  ok = ok && !*e && EVP_DigestFinal_ex(ctx, md, &n) == 1 && n == 32;
  EVP_MD_CTX_free(ctx);
  if (!ok) return -1;
  sv_hex(md, n, out);
  return 0;
}

int sv_sha256(const char *s, size_t len, const char *path, char out[SV_SHA256_HEX + 1], sv_buf *why) {
  int fd = -1, e = 0, rc = -1;
  if (path && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) e = errno;
  if (!e) rc = sha256_of(s, len, fd, out, &e);
  if (fd >= 0) close(fd);
  if (rc == 0) return 0;
  if (e) sv_buf_addf(why, "%s: %s", path, strerror(e));
  else sv_buf_adds(why, "SHA-256 failed (libcrypto)");
  return -1;
}

/* The commit's hasher (sv_commit_start): the .part's bytes, read on its thread. */
static int sha256_fd(int fd, char *hex, sv_buf *why) {
  int e;
  if (sha256_of(NULL, 0, fd, hex, &e) == 0) return 0;
  if (e) sv_buf_addf(why, "cannot read the download to hash it: %s", strerror(e));
  else sv_buf_adds(why, "SHA-256 failed (libcrypto)");
  return -1;
}

const sv_hasher sv_sha256_hasher = { SV_HASHER_MAGIC, sha256_fd };

/* ------------------------------------------------------------------ Ed25519 */

/* An Ed25519 private key read from a PEM file (a provenance record's signer): the EVP_PKEY alone, never its bytes
   in a message.  Its PEM's passphrase callback only notes that one was asked: an encrypted key is refused. */
struct sv_ed25519 {
  EVP_PKEY *pkey;
};

static int no_passphrase(char *buf, int size, int rwflag, void *asked) {
  (void)buf, (void)size, (void)rwflag;
  *(int *)asked = 1;
  return -1;
}

/* The key of the PEM file at path (private or public): the EVP_PKEY, or NULL with why (never the file's bytes). */
static EVP_PKEY *pem_key(const char *path, int private_, sv_buf *why) {
  FILE *f = fopen(path, "rb");
  EVP_PKEY *pkey;
  int asked = 0;
  if (!f) {
    sv_buf_addf(why, "%s cannot be read: %s", path, strerror(errno));
    return NULL;
  }
  pkey = private_ ? PEM_read_PrivateKey(f, NULL, no_passphrase, &asked) : PEM_read_PUBKEY(f, NULL, NULL, NULL);
  fclose(f);
  ERR_clear_error(); /* (libcrypto's queue: its words name no key bytes, but none are kept) */
  if (!pkey && asked) {
    sv_buf_addf(why, "%s is encrypted (a passphrase is asked): give a key without one (openssl pkey -in KEY -out "
                     "PLAIN)", path);
  } else if (!pkey) {
    sv_buf_addf(why, "%s is not %s in PEM (-----BEGIN %s-----)", path,
                private_ ? "an Ed25519 private key" : "an Ed25519 public key", private_ ? "PRIVATE KEY" : "PUBLIC KEY");
  } else if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
    const char *name = EVP_PKEY_get0_type_name(pkey);
    sv_buf_addf(why, "%s is a %s key, not Ed25519 (openssl genpkey -algorithm ed25519 makes one)", path,
                name ? name : "another");
    EVP_PKEY_free(pkey);
    pkey = NULL;
  }
  return pkey;
}

sv_ed25519 *sv_ed25519_load(const char *path, sv_buf *why) {
  EVP_PKEY *pkey = pem_key(path, 1, why);
  sv_ed25519 *k;
  if (!pkey) return NULL;
  if (!(k = malloc(sizeof *k))) {
    EVP_PKEY_free(pkey);
    sv_buf_adds(why, "out of memory");
    return NULL;
  }
  k->pkey = pkey;
  return k;
}

void sv_ed25519_free(sv_ed25519 *k) {
  if (!k) return;
  EVP_PKEY_free(k->pkey);
  free(k);
}

/* The raw public key of pkey into pub: 0, or -1. */
static int raw_public(EVP_PKEY *pkey, unsigned char pub[SV_ED25519_PUBLIC]) {
  size_t n = SV_ED25519_PUBLIC;
  return EVP_PKEY_get_raw_public_key(pkey, pub, &n) == 1 && n == SV_ED25519_PUBLIC ? 0 : -1;
}

int sv_ed25519_public(const sv_ed25519 *k, unsigned char pub[SV_ED25519_PUBLIC]) { return raw_public(k->pkey, pub); }

int sv_ed25519_sign(const sv_ed25519 *k, const char *msg, size_t len, char b64[SV_ED25519_B64]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char sig[SV_ED25519_SIG];
  size_t n = sizeof sig;
  int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
           EVP_DigestSign(ctx, sig, &n, (const unsigned char *)msg, len) == 1 && n == SV_ED25519_SIG;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  if (!ok) return -1;
  EVP_EncodeBlock((unsigned char *)b64, sig, (int)n); /* 88 characters and a NUL */
  return 0;
}

int sv_ed25519_verify(const char *pubpath, const char *msg, size_t len, const char *b64, size_t b64len,
                      unsigned char pub[SV_ED25519_PUBLIC], sv_buf *why) {
  EVP_PKEY *pkey = pem_key(pubpath, 0, why);
  EVP_MD_CTX *ctx;
  unsigned char sig[SV_ED25519_B64];
  int got, ok;
  if (!pkey) return -1;
  if (raw_public(pkey, pub) != 0) {
    EVP_PKEY_free(pkey);
    sv_buf_addf(why, "%s: its public key cannot be read (libcrypto)", pubpath);
    return -1;
  }
  got = b64len == SV_ED25519_B64 - 1 && is_base64(b64, b64len - 2) && b64[b64len - 2] == '=' && b64[b64len - 1] == '='

            ? EVP_DecodeBlock(sig, (const unsigned char *)b64, (int)b64len) : -1;
  if (got != SV_ED25519_SIG + 2) { /* (64 bytes and the two the padding "==" stands for) */
    EVP_PKEY_free(pkey);
    return 0;
  }
  ctx = EVP_MD_CTX_new();
  ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
       EVP_DigestVerify(ctx, sig, SV_ED25519_SIG, (const unsigned char *)msg, len) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  ERR_clear_error();
  return ok ? 1 : 0;
}
