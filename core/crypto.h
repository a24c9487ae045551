/* crypto.h - the few primitives the core needs, all through OpenSSL. */
#ifndef BB_CRYPTO_H
#define BB_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SHA256_LEN 32
#define SHA256_HEX_LEN 65  /* with the NUL */

typedef struct crypto_sha256 crypto_sha256;

/* Incremental SHA-256. new returns NULL when out of memory. */
crypto_sha256 *crypto_sha256_new(void);
void crypto_sha256_update(crypto_sha256 *c, const void *p, size_t n);
/* Writes the digest and frees c. */
void crypto_sha256_final(crypto_sha256 *c, uint8_t out[SHA256_LEN]);

void crypto_sha256_once(const void *p, size_t n, uint8_t out[SHA256_LEN]);
void crypto_sha256_hex(const void *p, size_t n, char out[SHA256_HEX_LEN]);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void crypto_hex(const uint8_t *in, size_t n, char *out);
/* Cryptographically strong random bytes. Returns 0 or ERR_INTERNAL. */
int crypto_random(void *out, size_t n);
/* Constant-time comparison; 1 if equal. */
int crypto_equal(const void *a, const void *b, size_t n);

#endif
