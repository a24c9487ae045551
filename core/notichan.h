/* notichan.h - the interface between bandbill and a notification channel
 * driver plugin (an SMS gateway, WeChat template messages, a vendor's
 * messaging API).
 *
 * A driver is a shared object in the plugins folder that exports one
 * function:
 *
 *     const notichan_plugin *bandbill_notichan(const notichan_host *host);
 *
 * The core calls it once after dlopen and checks `abi`. A channel of the
 * outbox (sms, email, wechat) is served by the driver its config names
 * (notify.CHANNEL.driver). As with payment channels, a driver never does
 * I/O and never touches the database: for each message the core gives it
 * the rendered message and the recipient, the driver turns them into the
 * HTTP request its gateway expects (URL, headers, body, signature), the
 * core sends it (connection reuse, timeouts, rate limits, retries) and
 * hands the answer back for the driver to read: taken, with the gateway's
 * id, or refused, and whether trying again can help. Cryptography and
 * JSON come from the host table.
 *
 * This header is the whole contract (docs/PLUGINS.md explains it); it
 * includes nothing from the core, so a plugin builds against it alone.
 */
#ifndef BB_NOTICHAN_H
#define BB_NOTICHAN_H

#include <stddef.h>
#include <stdint.h>

#define NOTICHAN_ABI 1

typedef struct notichan_kv {
    const char *key;
    const char *value;
} notichan_kv;

/* The driver's settings from the config (notify.CHANNEL.KEY), without the
 * core's own (driver, rate, burst). */
typedef struct notichan_settings {
    const notichan_kv *items;
    size_t n;
} notichan_settings;

/* One message, rendered by rules/notices.lua. Strings are UTF-8 and
 * NUL-terminated; what does not apply to the channel is NULL. */
typedef struct notichan_message {
    int64_t id;                 /* the outbox id: the same on every attempt (a gateway's idempotency key) */
    int attempt;                /* 1, 2, ... */
    const char *channel;        /* "sms", "wechat", ... */
    const char *event;          /* "dunning.due_reminder" */
    const char *recipient;      /* phone number, e-mail address or openid, in clear */
    const char *text;           /* sms */
    const char *subject;        /* email */
    const char *body;           /* email (text/plain) */
    const char *template_id;    /* wechat */
    const char *url;            /* wechat: the page the message opens, or NULL */
    const notichan_kv *data;    /* wechat: the template's fields, key -> value */
    const char *const *colors;  /* wechat: a colour ("#FF0000") per field, or NULL entries */
    size_t ndata;
} notichan_message;

/* The request for the core to send. */
typedef struct notichan_http {
    char method[8];             /* "POST" */
    char url[2048];
    char headers[4096];         /* "Name: value" lines, each ending in \n */
    char *body;                 /* host->alloc'd; the core frees it */
    size_t body_len;
} notichan_http;

/* The gateway's answer as received. Header names as sent; compare them
 * case-insensitively. body is NUL-terminated. */
typedef struct notichan_answer {
    int status;                 /* HTTP status */
    const notichan_kv *headers;
    size_t nheaders;
    const char *body;
    size_t body_len;
} notichan_answer;

/* A message the gateway took. */
typedef struct notichan_result {
    char provider_id[128];      /* the gateway's id of the message, or "" */
} notichan_result;

/* Why a message was refused, and whether to try again: a gateway that is
 * down or busy (temporary) is tried again with backoff; a refusal that no
 * retry can change (an invalid number, a user who unfollowed) makes the
 * message dead at once. */
typedef struct notichan_error {
    char message[256];
    char field[64];             /* the setting concerned (open), or "" */
    int permanent;              /* 1: do not try again */
} notichan_error;

/* Services of the host. Every function is safe to call from any thread. */
typedef struct notichan_host {
    int abi;
    void *(*alloc)(size_t n);                 /* NULL when out of memory */
    void (*free)(void *p);
    /* HMAC-SHA256 of msg under key: 32 bytes into out. 0, or -1. */
    int (*hmac_sha256)(const void *key, size_t key_len, const void *msg, size_t msg_len, unsigned char out[32]);
    /* Lower-case hex of n bytes into out (2n + 1 bytes with the NUL). */
    void (*hex)(const unsigned char *in, size_t n, char *out);
    /* Standard base64 with padding; 0, or -1 when out is too small. */
    int (*b64_encode)(const unsigned char *in, size_t len, char *out, size_t cap);
    /* Appends s as a JSON string (quotes and escapes) to out, a NUL-
     * terminated text of capacity cap. 0, or -1 when it does not fit. */
    int (*json_quote)(const char *s, char *out, size_t cap);
    /* Percent-encodes s for a URL query into out; 0, or -1 when it does not fit. */
    int (*url_encode)(const char *s, char *out, size_t cap);
    /* JSON: parse under the core's limits; look values up by a dotted
     * path ("result.msgid"). Strings stay valid until json_free. */
    void *(*json_parse)(const char *text, size_t len, char *err, size_t errlen);
    const char *(*json_str)(const void *doc, const char *path);          /* NULL: absent or not a string */
    int (*json_int)(const void *doc, const char *path, int64_t *out);    /* 0, or -1: absent or not an integer */
    void (*json_free)(void *doc);
    /* Cryptographically strong random bytes (nonces); 0, or -1. */
    int (*random)(void *out, size_t n);
} notichan_host;

typedef struct notichan_plugin {
    int abi;                    /* NOTICHAN_ABI */
    const char *name;           /* "sms_http": what notify.CHANNEL.driver names */
    const char *title;          /* "SMS over an HTTP gateway" */
    /* The settings it takes, NULL-terminated: any other setting of a
     * channel it serves is an error when the daemon starts. */
    const char *const *settings;
    /* Reads and checks the settings. 0, or -1 with err (field: the
     * setting). */
    int (*open)(const notichan_settings *s, void **handle, notichan_error *err);
    void (*close)(void *handle);
    /* The request that delivers message m. now: Unix time (a signature's
     * timestamp). 0, or -1 with err (a message it cannot send: err.permanent). */
    int (*request)(void *handle, const notichan_message *m, int64_t now, notichan_http *out, notichan_error *err);
    /* Reads the gateway's answer to that request: 0 with out filled (the
     * gateway took it), or -1 with err (refused; err.permanent says
     * whether to try again). */
    int (*response)(void *handle, const notichan_message *m, const notichan_answer *a, notichan_result *out,
                    notichan_error *err);
} notichan_plugin;

typedef const notichan_plugin *(*notichan_entry_fn)(const notichan_host *host);
#define NOTICHAN_ENTRY "bandbill_notichan"

#endif
