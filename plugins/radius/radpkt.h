/* radpkt.h - RADIUS packets for RFC 5176 dynamic authorization: building
 * a CoA-Request or Disconnect-Request (Message-Authenticator, then the
 * Request Authenticator) and checking the NAS's answer (its Response
 * Authenticator, its Message-Authenticator when it sends one). MD5 and
 * HMAC-MD5 from OpenSSL's libcrypto. */
#ifndef BB_RADPKT_H
#define BB_RADPKT_H

#include <stddef.h>
#include <stdint.h>

#define RADPKT_MAX 4096
#define RADPKT_HDR 20

enum {
    RAD_DISCONNECT_REQUEST = 40,
    RAD_DISCONNECT_ACK = 41,
    RAD_DISCONNECT_NAK = 42,
    RAD_COA_REQUEST = 43,
    RAD_COA_ACK = 44,
    RAD_COA_NAK = 45,
};

enum {
    RAD_ATTR_USER_NAME = 1,
    RAD_ATTR_NAS_IP_ADDRESS = 4,
    RAD_ATTR_FRAMED_IP_ADDRESS = 8,
    RAD_ATTR_VENDOR_SPECIFIC = 26,
    RAD_ATTR_ACCT_SESSION_ID = 44,
    RAD_ATTR_MESSAGE_AUTHENTICATOR = 80,
    RAD_ATTR_ERROR_CAUSE = 101,
};

typedef struct radpkt {
    uint8_t data[RADPKT_MAX];
    size_t len;
    size_t ma_at;               /* offset of the Message-Authenticator's value */
    int full;                   /* an attribute did not fit: the packet is unusable */
} radpkt;

/* Starts a request: the header and, first of the attributes (as the
 * BlastRADIUS advisories ask), a Message-Authenticator to fill at signing. */
void radpkt_init(radpkt *p, uint8_t code, uint8_t id);
/* Attributes; each returns 0, or -1 when it does not fit (and marks the
 * packet full). A value is 1..253 bytes. */
int radpkt_add(radpkt *p, uint8_t type, const void *value, size_t n);
int radpkt_add_str(radpkt *p, uint8_t type, const char *s);
/* "10.0.0.1" as a 4-byte address; -1 if it is not a dotted IPv4 address. */
int radpkt_add_ipv4(radpkt *p, uint8_t type, const char *dotted);
/* A Vendor-Specific attribute (RFC 2865 section 5.26: vendor id, then one
 * sub-attribute with a one-byte type and length). */
int radpkt_add_vsa(radpkt *p, uint32_t vendor, uint8_t vtype, const void *value, size_t n);
int radpkt_add_vsa_int(radpkt *p, uint32_t vendor, uint8_t vtype, uint32_t v);
/* Fills the Message-Authenticator (HMAC-MD5 under the secret over the
 * packet with a zero Request Authenticator and a zero Message-
 * Authenticator), then the Request Authenticator (MD5 over the packet with
 * a zero authenticator, followed by the secret), RFC 5176 section 3.5 and
 * RFC 2866 section 3. 0, or -1 (a full packet, a crypto failure). */
int radpkt_sign_request(radpkt *p, const char *secret);
/* The Request Authenticator of a signed packet. */
const uint8_t *radpkt_authenticator(const radpkt *p);

/* Checks an answer to the request req: its length, code (one of the two
 * answers to req's code), identifier, Response Authenticator (MD5 over
 * code, identifier, length, the Request Authenticator, the attributes and
 * the secret) and, when present, its Message-Authenticator (HMAC-MD5 with
 * the Request Authenticator in place). Returns 1 for an ACK, 0 for a NAK
 * (*cause gets its Error-Cause, 0 when it has none), or -1 with why. */
int radpkt_check_answer(const radpkt *req, const uint8_t *ans, size_t n, const char *secret, uint32_t *cause, char *why,
                        size_t whylen);
/* Words for an RFC 5176 Error-Cause ("Session-Context-Not-Found"). */
const char *radpkt_cause_name(uint32_t cause);

#endif
