/* paychan.h - the interface between bandbill and a payment channel plugin.
 *
 * A channel (Alipay, WeChat Pay, a bank, UnionPay...) is a shared object
 * in the plugins folder that exports one function:
 *
 *     const paychan_plugin *bandbill_paychan(const paychan_host *host);
 *
 * The core calls it once after dlopen, checks `abi`, and from then on
 * calls the plugin's functions from any thread, one call at a time per
 * handle. A plugin keeps no global state besides what `open` returns; it
 * never writes to the database, never decides what a payment settles, and
 * never replies to the channel itself: it checks and decodes, the core
 * records and answers. Cryptography and JSON come from the host table so
 * that every channel uses the same, reviewed primitives.
 *
 * This header is the whole contract (docs/PLUGINS.md explains it); it
 * includes nothing from the core, so a plugin builds against it alone.
 */
#ifndef BB_PAYCHAN_H
#define BB_PAYCHAN_H

#include <stddef.h>
#include <stdint.h>

#define PAYCHAN_ABI 1

typedef struct paychan_kv {
    const char *key;
    const char *value;
} paychan_kv;

/* A channel's settings from the config (section [channel.NAME]) as given:
 * app ids, merchant ids, key files, keys. */
typedef struct paychan_settings {
    const paychan_kv *items;
    size_t n;
} paychan_settings;

/* An incoming notification exactly as received. Header names as sent;
 * compare them case-insensitively. body is not NUL-terminated. */
typedef struct paychan_request {
    const paychan_kv *headers;
    size_t nheaders;
    const char *body;
    size_t body_len;
} paychan_request;

typedef enum paychan_state {
    PAYCHAN_PAID = 1,      /* money received (Alipay TRADE_SUCCESS/FINISHED, WeChat SUCCESS) */
    PAYCHAN_NOT_PAID = 2,  /* waiting, closed, failed: nothing to credit */
    PAYCHAN_REFUNDED = 3,
} paychan_state;

/* What a verified notification says. Strings are NUL-terminated and cut
 * to their buffers (a field too long for its buffer is an error of the
 * plugin's, reported with the field's name). */
typedef struct paychan_notice {
    paychan_state state;
    char status[40];            /* the channel's own word: "TRADE_SUCCESS", "SUCCESS" */
    char event[64];             /* what kind of notification: "trade_status_sync", "TRANSACTION.SUCCESS" */
    char out_trade_no[65];      /* our order number */
    char channel_txn_id[65];    /* the channel's transaction id: the key of duplicates */
    int64_t amount;             /* fen, the order's total as the channel states it */
    char currency[8];           /* "CNY" */
    char app_id[65];            /* the app the payment was made to */
    char merchant_id[65];       /* Alipay seller_id, WeChat mchid */
    char paid_at[40];           /* the channel's time of payment, as sent */
    char *fields_json;          /* every decoded field as a JSON object (host->alloc'd; the core frees it) */
} paychan_notice;

/* Why a notification was refused: which check, on which field, and what
 * the channel must be answered (HTTP status and body) so that it retries
 * or gives up as it should. */
typedef struct paychan_error {
    char check[32];             /* "signature", "timestamp", "decrypt", "format", "settings", "amount" ... */
    char field[64];             /* the field or header concerned, or "" */
    char message[256];
    int reply_status;           /* the HTTP status to answer the channel with */
} paychan_error;

/* The answer the channel expects once a notification is durably recorded
 * (ok = 1) or was refused (ok = 0). */
typedef struct paychan_reply {
    int status;
    char content_type[48];
    char body[160];
} paychan_reply;

/* Services of the host. Every function is safe to call from any thread. */
/* An order to collect: what create_order turns into the channel's pay link. */
typedef struct paychan_order {
    const char *out_trade_no;
    int64_t amount;             /* fen */
    const char *subject;        /* what the customer sees: "宽带账单 INV-2026-000001" */
    const char *notify_url;     /* where the channel sends its notification (NULL: from the settings) */
    int64_t expires;            /* Unix time the order stops being payable */
} paychan_order;

/* A request the core makes for the plugin (the plugin never does I/O). */
typedef struct paychan_http {
    char method[8];             /* "POST" */
    char url[1024];
    char headers[4096];         /* "Name: value" lines, each ending in \n */
    char *body;                 /* host->alloc'd; the core frees it */
    size_t body_len;
} paychan_http;

/* create_order's answer when the channel must be asked for the link: the
 * core sends `http` and hands the answer to order_response. */
#define PAYCHAN_HTTP 1

typedef struct paychan_link {
    char url[4096];             /* a link that opens the channel's pay page, or "" */
    char qr[1024];              /* QR content for a code the customer scans, or "" */
    paychan_http http;          /* with PAYCHAN_HTTP */
} paychan_link;

/* A refund to ask the channel for. */
typedef struct paychan_refund {
    const char *out_trade_no;   /* the order that was paid, or NULL */
    const char *channel_txn_id; /* the channel's transaction id of the payment */
    const char *out_refund_no;  /* ours, unique: asking twice with it refunds once */
    int64_t amount;             /* fen to give back */
    int64_t total;              /* fen of the payment */
    const char *reason;
} paychan_refund;

typedef struct paychan_refund_result {
    char refund_id[65];         /* the channel's id of the refund */
    char status[32];            /* the channel's word: "SUCCESS", "PROCESSING", "10000" */
} paychan_refund_result;

/* One line of a channel's daily statement. */
typedef struct paychan_statement_row {
    int refund;                 /* 0 a payment, 1 a refund */
    char channel_txn_id[65];    /* the channel's transaction id (of the payment a refund gives back) */
    char refund_id[65];         /* a refund's own id, or "" */
    char out_trade_no[65];
    int64_t amount;             /* fen, > 0 */
    char at[40];                /* when, as the statement says */
} paychan_statement_row;

typedef struct paychan_host {
    int abi;
    void *(*alloc)(size_t n);                 /* NULL when out of memory */
    void (*free)(void *p);
    /* standard base64 (with padding); returns 0, or -1 for bad input or a
     * too small out */
    int (*b64_decode)(const char *in, size_t len, unsigned char *out, size_t cap, size_t *out_len);
    int (*b64_encode)(const unsigned char *in, size_t len, char *out, size_t cap);
    /* SHA256withRSA (PKCS#1 v1.5) over msg with a PEM public key or
     * certificate: 1 valid, 0 invalid, -1 the key cannot be read (why in
     * err). */
    int (*rsa_sha256_verify)(const char *pem, size_t pem_len, const void *msg, size_t msg_len,
                             const unsigned char *sig, size_t sig_len, char *err, size_t errlen);
    /* the same, signing with a PEM private key: writes base64 to out;
     * 0, or -1 with why in err */
    int (*rsa_sha256_sign)(const char *pem, size_t pem_len, const void *msg, size_t msg_len, char *out, size_t cap,
                           char *err, size_t errlen);
    /* AES-GCM with a 16, 24 or 32-byte key; ct ends with the 16-byte tag.
     * Writes ct_len - 16 bytes to out; 0, or -1 when the tag fails. */
    int (*aes_gcm_decrypt)(const unsigned char *key, size_t key_len, const unsigned char *iv, size_t iv_len,
                           const unsigned char *aad, size_t aad_len, const unsigned char *ct, size_t ct_len,
                           unsigned char *out);
    /* Reads a whole file (keys named in the settings); host->free it. */
    char *(*read_file)(const char *path, size_t *len, char *err, size_t errlen);
    /* JSON: parse under the core's limits; look values up by a dotted
     * path ("resource.ciphertext", "amount.total"). Strings stay valid
     * until json_free. */
    void *(*json_parse)(const char *text, size_t len, char *err, size_t errlen);
    const char *(*json_str)(const void *doc, const char *path);          /* NULL: absent or not a string */
    int (*json_int)(const void *doc, const char *path, int64_t *out);    /* 0, or -1: absent or not an integer */
    char *(*json_text)(const void *doc);                                 /* compact text, host->alloc'd */
    void (*json_free)(void *doc);
    /* Writes a JSON object of string members (for paychan_notice.fields_json), host->alloc'd. */
    char *(*json_object_of)(const paychan_kv *kv, size_t n);
    /* Cryptographically strong random bytes (nonces); 0, or -1. */
    int (*random)(void *out, size_t n);
    /* Reads CSV (RFC 4180: quotes, embedded commas and line breaks), calling
     * row() with each record's fields (NUL-terminated, valid during the
     * call); row() returns 0 to go on. Text in GB18030/GBK (as Alipay's
     * statements come) is read as such when it is not valid UTF-8. 0, or
     * -1 with why in err. */
    int (*csv_rows)(const char *text, size_t len, int (*row)(void *arg, const char *const *fields, size_t n), void *arg,
                    char *why, size_t whylen);
    /* A channel's amount in yuan ("0.10") to fen: digits with at most two
     * decimals, nothing else. 0, or -1. Never a float. */
    int (*yuan_to_fen)(const char *s, int64_t *fen);
} paychan_host;

typedef struct paychan_plugin {
    int abi;                    /* PAYCHAN_ABI */
    const char *name;           /* "alipay": the config section [channel.alipay] and the route /api/v1/notify/alipay */
    const char *title;          /* "支付宝 Alipay" */
    /* Reads and checks the settings, loads keys. 0, or -1 with err
     * (check "settings", field the setting). */
    int (*open)(const paychan_settings *s, void **handle, paychan_error *err);
    void (*close)(void *handle);
    /* Checks a notification (signature, time window, decryption) and
     * decodes it. now: Unix time the checks are made as of. 0 and *out
     * filled, or -1 with err. Business checks (is the order ours, is the
     * amount right) are the core's. */
    int (*verify_notification)(void *handle, const paychan_request *req, int64_t now, paychan_notice *out,
                               paychan_error *err);
    /* The answer for the channel: ok = 1 after the payment is recorded. */
    void (*reply)(void *handle, int ok, const paychan_error *why, paychan_reply *out);
    /* The settings it takes, NULL-terminated: any other setting of the
     * channel in the config is an error (besides the core's own: app_id,
     * merchant_id, order_ttl_min). */
    const char *const *settings;
    /* Makes the pay link of an order (NULL: the channel has none; orders
     * are then paid through the channel's own app). now: Unix time.
     * Returns 0 with the link, PAYCHAN_HTTP with out->http to send, or -1. */
    int (*create_order)(void *handle, const paychan_order *o, int64_t now, paychan_link *out, paychan_error *err);
    /* The channel's answer to out->http (status, headers, body in resp):
     * 0 with the link, or -1 (a refused or unverifiable answer). */
    int (*order_response)(void *handle, const paychan_order *o, int status, const paychan_request *resp, int64_t now,
                          paychan_link *out, paychan_error *err);
    /* Asking the channel about an order no notification came for: the
     * request to send (returns PAYCHAN_HTTP), then the answer checked and
     * decoded as a notification would be (0, or -1). NULL: no queries. */
    int (*query_order)(void *handle, const char *out_trade_no, int64_t now, paychan_http *out, paychan_error *err);
    int (*query_response)(void *handle, const char *out_trade_no, int status, const paychan_request *resp, int64_t now,
                          paychan_notice *out, paychan_error *err);
    /* Giving money back through the channel: the request for the core to
     * send (PAYCHAN_HTTP), then the answer checked (0: the channel took
     * the refund, out->refund_id its id; -1: refused). NULL: no refunds. */
    int (*refund)(void *handle, const struct paychan_refund *r, int64_t now, paychan_http *out, paychan_error *err);
    int (*refund_response)(void *handle, const struct paychan_refund *r, int status, const paychan_request *resp,
                           int64_t now, struct paychan_refund_result *out, paychan_error *err);
    /* Reads the channel's daily statement (the file its merchant platform
     * gives), calling row() for each payment and refund line. 0, or -1
     * naming the line and column at fault. NULL: no statements. */
    int (*parse_statement)(void *handle, const char *text, size_t len,
                           int (*row)(void *arg, const paychan_statement_row *r), void *arg, paychan_error *err);
} paychan_plugin;

typedef const paychan_plugin *(*paychan_entry_fn)(const paychan_host *host);
#define PAYCHAN_ENTRY "bandbill_paychan"

#endif
