/* test_radius.c - the RFC 5176 packets of plugins/radius against known
 * answers computed independently (tests/data/radius/make_vectors.py, from
 * the RFC formulas with Python's hashlib and hmac): a Disconnect-Request
 * and CoA-Requests with the MikroTik and Huawei rate attributes, byte for
 * byte with both authenticators; the NAS's answers checked (an ACK, a NAK
 * with its Error-Cause, an ACK carrying a Message-Authenticator) and
 * refused when anything is off (a byte changed, another secret, another
 * identifier, a request's own code). And the rate format of the dunning
 * rule (netstate_rate_parse), hand-checked. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netstate.h"

/* the encoder is the plugin's own code, compiled in here */
#include "../../plugins/radius/radpkt.c"

static int vector(const char *name, uint8_t *out, size_t cap, size_t *n)
{
    FILE *f = fopen(BB_SOURCE_DIR "/tests/data/radius/vectors.txt", "r");
    assert_non_null(f);
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *sp = strchr(line, ' ');
        if (!sp || (size_t)(sp - line) != strlen(name) || strncmp(line, name, strlen(name))) continue;
        char *hex = sp + 1;
        hex[strcspn(hex, "\r\n")] = 0;
        size_t len = strlen(hex) / 2;
        assert_true(len <= cap);
        for (size_t i = 0; i < len; i++) {
            unsigned v;
            assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
            out[i] = (uint8_t)v;
        }
        *n = len;
        found = 1;
    }
    fclose(f);
    if (!found) fail_msg("no vector %s", name);
    return 0;
}

static void assert_packet(const radpkt *p, const char *name)
{
    uint8_t want[RADPKT_MAX];
    size_t n = 0;
    vector(name, want, sizeof want, &n);
    assert_int_equal(p->len, n);
    if (memcmp(p->data, want, n)) {
        for (size_t i = 0; i < n; i++)
            if (p->data[i] != want[i]) fail_msg("%s: byte %zu is %02x, expected %02x", name, i, p->data[i], want[i]);
    }
}

static void disconnect_request(radpkt *p)
{
    radpkt_init(p, RAD_DISCONNECT_REQUEST, 7);
    assert_int_equal(radpkt_add_str(p, RAD_ATTR_USER_NAME, "zs001"), 0);
    assert_int_equal(radpkt_add_str(p, RAD_ATTR_ACCT_SESSION_ID, "8100001A"), 0);
    assert_int_equal(radpkt_add_ipv4(p, RAD_ATTR_FRAMED_IP_ADDRESS, "10.1.2.3"), 0);
    assert_int_equal(radpkt_add_ipv4(p, RAD_ATTR_NAS_IP_ADDRESS, "127.0.0.1"), 0);
    assert_int_equal(radpkt_sign_request(p, "testing123"), 0);
}

static void coa_mikrotik(radpkt *p)
{
    radpkt_init(p, RAD_COA_REQUEST, 200);
    radpkt_add_str(p, RAD_ATTR_USER_NAME, "li.si@hz");
    radpkt_add_str(p, RAD_ATTR_ACCT_SESSION_ID, "81a0beef");
    radpkt_add_ipv4(p, RAD_ATTR_FRAMED_IP_ADDRESS, "100.64.0.9");
    radpkt_add_ipv4(p, RAD_ATTR_NAS_IP_ADDRESS, "10.0.0.1");
    assert_int_equal(radpkt_add_vsa(p, 14988, 8, "2000k/2000k", 11), 0);
    assert_int_equal(radpkt_sign_request(p, "s3cr3t-NAS"), 0);
}

static void test_disconnect_request(void **state)
{
    (void)state;
    radpkt p;
    disconnect_request(&p);
    /* header: code 40, identifier 7, length 67 = 20 + MA 18 + 7 + 10 + 6 + 6 */
    assert_int_equal(p.data[0], 40);
    assert_int_equal(p.data[1], 7);
    assert_int_equal(p.len, 67);
    assert_int_equal(p.data[20], 80); /* the Message-Authenticator comes first */
    assert_packet(&p, "disconnect");
}

static void test_coa_requests(void **state)
{
    (void)state;
    radpkt p;
    coa_mikrotik(&p);
    assert_packet(&p, "coa_mikrotik");
    /* Huawei: upload 512 kbit/s in, download 2 Mbit/s out, bit/s as integers */
    radpkt_init(&p, RAD_COA_REQUEST, 1);
    radpkt_add_str(&p, RAD_ATTR_USER_NAME, "ww001");
    radpkt_add_str(&p, RAD_ATTR_ACCT_SESSION_ID, "s-9");
    radpkt_add_ipv4(&p, RAD_ATTR_NAS_IP_ADDRESS, "10.0.0.2");
    radpkt_add_vsa_int(&p, 2011, 2, 512000);
    radpkt_add_vsa_int(&p, 2011, 5, 2000000);
    assert_int_equal(radpkt_sign_request(&p, "s3cr3t-NAS"), 0);
    assert_packet(&p, "coa_huawei");
}

static void test_answers(void **state)
{
    (void)state;
    radpkt req;
    disconnect_request(&req);
    uint8_t a[RADPKT_MAX];
    size_t n;
    uint32_t cause = 99;
    char why[160];
    vector("disconnect_ack", a, sizeof a, &n);
    assert_int_equal(radpkt_check_answer(&req, a, n, "testing123", &cause, why, sizeof why), 1);
    assert_int_equal(cause, 0);
    vector("disconnect_nak_503", a, sizeof a, &n);
    assert_int_equal(radpkt_check_answer(&req, a, n, "testing123", &cause, why, sizeof why), 0);
    assert_int_equal(cause, 503);
    assert_string_equal(radpkt_cause_name(cause), "Session-Context-Not-Found");
    /* another secret: the Response Authenticator gives it away */
    assert_int_equal(radpkt_check_answer(&req, a, n, "testing124", &cause, why, sizeof why), -1);
    assert_non_null(strstr(why, "Response Authenticator"));
    /* one byte of the Error-Cause changed */
    a[n - 1] ^= 1;
    assert_int_equal(radpkt_check_answer(&req, a, n, "testing123", &cause, why, sizeof why), -1);
    a[n - 1] ^= 1;
    /* shorter than its length field says */
    assert_int_equal(radpkt_check_answer(&req, a, n - 1, "testing123", &cause, why, sizeof why), -1);

    radpkt coa;
    coa_mikrotik(&coa);
    vector("coa_mikrotik_ack_ma", a, sizeof a, &n);
    assert_int_equal(radpkt_check_answer(&coa, a, n, "s3cr3t-NAS", &cause, why, sizeof why), 1);
    /* the ACK of the CoA is no answer to the Disconnect (code and identifier) */
    assert_int_equal(radpkt_check_answer(&req, a, n, "s3cr3t-NAS", &cause, why, sizeof why), -1);
    /* a forged Message-Authenticator with a right Response Authenticator:
     * recompute the response authenticator over the changed packet */
    uint8_t f[RADPKT_MAX];
    memcpy(f, a, n);
    f[22] ^= 0x80;
    uint8_t tmp[RADPKT_MAX], auth[16];
    memcpy(tmp, f, n);
    memcpy(tmp + 4, radpkt_authenticator(&coa), 16);
    assert_int_equal(md5(tmp, n, (const uint8_t *)"s3cr3t-NAS", 10, auth), 0);
    memcpy(f + 4, auth, 16);
    assert_int_equal(radpkt_check_answer(&coa, f, n, "s3cr3t-NAS", &cause, why, sizeof why), -1);
    assert_non_null(strstr(why, "Message-Authenticator"));
    /* the request itself sent back is not an answer */
    assert_int_equal(radpkt_check_answer(&coa, coa.data, coa.len, "s3cr3t-NAS", &cause, why, sizeof why), -1);
}

static void test_limits(void **state)
{
    (void)state;
    radpkt p;
    radpkt_init(&p, RAD_COA_REQUEST, 1);
    char big[254];
    memset(big, 'x', sizeof big);
    assert_int_equal(radpkt_add(&p, RAD_ATTR_USER_NAME, big, 254), -1);
    assert_int_equal(radpkt_sign_request(&p, "s"), -1); /* a packet that lost an attribute is never sent */
    radpkt_init(&p, RAD_COA_REQUEST, 1);
    assert_int_equal(radpkt_add_ipv4(&p, RAD_ATTR_NAS_IP_ADDRESS, "10.0.0.256"), -1);
    assert_int_equal(radpkt_add_ipv4(&p, RAD_ATTR_NAS_IP_ADDRESS, "fe80::1"), -1);
    /* 4096 bytes at most */
    int added = 0;
    while (radpkt_add(&p, RAD_ATTR_USER_NAME, big, 253) == 0) added++;
    assert_int_equal(added, (4096 - 38) / 255);
}

static void rate_ok(const char *text, int64_t down, int64_t up, const char *norm)
{
    netstate_rate r;
    err e;
    if (netstate_rate_parse(text, &r, &e)) fail_msg("%s: %s", text, e.msg);
    assert_int_equal(r.down_kbps, down);
    assert_int_equal(r.up_kbps, up);
    char out[NETSTATE_RATE_TEXT];
    netstate_rate_format(&r, out);
    assert_string_equal(out, norm);
}

static void rate_bad(const char *text, const char *needle)
{
    netstate_rate r;
    err e;
    assert_int_equal(netstate_rate_parse(text, &r, &e), ERR_INVALID);
    assert_string_equal(e.field, "rate");
    assert_string_equal(e.tag, "invalid_rate");
    if (!strstr(e.msg, needle)) fail_msg("%s: '%s' does not say '%s'", text, e.msg, needle);
}

static void test_rates(void **state)
{
    (void)state;
    rate_ok("2M/2M", 2000, 2000, "2M/2M");
    rate_ok("512K/128k", 512, 128, "512K/128K");
    rate_ok("1.5M/512k", 1500, 512, "1500K/512K");
    rate_ok("1G/500M", 1000000, 500000, "1G/500M");
    rate_ok("0.256m/1.001M", 256, 1001, "256K/1001K");
    rate_ok("2000K/1000k", 2000, 1000, "2M/1M");
    rate_ok("100G/1K", 100000000, 1, "100G/1K");
    rate_bad("2M", "DOWNLOAD/UPLOAD");
    rate_bad("2M/2M/2M", "DOWNLOAD/UPLOAD");
    rate_bad("2/2M", "unit");
    rate_bad("2M/2", "unit");
    rate_bad("2 M/2M", "unit");
    rate_bad("2Mb/2M", "unit");
    rate_bad("2T/2M", "K, M or G");
    rate_bad("1.5K/2M", "whole number of kbit/s");
    rate_bad("1.2345M/2M", "three decimals");
    rate_bad("1.M/2M", "point");
    rate_bad("0M/2M", "1K to 100G");
    rate_bad("101G/2M", "1K to 100G");
    rate_bad("9999999999K/1K", "too large");
    rate_bad("M/2M", "number");
    rate_bad("-1M/2M", "number");
    rate_bad("", "DOWNLOAD/UPLOAD");
    netstate_rate r;
    err e;
    assert_int_equal(netstate_rate_parse(NULL, &r, &e), ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disconnect_request),
        cmocka_unit_test(test_coa_requests),
        cmocka_unit_test(test_answers),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
