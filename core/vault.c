/* vault.c - the key file, AES-256-GCM values, keyed lookup hashes and key
 * rotation (see vault.h for the formats).
 *
 * Key material lives in one calloc'ed struct per open vault and in short
 * lived buffers that are wiped (OPENSSL_cleanse) before they are freed.
 * A vault is read-only after vault_open except for vault_add_key and
 * vault_prune, which must not run while other threads use the same vault. */
#include "vault.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "crypto.h"

/* Every column that holds stored forms. Other subsystems add their
 * encrypted columns here (customers.phone_enc, ...): rotation, counting and
 * pruning only see what is listed, so a missing column would keep values
 * under old keys, and vault_prune could remove a key those values need. */
const vault_column vault_columns[] = {
    {"secrets", "id", "value_enc", "secrets.value"},
    {"staff_users", "id", "email_enc", "staff_users.email"},
    {"staff_users", "id", "phone_enc", "staff_users.phone"},
    {"customers", "id", "id_card_enc", "customers.id_card"},
    {"customers", "id", "phone_enc", "customers.phone"},
    {"customers", "id", "phone2_enc", "customers.phone2"},
    {"customers", "id", "email_enc", "customers.email"},
    {"service_accounts", "id", "password_enc", "service_accounts.password"},
    {"outbox", "id", "recipient_enc", "outbox.recipient"},
    {"customer_wechat", "customer_id", "openid_enc", "customer_wechat.openid"},
};
const int vault_columns_count = (int)(sizeof vault_columns / sizeof *vault_columns);

#define NONCE_LEN 12
#define TAG_LEN 16
#define PREFIX "enc:v1:"
#define PREFIX_LEN 7
/* A key file is a few hundred bytes; anything much larger is not one. */
#define KEY_FILE_MAX (64 * 1024)
/* "k" and at most 9 digits: every id fits char[16] and an int. */
#define KEY_NUM_MAX 999999999
/* Column values, not files: the cap keeps every length inside an int for
 * the OpenSSL calls. */
#define PLAIN_MAX (16u * 1024 * 1024)
/* A rotation batch is held in memory and in one transaction. */
#define BATCH_MAX 10000

typedef struct data_key {
    int num;                      /* N of kN */
    char id[16];                  /* "kN" */
    uint8_t key[VAULT_KEY_LEN];
} data_key;

typedef struct keyset {
    uint8_t index[VAULT_KEY_LEN];
    uint8_t audit[VAULT_KEY_LEN];
    data_key keys[VAULT_MAX_KEYS];  /* increasing numbers; the last is current */
    int nkeys;
} keyset;

struct vault {
    keyset ks;
    char *path;
    EVP_MAC *hmac;   /* fetched once: a fetch per vault_index is a provider lookup */
    EVP_CIPHER *gcm; /* the same for AES-256-GCM: the implicit fetch behind
                      * EVP_aes_256_gcm() was a tenth of a customer read */
};

/* ------------------------------------------------------------- helpers */

static void wipe_free(void *p, size_t n)
{
    if (!p) return;
    OPENSSL_cleanse(p, n);
    free(p);
}

/* N of a data key id "kN" (n bytes; N from 1, no leading zero, so every
 * key has exactly one spelling), or 0. */
static int parse_key_id(const char *s, size_t n)
{
    if (n < 2 || n > 10 || s[0] != 'k' || s[1] < '1' || s[1] > '9') return 0;
    int num = 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        num = num * 10 + (s[i] - '0');
    }
    return num;
}

static const data_key *find_key(const vault *v, const char *id)
{
    for (int i = 0; i < v->ks.nkeys; i++)
        if (!strcmp(v->ks.keys[i].id, id)) return &v->ks.keys[i];
    return NULL;
}

static const data_key *current(const vault *v) { return &v->ks.keys[v->ks.nkeys - 1]; }

/* ------------------------------------------------------------- base64 */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

#define B64_LEN(n) (((n) + 2) / 3 * 4)
static size_t b64_len(size_t n) { return B64_LEN(n); }

/* Decodes canonical padded base64 into out (n / 4 * 3 bytes). Canonical:
 * a multiple of 4 characters of the alphabet, '=' only as the last one or
 * two, and the unused bits before the padding zero. So every byte string
 * has one accepted spelling, and changing any character of a stored value
 * changes its bytes (and fails authentication) instead of slipping through
 * as a different spelling of the same bytes. EVP_DecodeBlock alone would
 * also take whitespace and count the padding as output bytes.
 * Returns the decoded length or -1. */
static long b64_decode(const char *s, size_t n, uint8_t *out)
{
    if (n == 0 || n % 4 || n > INT_MAX) return -1;
    size_t pad = 0;
    if (s[n - 1] == '=') pad = s[n - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < n - pad; i++)
        if (b64_value((unsigned char)s[i]) < 0) return -1;
    if (pad && (b64_value((unsigned char)s[n - 1 - pad]) & (pad == 1 ? 0x3 : 0xF))) return -1;
    int got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (got < 0 || (size_t)got != n / 4 * 3) return -1;
    return (long)((size_t)got - pad);
}

/* --------------------------------------------------------- key file text */

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Parses the text of a key file into ks. Messages name path:line. */
static int parse_keys(const char *path, const char *text, size_t len, keyset *ks, err *e)
{
    memset(ks, 0, sizeof *ks);
    int have_index = 0, have_audit = 0, line = 0;
    size_t pos = 0;
    while (pos < len) {
        line++;
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        const char *l = text + pos;
        size_t n = end - pos;
        pos = end < len ? end + 1 : end;

        if (memchr(l, '\0', n)) return err_set(e, ERR_INVALID, "%s:%d: the line holds a NUL byte", path, line);
        while (n && is_blank(l[n - 1])) n--;   /* \r too: a file edited on Windows */
        while (n && is_blank(*l)) l++, n--;
        if (!n || *l == '#') continue;

        size_t nl = 0;
        while (nl < n && !is_blank(l[nl])) nl++;
        const char *val = l + nl;
        size_t vn = n - nl;
        while (vn && is_blank(*val)) val++, vn--;
        int shown = (int)(nl > 32 ? 32 : nl);

        uint8_t *dst;
        int num = 0;
        if (nl == 5 && !memcmp(l, "index", 5)) {
            if (have_index) return err_set(e, ERR_INVALID, "%s:%d: a second index key", path, line);
            have_index = 1;
            dst = ks->index;
        } else if (nl == 5 && !memcmp(l, "audit", 5)) {
            if (have_audit) return err_set(e, ERR_INVALID, "%s:%d: a second audit key", path, line);
            have_audit = 1;
            dst = ks->audit;
        } else if ((num = parse_key_id(l, nl))) {
            /* increasing, so the current key (the last) is also the newest,
             * and a key id is never reused for different key bytes */
            if (ks->nkeys && num <= ks->keys[ks->nkeys - 1].num)
                return err_set(e, ERR_INVALID,
                               "%s:%d: %.*s comes after %s: data keys must be numbered in increasing order",
                               path, line, shown, l, ks->keys[ks->nkeys - 1].id);
            if (ks->nkeys == VAULT_MAX_KEYS)
                return err_set(e, ERR_LIMIT, "%s:%d: more than %d data keys; prune unused ones", path, line,
                               VAULT_MAX_KEYS);
            dst = ks->keys[ks->nkeys].key;
        } else {
            return err_set(e, ERR_INVALID, "%s:%d: unknown entry '%.*s' (expected index, audit or k<N> with N >= 1)",
                           path, line, shown, l);
        }
        if (!vn) return err_set(e, ERR_INVALID, "%s:%d: '%.*s' has no key", path, line, shown, l);
        for (size_t i = 0; i < vn; i++)
            if (is_blank(val[i]))
                return err_set(e, ERR_INVALID, "%s:%d: unexpected text after the %.*s key", path, line, shown, l);
        /* canonical base64 of 32 bytes is 44 characters; allow a little
         * more so a key of the wrong length is reported as such */
        if (vn > 88)
            return err_set(e, ERR_INVALID, "%s:%d: the %.*s key is too long (a key is 32 bytes, 44 base64 characters)",
                           path, line, shown, l);
        uint8_t raw[66];
        long got = b64_decode(val, vn, raw);
        if (got == VAULT_KEY_LEN) memcpy(dst, raw, VAULT_KEY_LEN);
        OPENSSL_cleanse(raw, sizeof raw);
        if (got < 0) return err_set(e, ERR_INVALID, "%s:%d: the %.*s key is not valid base64", path, line, shown, l);
        if (got != VAULT_KEY_LEN)
            return err_set(e, ERR_INVALID, "%s:%d: the %.*s key is %ld bytes; keys are %d bytes", path, line, shown, l,
                           got, VAULT_KEY_LEN);
        if (num) {
            data_key *k = &ks->keys[ks->nkeys++];
            k->num = num;
            snprintf(k->id, sizeof k->id, "k%d", num);
        }
    }
    if (!have_index) return err_set(e, ERR_INVALID, "%s: no index key (a line `index <base64>`)", path);
    if (!have_audit) return err_set(e, ERR_INVALID, "%s: no audit key (a line `audit <base64>`)", path);
    if (!ks->nkeys) return err_set(e, ERR_INVALID, "%s: no data key (a line `k1 <base64>`)", path);
    return 0;
}

static int keyset_equal(const keyset *a, const keyset *b)
{
    if (a->nkeys != b->nkeys) return 0;
    int diff = CRYPTO_memcmp(a->index, b->index, VAULT_KEY_LEN) | CRYPTO_memcmp(a->audit, b->audit, VAULT_KEY_LEN);
    for (int i = 0; i < a->nkeys; i++)
        diff |= (a->keys[i].num != b->keys[i].num) |
                CRYPTO_memcmp(a->keys[i].key, b->keys[i].key, VAULT_KEY_LEN);
    return diff == 0;
}

/* ------------------------------------------------------------ key file io */

static int check_stat(const char *path, const struct stat *st, err *e)
{
    if (S_ISLNK(st->st_mode))
        return err_set(e, ERR_FORBIDDEN, "key file %s is a symbolic link: refusing it (configure the file itself)", path);
    if (!S_ISREG(st->st_mode)) return err_set(e, ERR_FORBIDDEN, "key file %s is not a regular file", path);
    if (st->st_mode & 077)
        return err_set(e, ERR_FORBIDDEN, "key file %s has mode %04o: group or others may access it; run `chmod 600 %s`",
                       path, (unsigned)(st->st_mode & 07777), path);
    return 0;
}

/* Opens the key file for reading after checking what it is; the checks are
 * repeated on the open descriptor so the file cannot be swapped between
 * the lstat and the open. */
static int open_key_file(const char *path, int *fdp, err *e)
{
    *fdp = -1;
    struct stat ls, fs;
    if (lstat(path, &ls)) {
        int code = errno == ENOENT ? ERR_NOTFOUND : ERR_IO;
        return err_set(e, code, "key file %s: %s", path, strerror(errno));
    }
    int rc = check_stat(path, &ls, e);
    if (rc) return rc;
    /* O_NONBLOCK: should a FIFO appear in its place, fail instead of hang */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            return err_set(e, ERR_FORBIDDEN, "key file %s is a symbolic link: refusing it (configure the file itself)",
                           path);
        return err_set(e, ERR_IO, "cannot open key file %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &fs)) {
        rc = err_set(e, ERR_IO, "cannot stat key file %s: %s", path, strerror(errno));
    } else if (!(rc = check_stat(path, &fs, e)) && (fs.st_dev != ls.st_dev || fs.st_ino != ls.st_ino)) {
        rc = err_set(e, ERR_CONFLICT, "key file %s was replaced while being opened; try again", path);
    }
    if (rc) {
        close(fd);
        return rc;
    }
    *fdp = fd;
    return 0;
}

/* Reads the whole file into one fixed allocation (growing would leave
 * copies of the keys in freed memory). The caller wipes and frees *text
 * (KEY_FILE_MAX + 1 bytes). */
static int read_key_text(int fd, const char *path, char **text, size_t *len, err *e)
{
    *text = NULL;
    *len = 0;
    char *t = malloc(KEY_FILE_MAX + 1);
    if (!t) return ERR_NOMEM_RET(e);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, t + n, KEY_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int rc = err_set(e, ERR_IO, "cannot read key file %s: %s", path, strerror(errno));
            wipe_free(t, KEY_FILE_MAX + 1);
            return rc;
        }
        if (r == 0) break;
        n += (size_t)r;
        if (n > KEY_FILE_MAX) {
            wipe_free(t, KEY_FILE_MAX + 1);
            return err_set(e, ERR_LIMIT, "key file %s is larger than %d bytes: not a key file", path, KEY_FILE_MAX);
        }
    }
    t[n] = '\0';
    *text = t;
    *len = n;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The folder of path, for fsync after a create or rename (a new directory
 * entry is only durable once its folder is synced). */
static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

static int sync_folder_of(const char *path, err *e)
{
    char *dir = folder_of(path);
    if (!dir) return ERR_NOMEM_RET(e);
    int rc = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd))
        rc = err_set(e, ERR_IO, "cannot sync folder %s (for key file %s): %s", dir, path, strerror(errno));
    if (fd >= 0) close(fd);
    free(dir);
    return rc;
}

/* Replaces the key file with content: a temporary file beside it (mode
 * 0600, fsynced) is renamed over it and the folder synced, so a crash
 * leaves either the old file or the new one, never a mix. The new file
 * keeps the old one's owner: root running `keys add` on the service
 * user's file must not leave a file the service cannot read. */
static int replace_key_file(const char *path, const char *content, size_t len, const struct stat *old, err *e)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + sizeof ".tmp-XXXXXX");
    if (!tmp) return ERR_NOMEM_RET(e);
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
    int fd = mkstemp(tmp);   /* 0600, O_EXCL */
    if (fd < 0) {
        int rc = err_set(e, ERR_IO, "cannot create a temporary file beside key file %s: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    int rc = 0;
    if ((old->st_uid != geteuid() || old->st_gid != getegid()) && fchown(fd, old->st_uid, old->st_gid))
        rc = err_set(e, ERR_IO, "cannot give %s the owner of key file %s (uid %u, gid %u): %s", tmp, path,
                     (unsigned)old->st_uid, (unsigned)old->st_gid, strerror(errno));
    if (!rc && (fchmod(fd, 0600) || write_all(fd, content, len) || fsync(fd)))
        rc = err_set(e, ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    if (close(fd) && !rc) rc = err_set(e, ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path))
        rc = err_set(e, ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc) {
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    return sync_folder_of(path, e);
}

/* For vault_add_key and vault_prune: takes an exclusive lock on the key
 * file and re-reads it, refusing unless it still holds exactly the keys of
 * v. Rewriting from a stale view could drop a key another process added
 * (and with it every value encrypted under it). The lock is held until *fdp
 * is closed, after the replacement. */
static int lock_and_reread(vault *v, int *fdp, struct stat *st, char **text, size_t *len, err *e)
{
    *fdp = -1;
    *text = NULL;
    *len = 0;
    memset(st, 0, sizeof *st);
    int fd;
    int rc = open_key_file(v->path, &fd, e);
    if (rc) return rc;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        rc = errno == EWOULDBLOCK ? err_set(e, ERR_BUSY, "key file %s is being changed by another process", v->path)
                                  : err_set(e, ERR_IO, "cannot lock key file %s: %s", v->path, strerror(errno));
        close(fd);
        return rc;
    }
    /* a process that held the lock before us may have renamed a new file
     * into place: the lock must be on the file that is there now */
    struct stat b;
    if (fstat(fd, st) || lstat(v->path, &b) || st->st_dev != b.st_dev || st->st_ino != b.st_ino) {
        close(fd);
        return err_set(e, ERR_CONFLICT, "key file %s was replaced meanwhile; try again", v->path);
    }
    rc = read_key_text(fd, v->path, text, len, e);
    if (rc) {
        close(fd);
        return rc;
    }
    keyset *now = malloc(sizeof *now);
    if (!now) rc = ERR_NOMEM_RET(e);
    else if (!(rc = parse_keys(v->path, *text, *len, now, e)) && !keyset_equal(now, &v->ks))
        rc = err_set(e, ERR_CONFLICT,
                     "key file %s no longer holds the keys read from it (changed by another process?): "
                     "open it again and retry",
                     v->path);
    wipe_free(now, sizeof *now);
    if (rc) {
        wipe_free(*text, KEY_FILE_MAX + 1);
        *text = NULL;
        close(fd);
        return rc;
    }
    *fdp = fd;
    return 0;
}

static const char key_file_header[] =
    "# bandbill key file: keep it apart from the database, mode 0600.\n"
    "# Without it the encrypted values in the database cannot be read: back it\n"
    "# up, separately from the database's backups.\n"
    "#   index  keyed hashes for lookups (never rotated)\n"
    "#   audit  the audit trail's chain key (never rotated)\n"
    "#   k<N>   data keys; the last one encrypts new values\n";

/* "NAME <base64 of a fresh random key>\n" into line (at least 64 bytes). */
static int random_key_line(const char *name, char *line, size_t n, uint8_t key[VAULT_KEY_LEN], err *e)
{
    if (crypto_random(key, VAULT_KEY_LEN))
        return err_set(e, ERR_INTERNAL, "the system's random generator failed");
    char b64[B64_LEN(VAULT_KEY_LEN) + 1];
    EVP_EncodeBlock((unsigned char *)b64, key, VAULT_KEY_LEN);
    snprintf(line, n, "%s %s\n", name, b64);
    OPENSSL_cleanse(b64, sizeof b64);
    return 0;
}

int vault_create_file(const char *path, err *e)
{
    char text[1024];
    uint8_t key[VAULT_KEY_LEN];
    char lines[3][64];
    static const char *const names[] = {"index", "audit", "k1"};
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++) rc = random_key_line(names[i], lines[i], sizeof lines[i], key, e);
    OPENSSL_cleanse(key, sizeof key);
    size_t len = 0;
    if (!rc) len = (size_t)snprintf(text, sizeof text, "%s%s%s%s", key_file_header, lines[0], lines[1], lines[2]);
    OPENSSL_cleanse(lines, sizeof lines);
    if (rc) return rc;

    /* O_EXCL: never overwrite a key file, it may hold the only copy of
     * keys that values in the database need */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        OPENSSL_cleanse(text, sizeof text);
        if (errno == EEXIST)
            return err_set(e, ERR_CONFLICT, "key file %s already exists: refusing to overwrite it", path);
        return err_set(e, ERR_IO, "cannot create key file %s: %s", path, strerror(errno));
    }
    /* the umask only takes bits away; fchmod makes it exactly 0600 */
    if (fchmod(fd, 0600) || write_all(fd, text, len) || fsync(fd))
        rc = err_set(e, ERR_IO, "cannot write key file %s: %s", path, strerror(errno));
    OPENSSL_cleanse(text, sizeof text);
    if (close(fd) && !rc) rc = err_set(e, ERR_IO, "cannot write key file %s: %s", path, strerror(errno));
    if (!rc) rc = sync_folder_of(path, e);
    /* nothing can have used these keys yet: a failed file goes, so that
     * the command can simply be run again */
    if (rc) unlink(path);
    return rc;
}

/* --------------------------------------------------------------- open */

int vault_open(const char *path, vault **out, err *e)
{
    *out = NULL;
    vault *v = calloc(1, sizeof *v);
    if (!v) return ERR_NOMEM_RET(e);
    v->path = strdup(path);
    if (!v->path) {
        free(v);
        return ERR_NOMEM_RET(e);
    }
    int fd;
    int rc = open_key_file(path, &fd, e);
    if (!rc) {
        char *text;
        size_t len;
        rc = read_key_text(fd, path, &text, &len, e);
        close(fd);
        if (!rc) {
            rc = parse_keys(path, text, len, &v->ks, e);
            wipe_free(text, KEY_FILE_MAX + 1);
        }
    }
    if (!rc && !(v->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)))
        rc = err_set(e, ERR_INTERNAL, "OpenSSL provides no HMAC");
    if (!rc && !(v->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)))
        rc = err_set(e, ERR_INTERNAL, "OpenSSL provides no AES-256-GCM");
    if (rc) {
        vault_close(v);
        return rc;
    }
    *out = v;
    return 0;
}

void vault_close(vault *v)
{
    if (!v) return;
    free(v->path);
    EVP_MAC_free(v->hmac);
    EVP_CIPHER_free(v->gcm);
    OPENSSL_cleanse(v, sizeof *v);
    free(v);
}

const char *vault_path(const vault *v) { return v->path; }
const char *vault_current_key(const vault *v) { return current(v)->id; }
const uint8_t *vault_audit_key(const vault *v) { return v->ks.audit; }

/* ------------------------------------------------------------- values */

/* AES-256-GCM of n bytes (n <= PLAIN_MAX) with aad as associated data. */
static int gcm_seal(const EVP_CIPHER *gcm, const uint8_t *key, const char *aad, const uint8_t *nonce, const void *in, size_t n,
                    uint8_t *ct, uint8_t *tag, err *e)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) return ERR_NOMEM_RET(e);
    size_t al = strlen(aad);
    int l = 0;
    /* the default GCM nonce length is 12, the size stored forms carry */
    int ok = EVP_EncryptInit_ex2(c, gcm, key, nonce, NULL) == 1;
    if (ok && al) ok = EVP_EncryptUpdate(c, NULL, &l, (const unsigned char *)aad, (int)al) == 1;
    if (ok && n) ok = EVP_EncryptUpdate(c, ct, &l, in, (int)n) == 1 && (size_t)l == n;
    if (ok) ok = EVP_EncryptFinal_ex(c, ct + n, &l) == 1 && l == 0;
    if (ok) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : err_set(e, ERR_INTERNAL, "AES-256-GCM encryption failed for %s", aad);
}

/* The reverse into plain (n bytes). ERR_FORBIDDEN when the tag does not
 * match; plain then holds unauthenticated bytes the caller must wipe. */
static int gcm_open(const EVP_CIPHER *gcm, const uint8_t *key, const char *aad, const uint8_t *nonce, const uint8_t *ct, size_t n,
                    const uint8_t *tag, uint8_t *plain, err *e)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) return ERR_NOMEM_RET(e);
    uint8_t t[TAG_LEN];
    memcpy(t, tag, TAG_LEN);
    size_t al = strlen(aad);
    int l = 0;
    int ok = EVP_DecryptInit_ex2(c, gcm, key, nonce, NULL) == 1;
    if (ok && al) ok = EVP_DecryptUpdate(c, NULL, &l, (const unsigned char *)aad, (int)al) == 1;
    if (ok && n) ok = EVP_DecryptUpdate(c, plain, &l, ct, (int)n) == 1 && (size_t)l == n;
    if (ok) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, t) == 1;
    if (!ok) {
        EVP_CIPHER_CTX_free(c);
        return err_set(e, ERR_INTERNAL, "AES-256-GCM decryption failed for %s", aad);
    }
    ok = EVP_DecryptFinal_ex(c, plain + n, &l) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok)
        return err_set(e, ERR_FORBIDDEN,
                       "value for %s does not authenticate: tampered with, or made for another place", aad);
    return 0;
}

/* aad goes into error messages and an int length: keep it a sane name */
static int check_aad(const char *aad, err *e)
{
    if (!aad || !*aad) return err_set(e, ERR_INTERNAL, "vault: no place (associated data) given");
    if (strlen(aad) > 256) return err_set(e, ERR_INTERNAL, "vault: place %.40s... is too long", aad);
    return 0;
}

int vault_encrypt(const vault *v, const char *aad, const void *plain, size_t n, buf *out, err *e)
{
    int rc = check_aad(aad, e);
    if (rc) return rc;
    if (n > PLAIN_MAX)
        return err_set(e, ERR_LIMIT, "value for %s is %zu bytes; the vault encrypts at most %u", aad, n, PLAIN_MAX);
    if (!plain && n) return err_set(e, ERR_INTERNAL, "vault_encrypt: no data for %s", aad);
    const data_key *k = current(v);
    size_t raw_len = NONCE_LEN + n + TAG_LEN;
    uint8_t *raw = malloc(raw_len);
    if (!raw) return ERR_NOMEM_RET(e);
    /* a fresh random 96-bit nonce per value: GCM must never see a nonce
     * twice under one key, and values are written from many processes, so
     * a counter is not an option (random nonces stay safe far beyond the
     * number of values one key will encrypt before it is rotated) */
    if (crypto_random(raw, NONCE_LEN)) rc = err_set(e, ERR_INTERNAL, "the system's random generator failed");
    if (!rc) rc = gcm_seal(v->gcm, k->key, aad, raw, plain, n, raw + NONCE_LEN, raw + NONCE_LEN + n, e);
    size_t idl = strlen(k->id);
    /* reserve everything first so a failure leaves out as it was */
    if (!rc && buf_reserve(out, PREFIX_LEN + idl + 1 + b64_len(raw_len))) rc = ERR_NOMEM_RET(e);
    if (!rc) {
        char *p = out->data + out->len;
        memcpy(p, PREFIX, PREFIX_LEN);
        memcpy(p + PREFIX_LEN, k->id, idl);
        p[PREFIX_LEN + idl] = ':';
        int m = EVP_EncodeBlock((unsigned char *)p + PREFIX_LEN + idl + 1, raw, (int)raw_len);
        out->len += PREFIX_LEN + idl + 1 + (size_t)m;
        out->data[out->len] = '\0';
    }
    free(raw);   /* nonce, ciphertext and tag: nothing secret */
    return rc;
}

const char *vault_key_of(const char *stored, char id[16])
{
    if (!stored || strncmp(stored, PREFIX, PREFIX_LEN)) return NULL;
    const char *s = stored + PREFIX_LEN;
    size_t n = 0;
    while (n < 11 && s[n] && s[n] != ':') n++;
    if (s[n] != ':' || !parse_key_id(s, n)) return NULL;
    memcpy(id, s, n);
    id[n] = '\0';
    return id;
}

int vault_decrypt(const vault *v, const char *aad, const char *stored, buf *out, err *e)
{
    int rc = check_aad(aad, e);
    if (rc) return rc;
    char id[16];
    if (!vault_key_of(stored, id))
        return err_set(e, ERR_INVALID, "value for %s is not an encrypted value (enc:v1:<key id>:<base64>)", aad);
    const char *payload = stored + PREFIX_LEN + strlen(id) + 1;
    size_t pn = strlen(payload);
    if (pn < b64_len(NONCE_LEN + TAG_LEN))
        return err_set(e, ERR_INVALID, "value for %s is too short to be an encrypted value", aad);
    if (pn > b64_len(NONCE_LEN + (size_t)PLAIN_MAX + TAG_LEN))
        return err_set(e, ERR_INVALID, "value for %s is longer than any encrypted value", aad);
    uint8_t *raw = malloc(pn / 4 * 3);
    if (!raw) return ERR_NOMEM_RET(e);
    long rl = b64_decode(payload, pn, raw);
    const data_key *k = find_key(v, id);
    if (rl < 0)
        rc = err_set(e, ERR_INVALID, "value for %s: the part after enc:v1:%s: is not valid base64", aad, id);
    else if (rl < NONCE_LEN + TAG_LEN)
        rc = err_set(e, ERR_INVALID, "value for %s is too short to be an encrypted value", aad);
    else if (!k)
        rc = err_set(e, ERR_NOTFOUND, "value for %s is under key %s, which key file %s does not have", aad, id,
                     v->path);
    size_t n = rl >= NONCE_LEN + TAG_LEN ? (size_t)rl - NONCE_LEN - TAG_LEN : 0;
    if (!rc && buf_reserve(out, n)) rc = ERR_NOMEM_RET(e);
    if (!rc) {
        /* decrypted straight into out: no other copy of the plaintext */
        uint8_t *dst = (uint8_t *)out->data + out->len;
        rc = gcm_open(v->gcm, k->key, aad, raw, raw + NONCE_LEN, n, raw + NONCE_LEN + n, dst, e);
        if (rc) OPENSSL_cleanse(dst, n);   /* unauthenticated: never hand it out */
        else out->len += n;
        out->data[out->len] = '\0';
    }
    free(raw);
    return rc;
}

void vault_index(const vault *v, const char *kind, const char *value, char out[VAULT_INDEX_HEX])
{
    /* the signature has no error path: on failure out is "", which no
     * stored index equals, so a lookup finds nothing rather than a wrong
     * row */
    memset(out, 0, VAULT_INDEX_HEX);
    if (!kind || !value) return;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    uint8_t mac[32];
    size_t ml = 0;
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(v->hmac);
    /* the kind's NUL ends it, so ("ab", "c") and ("a", "bc") differ */
    int ok = c && EVP_MAC_init(c, v->ks.index, VAULT_KEY_LEN, params) == 1 &&
             EVP_MAC_update(c, (const unsigned char *)kind, strlen(kind) + 1) == 1 &&
             EVP_MAC_update(c, (const unsigned char *)value, strlen(value)) == 1 &&
             EVP_MAC_final(c, mac, &ml, sizeof mac) == 1 && ml == sizeof mac;
    EVP_MAC_CTX_free(c);
    if (ok) crypto_hex(mac, sizeof mac, out);
}

/* ------------------------------------------------------------ add, prune */

int vault_add_key(vault *v, char new_id[16], err *e)
{
    keyset *ks = &v->ks;
    if (ks->nkeys >= VAULT_MAX_KEYS)
        return err_set(e, ERR_LIMIT, "key file %s already has %d data keys: rotate and prune first", v->path,
                       VAULT_MAX_KEYS);
    int num = ks->keys[ks->nkeys - 1].num;
    if (num >= KEY_NUM_MAX) return err_set(e, ERR_LIMIT, "key file %s: no key number left after k%d", v->path, num);
    num++;

    int fd;
    char *text;
    size_t len;
    struct stat st;
    int rc = lock_and_reread(v, &fd, &st, &text, &len, e);
    if (rc) return rc;
    char name[16], line[80];
    uint8_t key[VAULT_KEY_LEN];
    snprintf(name, sizeof name, "k%d", num);
    rc = random_key_line(name, line, sizeof line, key, e);
    size_t ll = strlen(line), nl = len && text[len - 1] != '\n';
    char *content = NULL;
    if (!rc && !(content = malloc(len + nl + ll))) rc = ERR_NOMEM_RET(e);
    if (!rc) {
        /* the old text as it is (comments included) and the new line */
        memcpy(content, text, len);
        if (nl) content[len] = '\n';
        memcpy(content + len + nl, line, ll);
        rc = replace_key_file(v->path, content, len + nl + ll, &st, e);
    }
    /* only once the key is durable in the file does v make it current:
     * nothing is encrypted under a key that a crash could lose */
    if (!rc) {
        data_key *k = &ks->keys[ks->nkeys++];
        k->num = num;
        memcpy(k->id, name, sizeof k->id);
        memcpy(k->key, key, VAULT_KEY_LEN);
        if (new_id) memcpy(new_id, name, sizeof name);
    }
    close(fd);   /* releases the lock, after the rename */
    wipe_free(content, len + nl + ll);
    wipe_free(text, KEY_FILE_MAX + 1);
    OPENSSL_cleanse(line, sizeof line);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* Table and column names are pasted into SQL: only plain identifiers from
 * the registry, checked, never anything else. */
static int ident_ok(const char *s)
{
    if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return 0;
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
              s[n] == '_'))
            return 0;
    return n <= 64;
}

static int column_ok(const vault_column *c, err *e)
{
    if (ident_ok(c->table) && ident_ok(c->id) && ident_ok(c->column) && c->aad && *c->aad) return 0;
    return err_set(e, ERR_INTERNAL, "vault_columns: bad entry %s.%s", c->table ? c->table : "?",
                   c->column ? c->column : "?");
}

/* Prepares SQL assembled from a registry entry (not cached: db_prepare
 * keys on the literal's address). */
__attribute__((format(printf, 3, 4))) static db_stmt *prepare_fmt(db *d, err *e, const char *fmt, ...)
{
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof sql) {
        err_set(e, ERR_INTERNAL, "vault: SQL for a registry entry is too long");
        return NULL;
    }
    return db_prepare_once(d, sql, e);
}

/* Whether any registered column holds a value under key id. */
static int key_in_use(db *d, const char *id, int *used, err *e)
{
    char pattern[32];
    snprintf(pattern, sizeof pattern, PREFIX "%s:%%", id);
    *used = 0;
    for (int i = 0; i < vault_columns_count && !*used; i++) {
        const vault_column *c = &vault_columns[i];
        int rc = column_ok(c, e);
        if (rc) return rc;
        db_stmt *s = prepare_fmt(d, e, "SELECT 1 FROM %s WHERE %s LIKE ? LIMIT 1", c->table, c->column);
        if (!s) return e ? e->code : ERR_DB;
        db_bind_text(s, 1, pattern);
        rc = db_step(d, s, e);
        db_finalize(s);
        if (rc < 0) return err_prefix(e, "checking %s.%s for key %s", c->table, c->column, id);
        *used = rc == DB_ROW;
    }
    return 0;
}

int vault_prune(db *d, vault *v, char *removed, size_t n, err *e)
{
    if (removed && n) removed[0] = '\0';
    keyset *ks = &v->ks;
    int drop[VAULT_MAX_KEYS] = {0}, ndrop = 0;
    char list[VAULT_MAX_KEYS * 12] = "";
    size_t ll = 0;
    /* the write lock, held from the checks until the file is replaced, so
     * no value can be written under a key between its check and its
     * removal (by writers that use this database and a current key file) */
    int rc = db_begin(d, e);
    if (rc) return rc;
    /* never the current key (the last), even with no value under it */
    for (int i = 0; i < ks->nkeys - 1 && !rc; i++) {
        int used;
        rc = key_in_use(d, ks->keys[i].id, &used, e);
        if (!rc && !used) {
            drop[i] = 1;
            ndrop++;
            ll += (size_t)snprintf(list + ll, sizeof list - ll, "%s%s", ll ? " " : "", ks->keys[i].id);
        }
    }
    if (!rc && ndrop && removed && ll >= n)
        rc = err_set(e, ERR_LIMIT, "vault_prune: %zu bytes for the removed ids \"%s\", %zu given", ll + 1, list, n);
    if (rc || !ndrop) {
        db_rollback(d);
        return rc;
    }

    int fd;
    char *text = NULL, *content = NULL;
    size_t len = 0, cl = 0;
    struct stat st;
    rc = lock_and_reread(v, &fd, &st, &text, &len, e);
    if (rc) {
        db_rollback(d);
        return rc;
    }
    if (!(content = malloc(len + 1))) rc = ERR_NOMEM_RET(e);
    /* the text as it is (comments included) without the lines of the
     * dropped keys; the file parsed, so a key line is "kN <base64>" */
    for (size_t pos = 0; !rc && pos < len;) {
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        if (end < len) end++;
        size_t s = pos;
        while (s < end && is_blank(text[s])) s++;
        size_t t = s;
        while (t < end && !is_blank(text[t]) && text[t] != '\n') t++;
        int num = parse_key_id(text + s, t - s), skip = 0;
        for (int i = 0; num && i < ks->nkeys; i++)
            if (ks->keys[i].num == num) skip = drop[i];
        if (!skip) {
            memcpy(content + cl, text + pos, end - pos);
            cl += end - pos;
        }
        pos = end;
    }
    if (!rc) rc = replace_key_file(v->path, content, cl, &st, e);
    close(fd);
    db_rollback(d);   /* nothing was written: the transaction only locked */
    wipe_free(content, len + 1);
    wipe_free(text, KEY_FILE_MAX + 1);
    if (rc) return rc;

    int j = 0;
    for (int i = 0; i < ks->nkeys; i++)
        if (!drop[i]) ks->keys[j++] = ks->keys[i];
    OPENSSL_cleanse(&ks->keys[j], (size_t)(ks->nkeys - j) * sizeof ks->keys[0]);
    ks->nkeys = j;
    if (removed) memcpy(removed, list, ll + 1);
    return 0;
}

/* ------------------------------------------------------------- rotation */

typedef struct batch_rows {
    int64_t *ids;
    char **vals;
    int n;
} batch_rows;

static void rows_clear(batch_rows *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->vals[i]);
        r->vals[i] = NULL;
    }
    r->n = 0;
}

/* One batch of one column in one transaction: select up to `batch` values
 * not under the current key, re-encrypt each, write it back only where it
 * still holds what was read. Either the whole batch commits or none of
 * it, and every value is decryptable before and after (the new key is
 * already durable in the key file). */
static int rotate_batch(db *d, const vault *v, const vault_column *c, db_stmt *sel, db_stmt *upd,
                        const char *pattern, int batch, batch_rows *rows, int *selected, int64_t *rewritten, err *e)
{
    *selected = 0;
    *rewritten = 0;
    int rc = db_begin(d, e);
    if (rc) return rc;
    /* read the whole batch first: updating rows while a SELECT over the
     * same table is still stepping is not something to rely on */
    db_done(sel);
    db_bind_text(sel, 1, pattern);
    db_bind_int(sel, 2, batch);
    while (!rc && (rc = db_step(d, sel, e)) == DB_ROW) {
        rc = 0;
        if (rows->n >= batch) break;
        rows->ids[rows->n] = db_col_int(sel, 0);
        if (!(rows->vals[rows->n] = strdup(db_col_text(sel, 1)))) rc = ERR_NOMEM_RET(e);
        else rows->n++;
    }
    if (rc == DB_DONE) rc = 0;
    db_done(sel);
    *selected = rows->n;

    buf plain = {0}, enc = {0};
    for (int i = 0; !rc && i < rows->n; i++) {
        buf_reset(&plain);
        buf_reset(&enc);
        rc = vault_decrypt(v, c->aad, rows->vals[i], &plain, e);
        if (!rc) rc = vault_encrypt(v, c->aad, plain.data ? plain.data : "", plain.len, &enc, e);
        if (plain.data) OPENSSL_cleanse(plain.data, plain.cap);
        if (rc) {
            err_prefix(e, "%s.%s, %s %lld", c->table, c->column, c->id, (long long)rows->ids[i]);
            break;
        }
        db_done(upd);
        db_bind_text(upd, 1, buf_cstr(&enc));
        db_bind_int(upd, 2, rows->ids[i]);
        db_bind_text(upd, 3, rows->vals[i]);   /* unchanged since read, or left alone */
        rc = db_step(d, upd, e);
        if (rc == DB_DONE) {
            rc = 0;
            *rewritten += db_changes(d);
        } else {
            if (rc == DB_ROW) rc = err_set(e, ERR_INTERNAL, "UPDATE returned a row");
            err_prefix(e, "%s.%s, %s %lld", c->table, c->column, c->id, (long long)rows->ids[i]);
        }
        db_done(upd);
    }
    buf_free(&plain);
    buf_free(&enc);
    rows_clear(rows);
    /* rows are selected inside the write transaction, so each must have
     * been rewritten; if none was, the next batch would select them again
     * forever */
    if (!rc && *selected && !*rewritten)
        rc = err_set(e, ERR_CONFLICT, "%s.%s: %d values changed during rotation; run it again", c->table, c->column,
                     *selected);
    if (!rc) rc = db_commit(d, e);   /* db_commit rolls back itself if it fails */
    else db_rollback(d);
    if (rc) *rewritten = 0;
    return rc;
}

static int count_remaining(db *d, const char *pattern, int64_t *remaining, err *e)
{
    *remaining = 0;
    for (int i = 0; i < vault_columns_count; i++) {
        const vault_column *c = &vault_columns[i];
        int rc = column_ok(c, e);
        if (rc) return rc;
        db_stmt *s = prepare_fmt(d, e, "SELECT COUNT(*) FROM %s WHERE %s IS NOT NULL AND %s NOT LIKE ?", c->table,
                                 c->column, c->column);
        if (!s) return e ? e->code : ERR_DB;
        db_bind_text(s, 1, pattern);
        rc = db_step(d, s, e);
        if (rc == DB_ROW) *remaining += db_col_int(s, 0);
        db_finalize(s);
        if (rc < 0) return err_prefix(e, "counting %s.%s", c->table, c->column);
    }
    return 0;
}

/* `stop` is read after each batch that found work, so a call makes at
 * least one batch of progress even with *stop already set (and stopping
 * never leaves a batch half done). */
int vault_rotate(db *d, const vault *v, int batch, const volatile int *stop, vault_rotation *out, err *e)
{
    vault_rotation r = {0, 0};
    if (out) *out = r;
    if (batch < 1 || batch > BATCH_MAX)
        return err_set(e, ERR_INVALID, "rotation batch size %d is not between 1 and %d", batch, BATCH_MAX);
    /* inside a caller's transaction a batch "commit" would only release a
     * savepoint: nothing would be durable until the caller commits */
    if (db_in_tx(d)) return err_set(e, ERR_INTERNAL, "vault_rotate must run outside a transaction");
    char pattern[32];
    snprintf(pattern, sizeof pattern, PREFIX "%s:%%", vault_current_key(v));

    batch_rows rows = {malloc((size_t)batch * sizeof *rows.ids), calloc((size_t)batch, sizeof *rows.vals), 0};
    int rc = rows.ids && rows.vals ? 0 : ERR_NOMEM_RET(e);
    int stopped = 0;
    for (int i = 0; !rc && !stopped && i < vault_columns_count; i++) {
        const vault_column *c = &vault_columns[i];
        if ((rc = column_ok(c, e))) break;
        db_stmt *sel = prepare_fmt(d, e,
                                   "SELECT %s, %s FROM %s WHERE %s IS NOT NULL AND %s NOT LIKE ? ORDER BY %s LIMIT ?",
                                   c->id, c->column, c->table, c->column, c->column, c->id);
        db_stmt *upd = sel ? prepare_fmt(d, e, "UPDATE %s SET %s = ? WHERE %s = ? AND %s = ?", c->table, c->column,
                                         c->id, c->column)
                           : NULL;
        if (!upd) rc = e ? e->code : ERR_DB;
        while (!rc) {
            int selected;
            int64_t done;
            rc = rotate_batch(d, v, c, sel, upd, pattern, batch, &rows, &selected, &done, e);
            r.rewritten += done;
            if (rc || !selected) break;
            if (stop && *stop) {
                stopped = 1;
                break;
            }
            if (selected < batch) break;   /* that was the rest of this column */
        }
        db_finalize(sel);
        db_finalize(upd);
    }
    free(rows.ids);
    free(rows.vals);
    if (!rc) rc = count_remaining(d, pattern, &r.remaining, e);
    if (rc) err_prefix(e, "key rotation to %s (%lld values rewritten before this)", vault_current_key(v),
                       (long long)r.rewritten);
    if (out) *out = r;
    return rc;
}

/* ------------------------------------------------------------- counting */

typedef struct tally {
    int num;          /* 0: not a stored form */
    char id[16];
    int64_t n;
} tally;

#define TALLY_MAX 256

static int tally_cmp(const void *a, const void *b)
{
    const tally *x = a, *y = b;
    /* by key number, values that are not stored forms last */
    unsigned xn = x->num ? (unsigned)x->num : UINT_MAX, yn = y->num ? (unsigned)y->num : UINT_MAX;
    return xn < yn ? -1 : xn > yn;
}

/* Key ids come from the data, so they may include keys the key file no
 * longer has; values that are not stored forms at all are reported under
 * the id "". */
int vault_count(db *d, vault_count_cb cb, void *ud, err *e)
{
    tally *t = calloc(TALLY_MAX, sizeof *t);
    if (!t) return ERR_NOMEM_RET(e);
    int nt = 0, rc = 0;
    for (int i = 0; !rc && i < vault_columns_count; i++) {
        const vault_column *c = &vault_columns[i];
        if ((rc = column_ok(c, e))) break;
        /* the prefix is all that names the key ("enc:v1:k999999999:" is 18
         * characters): no need to read whole values */
        db_stmt *s = prepare_fmt(d, e, "SELECT substr(%s, 1, 24) FROM %s WHERE %s IS NOT NULL", c->column, c->table,
                                 c->column);
        if (!s) {
            rc = e ? e->code : ERR_DB;
            break;
        }
        int st = 0;
        while (!rc && (st = db_step(d, s, e)) == DB_ROW) {
            char id[16];
            const char *k = vault_key_of(db_col_text(s, 0), id);
            int num = k ? parse_key_id(k, strlen(k)) : 0, j;
            for (j = 0; j < nt && t[j].num != num; j++) {
            }
            if (j == nt) {
                if (nt == TALLY_MAX) {
                    rc = err_set(e, ERR_LIMIT, "more than %d different key ids in %s.%s", TALLY_MAX, c->table,
                                 c->column);
                    continue;
                }
                t[nt].num = num;
                snprintf(t[nt].id, sizeof t[nt].id, "%s", k ? k : "");
                nt++;
            }
            t[j].n++;
        }
        if (!rc && st < 0) rc = err_prefix(e, "counting %s.%s", c->table, c->column);
        db_finalize(s);
    }
    if (!rc) {
        qsort(t, (size_t)nt, sizeof *t, tally_cmp);
        for (int j = 0; j < nt; j++) cb(ud, t[j].id, t[j].n);
    }
    free(t);
    return rc;
}
