/* channels.c - loading payment channel plugins and the services they get
 * from the host: base64, RSA signatures, AES-GCM and JSON, all through the
 * core's own OpenSSL and JSON code. */
#include "channels.h"

#include <dirent.h>
#include <dlfcn.h>
#include <iconv.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <csv.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "cfg.h"
#include "crypto.h"
#include "json.h"
#include "money.h"

/* ------------------------------------------------------------ host table */

static void *host_alloc(size_t n) { return malloc(n ? n : 1); }
static void host_free(void *p) { free(p); }

static int host_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *out_len)
{
    if (len == 0) {
        *out_len = 0;
        return 0;
    }
    if (len % 4 || len > INT_MAX || cap < len / 4 * 3) return -1;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
                 (c == '=' && i >= len - 2 && (i == len - 1 || in[len - 1] == '='));
        if (!ok) return -1;
    }
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0) return -1;
    /* EVP_DecodeBlock counts the padding as zero bytes */
    n -= (in[len - 1] == '=') + (in[len - 2] == '=');
    *out_len = (size_t)n;
    return 0;
}

static int host_b64_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
    if (len > INT_MAX / 2 || cap < (len + 2) / 3 * 4 + 1) return -1;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return 0;
}

static void ossl_why(char *why, size_t whylen, const char *what)
{
    unsigned long code = ERR_get_error();
    char detail[160] = "";
    if (code) ERR_error_string_n(code, detail, sizeof detail);
    ERR_clear_error();
    snprintf(why, whylen, "%s%s%s", what, detail[0] ? ": " : "", detail);
}

/* A public key from PEM: a SubjectPublicKeyInfo ("BEGIN PUBLIC KEY", as
 * Alipay hands them out) or a certificate (WeChat Pay's platform
 * certificates). */
static EVP_PKEY *public_key(const char *pem, size_t len, char *why, size_t whylen)
{
    if (len > INT_MAX) return NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b) return NULL;
    EVP_PKEY *k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    if (!k) {
        (void)BIO_reset(b);
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (x) {
            k = X509_get_pubkey(x);
            X509_free(x);
        }
    }
    BIO_free(b);
    if (!k) ossl_why(why, whylen, "not a PEM public key or certificate");
    else if (EVP_PKEY_base_id(k) != EVP_PKEY_RSA) {
        snprintf(why, whylen, "not an RSA key");
        EVP_PKEY_free(k);
        k = NULL;
    }
    ERR_clear_error();
    return k;
}

/* Parsing a PEM key costs more than the RSA verification itself, and a
 * channel verifies every notification with the same key: parsed keys are
 * kept by the SHA-256 of their PEM text. */
#define KEY_CACHE 8
static struct {
    uint8_t id[SHA256_LEN];
    EVP_PKEY *k;
} key_cache[KEY_CACHE];
static int key_cache_next;
static pthread_mutex_t key_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static EVP_PKEY *cached_public_key(const char *pem, size_t len, char *why, size_t whylen)
{
    uint8_t id[SHA256_LEN];
    crypto_sha256_once(pem, len, id);
    EVP_PKEY *k = NULL;
    pthread_mutex_lock(&key_cache_mu);
    for (int i = 0; i < KEY_CACHE && !k; i++)
        if (key_cache[i].k && !memcmp(key_cache[i].id, id, sizeof id) && EVP_PKEY_up_ref(key_cache[i].k) == 1)
            k = key_cache[i].k;
    pthread_mutex_unlock(&key_cache_mu);
    if (k) return k;
    if (!(k = public_key(pem, len, why, whylen))) return NULL;
    if (EVP_PKEY_up_ref(k) != 1) return k;
    pthread_mutex_lock(&key_cache_mu);
    int slot = key_cache_next++ % KEY_CACHE;
    EVP_PKEY_free(key_cache[slot].k);
    key_cache[slot].k = k;
    memcpy(key_cache[slot].id, id, sizeof id);
    pthread_mutex_unlock(&key_cache_mu);
    return k;
}

static int host_rsa_verify(const char *pem, size_t pem_len, const void *msg, size_t msg_len, const unsigned char *sig,
                           size_t sig_len, char *why, size_t whylen)
{
    EVP_PKEY *k = cached_public_key(pem, pem_len, why, whylen);
    if (!k) return -1;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int rc = -1;
    if (c && EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, k) == 1)
        rc = EVP_DigestVerify(c, sig, sig_len, msg, msg_len) == 1 ? 1 : 0;
    else
        ossl_why(why, whylen, "cannot verify");
    ERR_clear_error();
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    return rc;
}

static int host_rsa_sign(const char *pem, size_t pem_len, const void *msg, size_t msg_len, char *out, size_t cap,
                         char *why, size_t whylen)
{
    if (pem_len > INT_MAX) return -1;
    BIO *b = BIO_new_mem_buf(pem, (int)pem_len);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!k) {
        ossl_why(why, whylen, "not a PEM private key");
        return -1;
    }
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t n = sizeof sig;
    int rc = -1;
    if (c && EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k) == 1 && EVP_DigestSign(c, sig, &n, msg, msg_len) == 1) {
        rc = host_b64_encode(sig, n, out, cap);
        if (rc) snprintf(why, whylen, "the signature does not fit its buffer");
    } else {
        ossl_why(why, whylen, "cannot sign");
    }
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    return rc;
}

static int host_aes_gcm_decrypt(const unsigned char *key, size_t key_len, const unsigned char *iv, size_t iv_len,
                                const unsigned char *aad, size_t aad_len, const unsigned char *ct, size_t ct_len,
                                unsigned char *out)
{
    const EVP_CIPHER *cipher = key_len == 32 ? EVP_aes_256_gcm() : key_len == 24 ? EVP_aes_192_gcm()
                             : key_len == 16 ? EVP_aes_128_gcm() : NULL;
    if (!cipher || ct_len < 16 || ct_len - 16 > INT_MAX || iv_len == 0 || iv_len > 64 || aad_len > INT_MAX) return -1;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) return -1;
    int n = 0, m = 0, ok = EVP_DecryptInit_ex(c, cipher, NULL, NULL, NULL) == 1 &&
                           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, (int)iv_len, NULL) == 1 &&
                           EVP_DecryptInit_ex(c, NULL, NULL, key, iv) == 1 &&
                           (aad_len == 0 || EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) == 1) &&
                           EVP_DecryptUpdate(c, out, &n, ct, (int)(ct_len - 16)) == 1 &&
                           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(ct + ct_len - 16)) == 1 &&
                           EVP_DecryptFinal_ex(c, out + n, &m) == 1;
    EVP_CIPHER_CTX_free(c);
    ERR_clear_error();
    return ok ? 0 : -1;
}

static char *host_read_file(const char *path, size_t *len, char *why, size_t whylen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    buf b = {0};
    char chunk[4096];
    size_t n;
    int bad = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(&b, chunk, n) || b.len > (1u << 20)) {
            bad = 1;
            break;
        }
    bad |= ferror(f);
    fclose(f);
    if (bad) {
        buf_free(&b);
        snprintf(why, whylen, "cannot read %s (or larger than 1 MiB)", path);
        return NULL;
    }
    /* handed to the plugin, which frees it with host->free: a malloc'd copy */
    char *out = malloc(b.len + 1);
    if (out) {
        if (b.len) memcpy(out, b.data, b.len);
        out[b.len] = 0;
        *len = b.len;
    } else {
        snprintf(why, whylen, "out of memory");
    }
    buf_free(&b);
    return out;
}

typedef struct host_doc {
    jv_arena a;
    jv *root;
} host_doc;

static void *host_json_parse(const char *text, size_t len, char *why, size_t whylen)
{
    host_doc *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    jv_arena_init(&d->a, 0);
    struct err e;
    err_clear(&e);
    if (json_parse(text, len, &json_default_limits, &d->a, &d->root, &e)) {
        snprintf(why, whylen, "%s%s%s", e.msg, e.field[0] ? " at " : "", e.field);
        jv_arena_free(&d->a);
        free(d);
        return NULL;
    }
    return d;
}

static const jv *doc_path(const void *doc, const char *path)
{
    const jv *v = ((const host_doc *)doc)->root;
    while (v && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        v = jv_getn(v, path, n);
        path += n + (dot != NULL);
    }
    return v;
}

static const char *host_json_str(const void *doc, const char *path)
{
    const jv *v = doc_path(doc, path);
    return v && v->kind == JV_STR ? v->u.str.s : NULL;
}

static int host_json_int(const void *doc, const char *path, int64_t *out)
{
    const jv *v = doc_path(doc, path);
    if (!v || v->kind != JV_INT) return -1;
    *out = v->u.i;
    return 0;
}

static char *host_json_text(const void *doc)
{
    buf b = {0};
    if (json_write(&b, ((const host_doc *)doc)->root)) {
        buf_free(&b);
        return NULL;
    }
    char *out = malloc(b.len + 1);
    if (out) {
        memcpy(out, b.data, b.len);
        out[b.len] = 0;
    }
    buf_free(&b);
    return out;
}

static void host_json_free(void *doc)
{
    host_doc *d = doc;
    if (!d) return;
    jv_arena_free(&d->a);
    free(d);
}

static char *host_json_object_of(const paychan_kv *kv, size_t n)
{
    jw w;
    if (jw_init(&w, 0)) return NULL;
    jw_obj_open(&w);
    for (size_t i = 0; i < n; i++) jw_kv_str(&w, kv[i].key, kv[i].value);
    jw_obj_close(&w);
    size_t len;
    const char *s = jw_finish(&w, &len);
    char *out = s ? malloc(len + 1) : NULL;
    if (out) {
        memcpy(out, s, len);
        out[len] = 0;
    }
    jw_free(&w);
    return out;
}

static int host_random(void *out, size_t n) { return crypto_random(out, n) ? -1 : 0; }

/* ------------------------------------------------------------------- CSV */

#define CSV_MAX_FIELDS 64

typedef struct csv_ctx {
    char *fields[CSV_MAX_FIELDS];
    size_t n;
    int overflow, stop;
    int (*row)(void *arg, const char *const *fields, size_t n);
    void *arg;
} csv_ctx;

static void csv_field(void *s, size_t len, void *data)
{
    csv_ctx *c = data;
    if (c->n == CSV_MAX_FIELDS) {
        c->overflow = 1;
        return;
    }
    char *f = malloc(len + 1);
    if (!f) {
        c->overflow = 1;
        return;
    }
    if (len) memcpy(f, s, len);
    f[len] = 0;
    c->fields[c->n++] = f;
}

static void csv_record(int term, void *data)
{
    (void)term;
    csv_ctx *c = data;
    if (!c->stop && !c->overflow && c->row(c->arg, (const char *const *)c->fields, c->n)) c->stop = 1;
    for (size_t i = 0; i < c->n; i++) free(c->fields[i]);
    c->n = 0;
}

/* GB18030 (a superset of GBK and GB2312) into UTF-8; NULL if it is not that either. */
static char *from_gb18030(const char *in, size_t len, size_t *out_len)
{
    iconv_t cd = iconv_open("UTF-8", "GB18030");
    if (cd == (iconv_t)-1) return NULL;
    size_t cap = len * 2 + 16, left = cap;
    char *out = malloc(cap), *w = out;
    char *r = (char *)in;
    size_t rl = len;
    int bad = !out || iconv(cd, &r, &rl, &w, &left) == (size_t)-1;
    iconv_close(cd);
    if (bad) {
        free(out);
        return NULL;
    }
    *out_len = cap - left;
    return out;
}

static int host_csv_rows(const char *text, size_t len, int (*row)(void *arg, const char *const *fields, size_t n), void *arg,
                         char *why, size_t whylen)
{
    char *conv = NULL;
    if (!json_utf8_valid(text, len)) {
        size_t cl = 0;
        if (!(conv = from_gb18030(text, len, &cl))) {
            snprintf(why, whylen, "the statement is neither UTF-8 nor GB18030/GBK text");
            return -1;
        }
        text = conv;
        len = cl;
    }
    /* a UTF-8 byte order mark is not part of the first field */
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
        text += 3;
        len -= 3;
    }
    struct csv_parser p;
    csv_ctx c = {.row = row, .arg = arg};
    int rc = 0;
    if (csv_init(&p, CSV_APPEND_NULL) != 0) {
        snprintf(why, whylen, "out of memory");
        rc = -1;
    } else {
        if (csv_parse(&p, text, len, csv_field, csv_record, &c) != len || csv_fini(&p, csv_field, csv_record, &c) != 0) {
            snprintf(why, whylen, "not CSV: %s", csv_strerror(csv_error(&p)));
            rc = -1;
        } else if (c.overflow) {
            snprintf(why, whylen, "a line with more than %d fields", CSV_MAX_FIELDS);
            rc = -1;
        }
        for (size_t i = 0; i < c.n; i++) free(c.fields[i]);
        csv_free(&p);
    }
    free(conv);
    return rc;
}

static const paychan_host host = {
    .abi = PAYCHAN_ABI,
    .alloc = host_alloc,
    .free = host_free,
    .b64_decode = host_b64_decode,
    .b64_encode = host_b64_encode,
    .rsa_sha256_verify = host_rsa_verify,
    .rsa_sha256_sign = host_rsa_sign,
    .aes_gcm_decrypt = host_aes_gcm_decrypt,
    .read_file = host_read_file,
    .json_parse = host_json_parse,
    .json_str = host_json_str,
    .json_int = host_json_int,
    .json_text = host_json_text,
    .json_free = host_json_free,
    .json_object_of = host_json_object_of,
    .random = host_random,
    .csv_rows = host_csv_rows,
    .yuan_to_fen = money_parse_plain,
};

const paychan_host *channels_host(void) { return &host; }

/* -------------------------------------------------------------- registry */

#define MAX_CHANNELS 16

static struct {
    void *dl;
    const paychan_plugin *p;
} loaded[MAX_CHANNELS];
static int nloaded;
static char loaded_dir[PATH_MAX];

/* `plugins` beside the running binary. */
static void channels_default_dir(char *out, size_t n)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        snprintf(out, n, "plugins");
        return;
    }
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    snprintf(out, n, "%s/plugins", exe);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int channels_load(const char *dir, int *count, err *e)
{
    if (nloaded && !strcmp(dir, loaded_dir)) {
        if (count) *count = nloaded;
        return 0;
    }
    DIR *dh = opendir(dir);
    if (!dh) return err_set(e, ERR_IO, "cannot open the plugins folder %s: %s", dir, strerror(errno));
    /* in name order, so that load order and errors do not depend on the file system */
    char *names[64];
    int nn = 0;
    struct dirent *de;
    while ((de = readdir(dh)) && nn < 64) {
        size_t l = strlen(de->d_name);
        if (l > 3 && !strcmp(de->d_name + l - 3, ".so")) {
            names[nn] = strdup(de->d_name);
            if (!names[nn]) break;
            nn++;
        }
    }
    closedir(dh);
    qsort(names, (size_t)nn, sizeof *names, by_name);
    int rc = 0;
    for (int i = 0; i < nn; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (rc) continue;
        void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
            rc = err_set(e, ERR_INVALID, "plugin %s does not load: %s", path, dlerror());
            continue;
        }
        paychan_entry_fn entry;
        /* POSIX's way from a data pointer to a function pointer */
        *(void **)&entry = dlsym(dl, PAYCHAN_ENTRY);
        if (!entry) { /* not a payment channel: another kind of plugin */
            dlclose(dl);
            continue;
        }
        const paychan_plugin *p = entry(&host);
        if (!p || p->abi != PAYCHAN_ABI || !p->name || !p->open || !p->verify_notification || !p->reply) {
            rc = err_set(e, ERR_INVALID, "plugin %s: not a payment channel of interface version %d", path, PAYCHAN_ABI);
            dlclose(dl);
            continue;
        }
        if (channels_find(p->name)) {
            rc = err_set(e, ERR_CONFLICT, "plugin %s: a channel named '%s' is loaded already", path, p->name);
            dlclose(dl);
            continue;
        }
        if (nloaded == MAX_CHANNELS) {
            rc = err_set(e, ERR_LIMIT, "plugin %s: more than %d channels", path, MAX_CHANNELS);
            dlclose(dl);
            continue;
        }
        loaded[nloaded].dl = dl;
        loaded[nloaded].p = p;
        nloaded++;
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    if (!rc) snprintf(loaded_dir, sizeof loaded_dir, "%s", dir);
    if (count) *count = nloaded;
    return rc;
}

const paychan_plugin *channels_find(const char *name)
{
    for (int i = 0; i < nloaded; i++)
        if (!strcmp(loaded[i].p->name, name)) return loaded[i].p;
    return NULL;
}

int channels_count(void) { return nloaded; }
const paychan_plugin *channels_at(int i) { return i >= 0 && i < nloaded ? loaded[i].p : NULL; }

void channels_unload(void)
{
    pthread_mutex_lock(&key_cache_mu);
    for (int i = 0; i < KEY_CACHE; i++) {
        EVP_PKEY_free(key_cache[i].k);
        key_cache[i].k = NULL;
    }
    pthread_mutex_unlock(&key_cache_mu);
    for (int i = 0; i < nloaded; i++) dlclose(loaded[i].dl);
    nloaded = 0;
    loaded_dir[0] = 0;
}

int channel_open(const char *name, const paychan_settings *s, channel_handle *out, err *e)
{
    out->p = channels_find(name);
    out->h = NULL;
    if (!out->p) return err_set(e, ERR_NOTFOUND, "no payment channel '%s' (loaded: %d)", name, nloaded);
    static const char *const core_settings[] = {"app_id", "merchant_id", "order_ttl_min", NULL};
    for (size_t i = 0; i < s->n; i++) {
        int known = 0;
        for (const char *const *k = core_settings; *k && !known; k++) known = !strcmp(*k, s->items[i].key);
        for (const char *const *k = out->p->settings; k && *k && !known; k++) known = !strcmp(*k, s->items[i].key);
        if (!known) {
            char list[256] = "app_id, merchant_id, order_ttl_min";
            for (const char *const *k = out->p->settings; k && *k; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), ", %s", *k);
            const char *bad = s->items[i].key;
            out->p = NULL;
            return err_field(e, ERR_INVALID, "unknown_config_key", bad, "channel %s: unknown setting '%s' (known: %s)", name,
                             bad, list);
        }
    }
    paychan_error pe;
    memset(&pe, 0, sizeof pe);
    if (out->p->open(s, &out->h, &pe)) {
        out->p = NULL;
        return err_field(e, ERR_INVALID, "invalid_setting", pe.field, "channel %s: %s%s%s", name, pe.field,
                         pe.field[0] ? ": " : "", pe.message);
    }
    return 0;
}

void channel_close(channel_handle *c)
{
    if (c->p && c->p->close) c->p->close(c->h);
    c->p = NULL;
    c->h = NULL;
}

/* The settings of channel `name` from the config (channel.NAME.*), up to
 * max; the strings belong to the config. */
static size_t channels_settings_of(const cfg *c, const char *name, paychan_kv *kv, size_t max)
{
    size_t n = 0;
    for (int j = 0; j < c->nchset && n < max; j++)
        if (!strcmp(c->chset[j].channel, name)) kv[n++] = (paychan_kv){c->chset[j].key, c->chset[j].value};
    return n;
}

void channels_dir(const cfg *c, char *out, size_t n)
{
    if (c->plugins_dir[0]) snprintf(out, n, "%s", c->plugins_dir);
    else channels_default_dir(out, n);
}

int channel_open_configured(const cfg *c, const char *name, channel_handle *out, err *e)
{
    char dir[CFG_PATH];
    channels_dir(c, dir, sizeof dir);
    int rc = channels_load(dir, NULL, e);
    if (rc) return rc;
    paychan_kv kv[CFG_MAX_CHANNEL_SETTINGS];
    paychan_settings set = {kv, channels_settings_of(c, name, kv, CFG_MAX_CHANNEL_SETTINGS)};
    return channel_open(name, &set, out, e);
}

const char *channels_setting(const cfg *c, const char *name, const char *key)
{
    for (int j = 0; j < c->nchset; j++)
        if (!strcmp(c->chset[j].channel, name) && !strcmp(c->chset[j].key, key)) return c->chset[j].value;
    return NULL;
}

void channels_describe(const paychan_error *pe, char *out, size_t n)
{
    snprintf(out, n, "%s%s%s%s: %s", pe->check[0] ? pe->check : "refused", pe->field[0] ? " (" : "", pe->field,
             pe->field[0] ? ")" : "", pe->message);
}
