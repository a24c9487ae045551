/* crypto.c - OpenSSL-backed primitives. */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* crypto_sha256 is an EVP_MD_CTX under an opaque name. */

crypto_sha256 *crypto_sha256_new(void)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md) return NULL;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return NULL;
    }
    return (crypto_sha256 *)md;
}

void crypto_sha256_update(crypto_sha256 *c, const void *p, size_t n)
{
    EVP_DigestUpdate((EVP_MD_CTX *)c, p, n);
}

void crypto_sha256_final(crypto_sha256 *c, uint8_t out[SHA256_LEN])
{
    unsigned len = SHA256_LEN;
    EVP_DigestFinal_ex((EVP_MD_CTX *)c, out, &len);
    EVP_MD_CTX_free((EVP_MD_CTX *)c);
}

void crypto_sha256_once(const void *p, size_t n, uint8_t out[SHA256_LEN])
{
    unsigned len = SHA256_LEN;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

void crypto_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void crypto_sha256_hex(const void *p, size_t n, char out[SHA256_HEX_LEN])
{
    uint8_t d[SHA256_LEN];
    crypto_sha256_once(p, n, d);
    crypto_hex(d, SHA256_LEN, out);
}

int crypto_random(void *out, size_t n)
{
    return RAND_bytes(out, (int)n) == 1 ? 0 : ERR_INTERNAL;
}

int crypto_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
