/* radpkt.c - RADIUS packets for RFC 5176 dynamic authorization (see
 * radpkt.h). */
#include "radpkt.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

void radpkt_init(radpkt *p, uint8_t code, uint8_t id)
{
    memset(p, 0, sizeof *p);
    p->data[0] = code;
    p->data[1] = id;
    p->len = RADPKT_HDR;
    /* the header's length and the authenticators are filled at signing */
    p->data[p->len++] = RAD_ATTR_MESSAGE_AUTHENTICATOR;
    p->data[p->len++] = 18;
    p->ma_at = p->len;
    p->len += 16;
}

int radpkt_add(radpkt *p, uint8_t type, const void *value, size_t n)
{
    if (p->full || n < 1 || n > 253 || p->len + 2 + n > RADPKT_MAX) {
        p->full = 1;
        return -1;
    }
    p->data[p->len++] = type;
    p->data[p->len++] = (uint8_t)(2 + n);
    memcpy(p->data + p->len, value, n);
    p->len += n;
    return 0;
}

int radpkt_add_str(radpkt *p, uint8_t type, const char *s) { return radpkt_add(p, type, s, strlen(s)); }

int radpkt_add_ipv4(radpkt *p, uint8_t type, const char *dotted)
{
    struct in_addr a;
    if (inet_pton(AF_INET, dotted, &a) != 1) return -1;
    return radpkt_add(p, type, &a.s_addr, 4); /* already in network order */
}

int radpkt_add_vsa(radpkt *p, uint32_t vendor, uint8_t vtype, const void *value, size_t n)
{
    uint8_t v[253];
    if (n < 1 || n > sizeof v - 6) {
        p->full = 1;
        return -1;
    }
    v[0] = (uint8_t)(vendor >> 24);
    v[1] = (uint8_t)(vendor >> 16);
    v[2] = (uint8_t)(vendor >> 8);
    v[3] = (uint8_t)vendor;
    v[4] = vtype;
    v[5] = (uint8_t)(2 + n);
    memcpy(v + 6, value, n);
    return radpkt_add(p, RAD_ATTR_VENDOR_SPECIFIC, v, 6 + n);
}

int radpkt_add_vsa_int(radpkt *p, uint32_t vendor, uint8_t vtype, uint32_t x)
{
    uint8_t b[4] = {(uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
    return radpkt_add_vsa(p, vendor, vtype, b, 4);
}

static int md5(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, uint8_t out[16])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = c && EVP_DigestInit_ex(c, EVP_md5(), NULL) == 1 && EVP_DigestUpdate(c, a, an) == 1 &&
             (bn == 0 || EVP_DigestUpdate(c, b, bn) == 1) && EVP_DigestFinal_ex(c, out, &len) == 1 && len == 16;
    EVP_MD_CTX_free(c);
    return ok ? 0 : -1;
}

static int hmac_md5(const char *secret, const uint8_t *msg, size_t n, uint8_t out[16])
{
    unsigned int len = 0;
    size_t sl = strlen(secret);
    if (sl > 0x7fffffff) return -1;
    return HMAC(EVP_md5(), secret, (int)sl, msg, n, out, &len) && len == 16 ? 0 : -1;
}

int radpkt_sign_request(radpkt *p, const char *secret)
{
    if (p->full || p->len > RADPKT_MAX) return -1;
    p->data[2] = (uint8_t)(p->len >> 8);
    p->data[3] = (uint8_t)p->len;
    memset(p->data + 4, 0, 16);
    memset(p->data + p->ma_at, 0, 16);
    uint8_t mac[16], auth[16];
    if (hmac_md5(secret, p->data, p->len, mac)) return -1;
    memcpy(p->data + p->ma_at, mac, 16);
    if (md5(p->data, p->len, (const uint8_t *)secret, strlen(secret), auth)) return -1;
    memcpy(p->data + 4, auth, 16);
    return 0;
}

const uint8_t *radpkt_authenticator(const radpkt *p) { return p->data + 4; }

int radpkt_check_answer(const radpkt *req, const uint8_t *ans, size_t n, const char *secret, uint32_t *cause, char *why,
                        size_t whylen)
{
    *cause = 0;
    if (n < RADPKT_HDR || n > RADPKT_MAX) return snprintf(why, whylen, "an answer of %zu bytes", n), -1;
    size_t len = (size_t)ans[2] << 8 | ans[3];
    if (len < RADPKT_HDR || len > n) return snprintf(why, whylen, "an answer whose length field says %zu of %zu bytes", len, n), -1;
    if (ans[1] != req->data[1]) return snprintf(why, whylen, "an answer to identifier %u, not %u", ans[1], req->data[1]), -1;
    int ack = req->data[0] + 1, nak = req->data[0] + 2;
    if (ans[0] != ack && ans[0] != nak) return snprintf(why, whylen, "an answer of code %u to a request of code %u", ans[0], req->data[0]), -1;
    /* the Response Authenticator: the answer with the request's
     * authenticator in place, then the secret */
    uint8_t copy[RADPKT_MAX], want[16];
    memcpy(copy, ans, len);
    memcpy(copy + 4, radpkt_authenticator(req), 16);
    if (md5(copy, len, (const uint8_t *)secret, strlen(secret), want)) return snprintf(why, whylen, "MD5 failed"), -1;
    if (CRYPTO_memcmp(want, ans + 4, 16)) return snprintf(why, whylen, "the Response Authenticator does not check out (wrong secret?)"), -1;
    /* the attributes: well formed; a Message-Authenticator, when sent, right */
    for (size_t at = RADPKT_HDR; at < len;) {
        if (at + 2 > len || ans[at + 1] < 2 || at + ans[at + 1] > len)
            return snprintf(why, whylen, "a malformed attribute at byte %zu", at), -1;
        uint8_t type = ans[at], alen = ans[at + 1];
        if (type == RAD_ATTR_MESSAGE_AUTHENTICATOR) {
            if (alen != 18) return snprintf(why, whylen, "a Message-Authenticator of %u bytes", alen), -1;
            uint8_t mac[16];
            memset(copy + at + 2, 0, 16);
            if (hmac_md5(secret, copy, len, mac)) return snprintf(why, whylen, "HMAC-MD5 failed"), -1;
            if (CRYPTO_memcmp(mac, ans + at + 2, 16))
                return snprintf(why, whylen, "the answer's Message-Authenticator does not check out"), -1;
            memcpy(copy + at + 2, ans + at + 2, 16);
        } else if (type == RAD_ATTR_ERROR_CAUSE && alen == 6) {
            *cause = (uint32_t)ans[at + 2] << 24 | (uint32_t)ans[at + 3] << 16 | (uint32_t)ans[at + 4] << 8 | ans[at + 5];
        }
        at += alen;
    }
    return ans[0] == ack ? 1 : 0;
}

const char *radpkt_cause_name(uint32_t cause)
{
    switch (cause) {
    case 201: return "Residual-Session-Context-Removed";
    case 202: return "Invalid-EAP-Packet";
    case 401: return "Unsupported-Attribute";
    case 402: return "Missing-Attribute";
    case 403: return "NAS-Identification-Mismatch";
    case 404: return "Invalid-Request";
    case 405: return "Unsupported-Service";
    case 406: return "Unsupported-Extension";
    case 407: return "Invalid-Attribute-Value";
    case 501: return "Administratively-Prohibited";
    case 502: return "Request-Not-Routable";
    case 503: return "Session-Context-Not-Found";
    case 504: return "Session-Context-Not-Removable";
    case 505: return "Other-Proxy-Processing-Error";
    case 506: return "Resources-Unavailable";
    case 507: return "Request-Initiated";
    case 508: return "Multiple-Session-Selection-Unsupported";
    default: return "unknown";
    }
}
