/* test_vault.c - the key file (create, open, refusals, malformed lines),
 * AES-256-GCM stored values, lookup hashes cross-checked with OpenSSL's
 * HMAC, adding keys, rotation on a migrated database (complete, stopped
 * and resumed, rolled back, killed with SIGKILL), counting and pruning. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "db.h"
#include "migrate.h"
#include "vault.h"
#include "unit_fs.h"

/* ------------------------------------------------------------ fixture */

typedef struct fixture {
    char dir[64];
    char keys[128];     /* the key file */
    char dbpath[128];
    vault *v;
    db *d;
    /* the rows put in by populate(), for checking */
    int nsecrets, nusers, nvalues;
} fixture;

/* A folder with a fresh key file, opened. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_vault_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->keys, sizeof f->keys, "%s/bandbill.keys", f->dir);
    snprintf(f->dbpath, sizeof f->dbpath, "%s/bandbill.db", f->dir);
    err e;
    err_clear(&e);
    if (vault_create_file(f->keys, &e) || vault_open(f->keys, &f->v, &e)) {
        print_error("key file: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vault_close(f->v);
    db_close(f->d);
    remove_tree(f->dir);
    free(f);
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static void write_file(const char *path, const char *text, size_t n, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(path, mode), 0);
}

/* The files in the folder, to catch a temporary file left behind. */
static int count_files(const char *dir)
{
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dh)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(dh);
    return n;
}

/* Files a replacement of the key file left behind. */
static int temp_files(const char *dir)
{
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dh)))
        if (strstr(de->d_name, ".tmp")) n++;
    closedir(dh);
    return n;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *s = calloc(1, 65536);
    assert_non_null(s);
    size_t n = fread(s, 1, 65535, fp);
    s[n] = '\0';
    fclose(fp);
    return s;
}

/* Base64 of a key line in the key file ("index", "k1", ...), decoded by the
 * test itself. */
static void key_from_file(const char *path, const char *name, uint8_t out[32])
{
    char *text = slurp(path);
    char pat[32];
    snprintf(pat, sizeof pat, "\n%s ", name);
    char *p = strstr(text, pat);
    assert_non_null(p);
    p += strlen(pat);
    unsigned char raw[48];
    assert_int_equal(EVP_DecodeBlock(raw, (const unsigned char *)p, 44), 33);   /* 32 and one pad byte */
    memcpy(out, raw, 32);
    free(text);
}

/* A stored form of s under the vault's current key (freed by the caller). */
static char *enc(vault *v, const char *aad, const char *s)
{
    buf b = {0};
    err e;
    err_clear(&e);
    int rc = vault_encrypt(v, aad, s, strlen(s), &b, &e);
    if (rc) print_error("vault_encrypt: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return buf_steal(&b);
}

static void dec_eq(vault *v, const char *aad, const char *stored, const char *want)
{
    buf b = {0};
    err e;
    err_clear(&e);
    int rc = vault_decrypt(v, aad, stored, &b, &e);
    if (rc) print_error("vault_decrypt: %s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(buf_cstr(&b), want, b.len);
    buf_free(&b);
}

static int dec_rc(vault *v, const char *aad, const char *stored, err *e)
{
    buf b = {0};
    err_clear(e);
    assert_int_equal(buf_puts(&b, "kept"), 0);
    int rc = vault_decrypt(v, aad, stored, &b, e);
    if (rc) assert_string_equal(buf_cstr(&b), "kept");   /* a failure appends nothing */
    buf_free(&b);
    return rc;
}

/* ----------------------------------------------------- create and open */

static void test_create_and_open_round_trip(void **state)
{
    fixture *f = *state;
    assert_string_equal(vault_path(f->v), f->keys);
    assert_string_equal(vault_current_key(f->v), "k1");
    assert_non_null(vault_audit_key(f->v));
    assert_int_equal(file_mode(f->keys), 0600);

    char *text = slurp(f->keys);
    assert_true(!strncmp(text, "# bandbill key file: keep it apart from the database", 52));
    assert_non_null(strstr(text, "\nindex "));
    assert_non_null(strstr(text, "\naudit "));
    assert_non_null(strstr(text, "\nk1 "));
    assert_null(strstr(text, "\nk2 "));
    free(text);

    /* the audit key is the file's */
    uint8_t audit[32];
    key_from_file(f->keys, "audit", audit);
    assert_memory_equal(vault_audit_key(f->v), audit, 32);

    /* a second vault from the same file reads what the first encrypted */
    vault *v2 = NULL;
    err e;
    err_clear(&e);
    assert_int_equal(vault_open(f->keys, &v2, &e), 0);
    char *s = enc(f->v, "secrets.value", "shared");
    dec_eq(v2, "secrets.value", s, "shared");
    free(s);
    vault_close(v2);
}

static void test_two_key_files_have_different_keys(void **state)
{
    fixture *f = *state;
    char other[192];
    snprintf(other, sizeof other, "%s/other.keys", f->dir);
    err e;
    err_clear(&e);
    assert_int_equal(vault_create_file(other, &e), 0);
    uint8_t a[32], b[32];
    static const char *const names[] = {"index", "audit", "k1"};
    for (int i = 0; i < 3; i++) {
        key_from_file(f->keys, names[i], a);
        key_from_file(other, names[i], b);
        assert_memory_not_equal(a, b, 32);
    }
    /* and the three keys of one file differ from each other */
    uint8_t k[3][32];
    for (int i = 0; i < 3; i++) key_from_file(f->keys, names[i], k[i]);
    assert_memory_not_equal(k[0], k[1], 32);
    assert_memory_not_equal(k[1], k[2], 32);
}

static void test_create_refuses_existing_file(void **state)
{
    fixture *f = *state;
    char *before = slurp(f->keys);
    err e;
    err_clear(&e);
    assert_int_equal(vault_create_file(f->keys, &e), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, f->keys));
    char *after = slurp(f->keys);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_create_is_0600_whatever_the_umask(void **state)
{
    fixture *f = *state;
    char p[192];
    err e;
    err_clear(&e);
    mode_t old = umask(0);
    snprintf(p, sizeof p, "%s/open.keys", f->dir);
    int rc1 = vault_create_file(p, &e);
    umask(0277);   /* would create it 0400 */
    snprintf(p, sizeof p, "%s/tight.keys", f->dir);
    int rc2 = vault_create_file(p, &e);
    umask(old);
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, 0);
    snprintf(p, sizeof p, "%s/open.keys", f->dir);
    assert_int_equal(file_mode(p), 0600);
    snprintf(p, sizeof p, "%s/tight.keys", f->dir);
    assert_int_equal(file_mode(p), 0600);
}

static void test_create_in_missing_folder_fails(void **state)
{
    fixture *f = *state;
    char p[192];
    snprintf(p, sizeof p, "%s/nope/keys", f->dir);
    err e;
    err_clear(&e);
    assert_int_equal(vault_create_file(p, &e), ERR_IO);
    assert_non_null(strstr(e.msg, p));
}

static void open_refused_for_mode(fixture *f, mode_t mode)
{
    assert_int_equal(chmod(f->keys, mode), 0);
    vault *v = (vault *)1;
    err e;
    err_clear(&e);
    assert_int_equal(vault_open(f->keys, &v, &e), ERR_FORBIDDEN);
    assert_null(v);
    char want[16], fix[192];
    snprintf(want, sizeof want, "%04o", (unsigned)mode);
    snprintf(fix, sizeof fix, "chmod 600 %s", f->keys);
    assert_non_null(strstr(e.msg, f->keys));
    assert_non_null(strstr(e.msg, want));
    assert_non_null(strstr(e.msg, fix));
}

static void test_open_refuses_group_or_other_access(void **state)
{
    fixture *f = *state;
    open_refused_for_mode(f, 0644);
    open_refused_for_mode(f, 0640);
    open_refused_for_mode(f, 0604);
    open_refused_for_mode(f, 0620);
    open_refused_for_mode(f, 0601);
    /* owner-only modes are fine */
    static const mode_t ok[] = {0600, 0400, 0700};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        assert_int_equal(chmod(f->keys, ok[i]), 0);
        vault *v = NULL;
        err e;
        err_clear(&e);
        assert_int_equal(vault_open(f->keys, &v, &e), 0);
        vault_close(v);
    }
}

static void test_open_refuses_symlink_folder_and_missing(void **state)
{
    fixture *f = *state;
    char link[192];
    snprintf(link, sizeof link, "%s/link.keys", f->dir);
    assert_int_equal(symlink(f->keys, link), 0);
    vault *v = (vault *)1;
    err e;
    err_clear(&e);
    assert_int_equal(vault_open(link, &v, &e), ERR_FORBIDDEN);
    assert_null(v);
    assert_non_null(strstr(e.msg, link));
    assert_non_null(strstr(e.msg, "symbolic link"));

    err_clear(&e);
    assert_int_equal(vault_open(f->dir, &v, &e), ERR_FORBIDDEN);
    assert_non_null(strstr(e.msg, "not a regular file"));

    char missing[192];
    snprintf(missing, sizeof missing, "%s/missing.keys", f->dir);
    err_clear(&e);
    assert_int_equal(vault_open(missing, &v, &e), ERR_NOTFOUND);
    assert_non_null(strstr(e.msg, missing));
}

/* --------------------------------------------------- malformed key files */

#define KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="   /* bytes 0..31 */
#define KEY_B "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="   /* bytes 32..63 */

typedef struct bad_file {
    const char *text;
    int code;
    const char *where;   /* ":5:" or NULL (no line: something missing) */
    const char *says;
} bad_file;

static void test_malformed_key_files_name_file_and_line(void **state)
{
    fixture *f = *state;
    static const bad_file cases[] = {
        {"# c\n\nindex " KEY_A "\naudit " KEY_B "\nk1 @@@@" KEY_A "\n", ERR_INVALID, ":5:", "not valid base64"},
        {"# c\n\nindex " KEY_A "\naudit " KEY_B "\nk1 AAECAwQFBgcICQoLDA0ODw==\n", ERR_INVALID, ":5:", "16 bytes"},
        {"# c\n\nindex " KEY_A "\naudit " KEY_B "\nk1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\n", ERR_INVALID,
         ":5:", "33 bytes"},
        {"# c\n\nindex " KEY_A "\naudit " KEY_B "\nkey1 " KEY_A "\n", ERR_INVALID, ":5:", "unknown entry 'key1'"},
        {"# c\n\nindex " KEY_A "\naudit " KEY_B "\nk2 " KEY_A "\nk1 " KEY_B "\n", ERR_INVALID, ":6:",
         "increasing"},
        {"index " KEY_A "\naudit " KEY_B "\nk1 " KEY_A "\nk1 " KEY_B "\n", ERR_INVALID, ":4:", "increasing"},
        {"index " KEY_A "\nindex " KEY_B "\n", ERR_INVALID, ":2:", "second index"},
        {"index " KEY_A "\naudit " KEY_B "\nk0 " KEY_A "\n", ERR_INVALID, ":3:", "unknown entry 'k0'"},
        {"index " KEY_A "\naudit " KEY_B "\nk01 " KEY_A "\n", ERR_INVALID, ":3:", "unknown entry 'k01'"},
        {"index " KEY_A "\naudit " KEY_B "\nk1\n", ERR_INVALID, ":3:", "has no key"},
        {"index " KEY_A "\naudit " KEY_B "\nk1 " KEY_A " # mine\n", ERR_INVALID, ":3:", "unexpected text"},
        /* the last character's unused bits set: not canonical base64 */
        {"index " KEY_A "\naudit " KEY_B "\nk1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\n", ERR_INVALID, ":3:",
         "not valid base64"},
        {"index " KEY_A "\naudit " KEY_B "\nk1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n", ERR_INVALID, ":3:",
         "not valid base64"},   /* padding missing */
        {"index " KEY_A "\nk1 " KEY_B "\n", ERR_INVALID, NULL, "no audit key"},
        {"audit " KEY_A "\nk1 " KEY_B "\n", ERR_INVALID, NULL, "no index key"},
        {"# only\nindex " KEY_A "\naudit " KEY_B "\n", ERR_INVALID, NULL, "no data key"},
        {"", ERR_INVALID, NULL, "no index key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_file(f->keys, cases[i].text, strlen(cases[i].text), 0600);
        vault *v = (vault *)1;
        err e;
        err_clear(&e);
        int rc = vault_open(f->keys, &v, &e);
        if (rc != cases[i].code || !strstr(e.msg, cases[i].says))
            print_error("case %zu: rc %d, %s\n", i, rc, e.msg);
        assert_int_equal(rc, cases[i].code);
        assert_null(v);
        assert_non_null(strstr(e.msg, cases[i].says));
        char where[192];
        if (cases[i].where) snprintf(where, sizeof where, "%s%s", f->keys, cases[i].where);
        else snprintf(where, sizeof where, "%s: ", f->keys);
        assert_non_null(strstr(e.msg, where));
    }

    /* a NUL byte */
    static const char nul[] = "index " KEY_A "\naudit " KEY_B "\nk1 \0" KEY_A "\n";
    write_file(f->keys, nul, sizeof nul - 1, 0600);
    vault *v = NULL;
    err e;
    err_clear(&e);
    assert_int_equal(vault_open(f->keys, &v, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, ":3:"));
}

static void test_key_file_layout_is_tolerant(void **state)
{
    fixture *f = *state;
    /* CRLF, indentation, tabs, trailing blanks, comments anywhere, numbers
     * with gaps (what pruning leaves) */
    static const char text[] = "  # hand edited\r\n\r\n\tindex  " KEY_A "  \r\naudit\t" KEY_B "\r\n"
                               "   # old keys were pruned\nk2 " KEY_B "\nk17 " KEY_A "\n";
    write_file(f->keys, text, sizeof text - 1, 0600);
    vault *v = NULL;
    err e;
    err_clear(&e);
    int rc = vault_open(f->keys, &v, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(vault_current_key(v), "k17");
    uint8_t want[32];
    for (int i = 0; i < 32; i++) want[i] = (uint8_t)(32 + i);
    assert_memory_equal(vault_audit_key(v), want, 32);
    char *s = enc(v, "secrets.value", "x");
    assert_true(!strncmp(s, "enc:v1:k17:", 11));
    free(s);
    vault_close(v);
}

/* ----------------------------------------------------------- values */

static void test_encrypt_decrypt_round_trip(void **state)
{
    fixture *f = *state;
    static const char *const values[] = {"", "a", "13800138000", "secret with spaces and \"quotes\"",
                                         "张三 北京市海淀区中关村大街1号 电话：13800138000"};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        char *s = enc(f->v, "staff_users.email", values[i]);
        assert_true(!strncmp(s, "enc:v1:k1:", 10));
        char id[16];
        assert_string_equal(vault_key_of(s, id), "k1");
        dec_eq(f->v, "staff_users.email", s, values[i]);
        free(s);
    }

    /* 64 KiB of every byte value, NULs included */
    size_t n = 65536;
    uint8_t *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++) big[i] = (uint8_t)(i * 7 + (i >> 8));
    buf s = {0}, p = {0};
    err e;
    err_clear(&e);
    assert_int_equal(vault_encrypt(f->v, "secrets.value", big, n, &s, &e), 0);
    assert_int_equal(s.len, strlen("enc:v1:k1:") + (12 + n + 16 + 2) / 3 * 4);
    assert_int_equal(strlen(buf_cstr(&s)), s.len);   /* text: no NUL inside */
    assert_int_equal(vault_decrypt(f->v, "secrets.value", buf_cstr(&s), &p, &e), 0);
    assert_int_equal(p.len, n);
    assert_memory_equal(p.data, big, n);
    free(big);
    buf_free(&s);
    buf_free(&p);
}

static void test_encrypt_and_decrypt_append(void **state)
{
    fixture *f = *state;
    buf b = {0};
    err e;
    err_clear(&e);
    assert_int_equal(buf_puts(&b, "before|"), 0);
    assert_int_equal(vault_encrypt(f->v, "secrets.value", "v", 1, &b, &e), 0);
    assert_true(!strncmp(buf_cstr(&b), "before|enc:v1:k1:", 17));
    buf p = {0};
    assert_int_equal(buf_puts(&p, "plain:"), 0);
    assert_int_equal(vault_decrypt(f->v, "secrets.value", buf_cstr(&b) + 7, &p, &e), 0);
    assert_string_equal(buf_cstr(&p), "plain:v");
    buf_free(&b);
    buf_free(&p);
}

static void test_same_value_encrypts_differently(void **state)
{
    fixture *f = *state;
    char *a = enc(f->v, "secrets.value", "13800138000");
    char *b = enc(f->v, "secrets.value", "13800138000");
    assert_string_not_equal(a, b);
    /* the nonces themselves (the first 16 base64 characters cover 12 bytes) */
    assert_memory_not_equal(a + 10, b + 10, 16);
    dec_eq(f->v, "secrets.value", a, "13800138000");
    dec_eq(f->v, "secrets.value", b, "13800138000");
    free(a);
    free(b);
}

static void test_wrong_place_fails(void **state)
{
    fixture *f = *state;
    char *s = enc(f->v, "staff_users.email", "a@example.net");
    err e;
    assert_int_equal(dec_rc(f->v, "staff_users.phone", s, &e), ERR_FORBIDDEN);
    assert_non_null(strstr(e.msg, "staff_users.phone"));
    assert_int_equal(dec_rc(f->v, "staff_users.emai", s, &e), ERR_FORBIDDEN);
    assert_int_equal(dec_rc(f->v, "staff_users.email ", s, &e), ERR_FORBIDDEN);
    dec_eq(f->v, "staff_users.email", s, "a@example.net");
    free(s);
}

static char other_b64(char c) { return c == 'A' ? 'B' : 'A'; }

static void test_any_changed_character_fails(void **state)
{
    fixture *f = *state;
    char *s = enc(f->v, "secrets.value", "top secret");   /* 12+10+16 = 38 bytes, 52 chars, one '=' */
    size_t n = strlen(s);
    err e;
    /* one changed byte in the middle of the payload: authentication */
    s[20] = other_b64(s[20]);
    assert_int_equal(dec_rc(f->v, "secrets.value", s, &e), ERR_FORBIDDEN);
    free(s);

    /* every position: nonce, ciphertext, tag and the last character whose
     * low bits are padding all count */
    s = enc(f->v, "secrets.value", "top secret");
    char *copy = strdup(s);
    assert_non_null(copy);
    for (size_t i = 10; i < n; i++) {
        if (s[i] == '=') continue;
        copy[i] = other_b64(s[i]);
        int rc = dec_rc(f->v, "secrets.value", copy, &e);
        if (rc != ERR_FORBIDDEN && rc != ERR_INVALID) print_error("position %zu: rc %d\n", i, rc);
        assert_true(rc == ERR_FORBIDDEN || rc == ERR_INVALID);
        copy[i] = s[i];
    }
    dec_eq(f->v, "secrets.value", copy, "top secret");

    /* shortened by one block, lengthened by one block */
    copy[n - 4] = '\0';
    assert_int_not_equal(dec_rc(f->v, "secrets.value", copy, &e), 0);
    char *longer = malloc(n + 5);
    assert_non_null(longer);
    snprintf(longer, n + 5, "%sAAAA", s);
    assert_int_equal(dec_rc(f->v, "secrets.value", longer, &e), ERR_INVALID);   /* '=' inside */
    free(longer);
    free(copy);
    free(s);
}

static void test_unknown_key_is_not_found(void **state)
{
    fixture *f = *state;
    char *s = enc(f->v, "secrets.value", "x");
    size_t n = strlen(s);
    char *other = malloc(n + 2);
    assert_non_null(other);
    snprintf(other, n + 2, "enc:v1:k9:%s", s + 10);
    err e;
    assert_int_equal(dec_rc(f->v, "secrets.value", other, &e), ERR_NOTFOUND);
    assert_non_null(strstr(e.msg, "k9"));
    assert_non_null(strstr(e.msg, f->keys));
    snprintf(other, n + 2, "enc:v1:k10:%s", s + 10);
    assert_int_equal(dec_rc(f->v, "secrets.value", other, &e), ERR_NOTFOUND);
    free(other);
    free(s);
}

static void test_malformed_stored_forms(void **state)
{
    fixture *f = *state;
    char *good = enc(f->v, "secrets.value", "x");
    const char *payload = good + 10;
    char buf1[256];
    static const char *const fixed[] = {
        "", "13800138000", "enc:", "enc:v1:", "enc:v1:k1", "enc:v1:k1:", "enc:v2:k1:AAAA", "ENC:v1:k1:AAAA",
        "enc:v1:x1:AAAA", "enc:v1:k0:AAAA", "enc:v1:k01:AAAA", "enc:v1::AAAA", "enc:v1:k1:AAAA",
        "enc:v1:k1:!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "enc:v1:k12345678901:AAAA",
    };
    err e;
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        int rc = dec_rc(f->v, "secrets.value", fixed[i], &e);
        if (rc != ERR_INVALID) print_error("\"%s\": rc %d\n", fixed[i], rc);
        assert_int_equal(rc, ERR_INVALID);
        assert_non_null(strstr(e.msg, "secrets.value"));
    }
    /* the good payload with whitespace, a missing character, a trailing
     * newline or without its padding */
    snprintf(buf1, sizeof buf1, "enc:v1:k1: %s", payload);
    assert_int_equal(dec_rc(f->v, "secrets.value", buf1, &e), ERR_INVALID);
    snprintf(buf1, sizeof buf1, "enc:v1:k1:%s\n", payload);
    assert_int_equal(dec_rc(f->v, "secrets.value", buf1, &e), ERR_INVALID);
    snprintf(buf1, sizeof buf1, "enc:v1:k1:%s", payload + 1);
    assert_int_equal(dec_rc(f->v, "secrets.value", buf1, &e), ERR_INVALID);
    snprintf(buf1, sizeof buf1, "enc:v1:k1:%.*s", (int)strlen(payload) - 1, payload);
    assert_int_equal(dec_rc(f->v, "secrets.value", buf1, &e), ERR_INVALID);
    free(good);

    char id[16];
    assert_null(vault_key_of(NULL, id));
    assert_null(vault_key_of("", id));
    assert_null(vault_key_of("enc:v1:k1", id));
    assert_null(vault_key_of("enc:v1:kx:AAAA", id));
    assert_null(vault_key_of("enc:v1:k1234567890:AAAA", id));
    assert_string_equal(vault_key_of("enc:v1:k123456789:", id), "k123456789");
    assert_string_equal(vault_key_of("enc:v1:k2:AAAA", id), "k2");
    assert_ptr_equal(vault_key_of("enc:v1:k2:AAAA", id), id);
}

static void test_encrypt_limits(void **state)
{
    fixture *f = *state;
    buf b = {0};
    err e;
    err_clear(&e);
    assert_int_equal(vault_encrypt(f->v, "secrets.value", "x", 16u * 1024 * 1024 + 1, &b, &e), ERR_LIMIT);
    assert_non_null(strstr(e.msg, "secrets.value"));
    assert_int_equal(b.len, 0);
}

/* ---------------------------------------------------------- lookups */

static void hmac_hex(const uint8_t key[32], const char *kind, const char *value, char out[65])
{
    size_t kl = strlen(kind), vl = strlen(value);
    unsigned char *msg = malloc(kl + 1 + vl + 1);
    assert_non_null(msg);
    memcpy(msg, kind, kl + 1);
    memcpy(msg + kl + 1, value, vl);
    unsigned char md[32];
    unsigned mdl = 0;
    assert_non_null(HMAC(EVP_sha256(), key, 32, msg, kl + 1 + vl, md, &mdl));
    assert_int_equal(mdl, 32);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    free(msg);
}

static void test_index_is_a_keyed_hmac(void **state)
{
    fixture *f = *state;
    char a[VAULT_INDEX_HEX], b[VAULT_INDEX_HEX], want[65];
    vault_index(f->v, "phone", "13800138000", a);
    vault_index(f->v, "phone", "13800138000", b);
    assert_int_equal(strlen(a), 64);
    assert_string_equal(a, b);
    for (int i = 0; i < 64; i++) assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));

    vault_index(f->v, "idcard", "13800138000", b);
    assert_string_not_equal(a, b);
    vault_index(f->v, "phone", "13800138001", b);
    assert_string_not_equal(a, b);
    /* the NUL keeps kind and value apart */
    vault_index(f->v, "ab", "c", a);
    vault_index(f->v, "a", "bc", b);
    assert_string_not_equal(a, b);

    uint8_t key[32];
    key_from_file(f->keys, "index", key);
    static const char *const kv[][2] = {{"phone", "13800138000"}, {"idcard", "11010519491231002X"}, {"phone", ""},
                                        {"email", "张三@例子.中国"}};
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) {
        vault_index(f->v, kv[i][0], kv[i][1], a);
        hmac_hex(key, kv[i][0], kv[i][1], want);
        assert_string_equal(a, want);
    }

    /* the same in another key file is something else */
    char other[192];
    snprintf(other, sizeof other, "%s/other.keys", f->dir);
    vault *v2 = NULL;
    err e;
    err_clear(&e);
    assert_int_equal(vault_create_file(other, &e), 0);
    assert_int_equal(vault_open(other, &v2, &e), 0);
    vault_index(f->v, "phone", "13800138000", a);
    vault_index(v2, "phone", "13800138000", b);
    assert_string_not_equal(a, b);
    vault_close(v2);
}

static void test_index_survives_add_key(void **state)
{
    fixture *f = *state;
    char a[VAULT_INDEX_HEX], b[VAULT_INDEX_HEX];
    vault_index(f->v, "phone", "13800138000", a);
    err e;
    err_clear(&e);
    char id[16];
    assert_int_equal(vault_add_key(f->v, id, &e), 0);
    vault_index(f->v, "phone", "13800138000", b);
    assert_string_equal(a, b);
}

/* --------------------------------------------------------- add a key */

static void test_add_key_makes_it_current(void **state)
{
    fixture *f = *state;
    char *old = enc(f->v, "secrets.value", "under k1");
    uint8_t audit[32];
    memcpy(audit, vault_audit_key(f->v), 32);

    char id[16] = "";
    err e;
    err_clear(&e);
    assert_int_equal(vault_add_key(f->v, id, &e), 0);
    assert_string_equal(id, "k2");
    assert_string_equal(vault_current_key(f->v), "k2");
    assert_memory_equal(vault_audit_key(f->v), audit, 32);
    assert_int_equal(file_mode(f->keys), 0600);
    assert_int_equal(count_files(f->dir), 1);   /* no temporary file left */
    assert_int_equal(temp_files(f->dir), 0);

    char *fresh = enc(f->v, "secrets.value", "under k2");
    assert_true(!strncmp(fresh, "enc:v1:k2:", 10));
    dec_eq(f->v, "secrets.value", old, "under k1");
    dec_eq(f->v, "secrets.value", fresh, "under k2");

    /* the file has it: a fresh open agrees */
    vault *v2 = NULL;
    assert_int_equal(vault_open(f->keys, &v2, &e), 0);
    assert_string_equal(vault_current_key(v2), "k2");
    dec_eq(v2, "secrets.value", old, "under k1");
    dec_eq(v2, "secrets.value", fresh, "under k2");
    vault_close(v2);

    /* the comments stay */
    char *text = slurp(f->keys);
    assert_true(!strncmp(text, "# bandbill key file", 19));
    assert_non_null(strstr(text, "\nk1 "));
    assert_non_null(strstr(text, "\nk2 "));
    free(text);

    assert_int_equal(vault_add_key(f->v, NULL, &e), 0);
    assert_string_equal(vault_current_key(f->v), "k3");
    free(old);
    free(fresh);
}

static void test_add_key_refuses_a_changed_file(void **state)
{
    fixture *f = *state;
    vault *v2 = NULL;
    err e;
    err_clear(&e);
    assert_int_equal(vault_open(f->keys, &v2, &e), 0);
    char id[16];
    assert_int_equal(vault_add_key(v2, id, &e), 0);
    char *k2 = enc(v2, "secrets.value", "under k2");

    /* f->v has not seen k2: writing its view would lose it */
    err_clear(&e);
    assert_int_equal(vault_add_key(f->v, id, &e), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, f->keys));
    assert_string_equal(vault_current_key(f->v), "k1");

    vault *v3 = NULL;
    assert_int_equal(vault_open(f->keys, &v3, &e), 0);
    assert_string_equal(vault_current_key(v3), "k2");
    dec_eq(v3, "secrets.value", k2, "under k2");
    vault_close(v3);
    vault_close(v2);
    free(k2);
}

static void test_add_key_keeps_hand_edits(void **state)
{
    fixture *f = *state;
    /* a file without a final newline */
    static const char text[] = "index " KEY_A "\naudit " KEY_B "\n# mine\nk4 " KEY_A;
    write_file(f->keys, text, sizeof text - 1, 0600);
    vault *v = NULL;
    err e;
    err_clear(&e);
    assert_int_equal(vault_open(f->keys, &v, &e), 0);
    char id[16];
    assert_int_equal(vault_add_key(v, id, &e), 0);
    assert_string_equal(id, "k5");
    char *now = slurp(f->keys);
    assert_true(!strncmp(now, text, sizeof text - 1));
    assert_true(!strncmp(now + sizeof text - 1, "\nk5 ", 4));
    free(now);
    vault_close(v);
    assert_int_equal(vault_open(f->keys, &v, &e), 0);
    assert_string_equal(vault_current_key(v), "k5");
    vault_close(v);
}

/* --------------------------------------------------- a real database */

static char *secret_value(int i, char *out, size_t n)
{
    snprintf(out, n, "secret %d 密钥 ✓", i);
    return out;
}
static char *email_value(int i, char *out, size_t n)
{
    snprintf(out, n, "u%02d@example.net", i);
    return out;
}
/* every third user has no phone (NULL stays NULL) */
static char *phone_value(int i, char *out, size_t n)
{
    if (i % 3 == 0) return NULL;
    snprintf(out, n, "+86 138 0000 %04d", i);
    return out;
}

/* Migrates a new database and fills secrets and staff_users with values
 * encrypted under the current key: 60 + 24 emails + 16 phones = 100. */
static void populate(fixture *f)
{
    err e;
    err_clear(&e);
    int rc = db_open(f->dbpath, DB_OPEN_CREATE, &f->d, &e);
    if (!rc) rc = migrate_apply(f->d, NULL, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    char now[25], name[32], val[96];
    db_now(now);
    assert_int_equal(db_begin(f->d, &e), 0);
    f->nsecrets = 60;
    for (int i = 0; i < f->nsecrets; i++) {
        snprintf(name, sizeof name, "s%02d", i);
        char *s = enc(f->v, "secrets.value", secret_value(i, val, sizeof val));
        rc = db_run(f->d, &e, "INSERT INTO secrets (name, value_enc, updated_at, updated_by) VALUES (?, ?, ?, ?)",
                    "ssss", name, s, now, "test");
        if (rc) print_error("%s\n", e.msg);
        assert_int_equal(rc, 0);
        free(s);
    }
    f->nusers = 24;
    f->nvalues = f->nsecrets;
    for (int i = 0; i < f->nusers; i++) {
        snprintf(name, sizeof name, "u%02d", i);
        char *em = enc(f->v, "staff_users.email", email_value(i, val, sizeof val));
        char *ph = phone_value(i, val, sizeof val) ? enc(f->v, "staff_users.phone", val) : NULL;
        f->nvalues += 1 + (ph != NULL);
        rc = db_run(f->d, &e,
                    "INSERT INTO staff_users (username, display_name, role, password_hash, email_enc, phone_enc,"
                    " password_changed_at, created_at, created_by) VALUES (?, ?, 'admin', 'x', ?, ?, ?, ?, 'test')",
                    "ssssss", name, name, em, ph, now, now);
        if (rc) print_error("%s\n", e.msg);
        assert_int_equal(rc, 0);
        free(em);
        free(ph);
    }
    assert_int_equal(db_commit(f->d, &e), 0);
    assert_int_equal(f->nvalues, 100);
}

typedef struct key_counts {
    int n[8];     /* by key number */
    int other;
} key_counts;

static void tally(key_counts *kc, const char *stored)
{
    char id[16];
    if (vault_key_of(stored, id) && atoi(id + 1) < 8) kc->n[atoi(id + 1)]++;
    else kc->other++;
}

/* Every value decrypts to what populate() put in; counts the keys. */
static key_counts check_all(fixture *f, vault *v)
{
    key_counts kc;
    memset(&kc, 0, sizeof kc);
    err e;
    err_clear(&e);
    char want[96];
    db_stmt *s = db_prepare(f->d, "SELECT name, value_enc FROM secrets ORDER BY id", &e);
    assert_non_null(s);
    int i = 0;
    while (db_step(f->d, s, &e) == DB_ROW) {
        dec_eq(v, "secrets.value", db_col_text(s, 1), secret_value(atoi(db_col_text(s, 0) + 1), want, sizeof want));
        tally(&kc, db_col_text(s, 1));
        i++;
    }
    assert_int_equal(i, f->nsecrets);
    s = db_prepare(f->d, "SELECT username, email_enc, phone_enc FROM staff_users ORDER BY id", &e);
    assert_non_null(s);
    i = 0;
    while (db_step(f->d, s, &e) == DB_ROW) {
        int u = atoi(db_col_text(s, 0) + 1);
        dec_eq(v, "staff_users.email", db_col_text(s, 1), email_value(u, want, sizeof want));
        tally(&kc, db_col_text(s, 1));
        if (phone_value(u, want, sizeof want)) {
            dec_eq(v, "staff_users.phone", db_col_text(s, 2), want);
            tally(&kc, db_col_text(s, 2));
        } else {
            assert_true(db_col_is_null(s, 2));
        }
        i++;
    }
    assert_int_equal(i, f->nusers);
    return kc;
}

static void rotate_ok(fixture *f, int batch, const volatile int *stop, vault_rotation *r)
{
    err e;
    err_clear(&e);
    int rc = vault_rotate(f->d, f->v, batch, stop, r, &e);
    if (rc) print_error("vault_rotate: %s\n", e.msg);
    assert_int_equal(rc, 0);
}

static void add_key_ok(vault *v, const char *want)
{
    char id[16];
    err e;
    err_clear(&e);
    int rc = vault_add_key(v, id, &e);
    if (rc) print_error("vault_add_key: %s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(id, want);
}

static void test_rotation_rewrites_everything(void **state)
{
    fixture *f = *state;
    populate(f);
    key_counts kc = check_all(f, f->v);
    assert_int_equal(kc.n[1], 100);
    add_key_ok(f->v, "k2");

    vault_rotation r = {-1, -1};
    rotate_ok(f, 7, NULL, &r);
    assert_int_equal(r.rewritten, 100);
    assert_int_equal(r.remaining, 0);
    kc = check_all(f, f->v);
    assert_int_equal(kc.n[2], 100);
    assert_int_equal(kc.n[1], 0);
    assert_int_equal(kc.other, 0);

    /* and a second run has nothing to do */
    rotate_ok(f, 7, NULL, &r);
    assert_int_equal(r.rewritten, 0);
    assert_int_equal(r.remaining, 0);

    /* a fresh open of the key file reads them all */
    vault *v2 = NULL;
    err e;
    err_clear(&e);
    assert_int_equal(vault_open(f->keys, &v2, &e), 0);
    check_all(f, v2);
    vault_close(v2);
}

static void test_rotation_stops_and_resumes(void **state)
{
    fixture *f = *state;
    populate(f);
    add_key_ok(f->v, "k2");

    /* stop is read after each batch: set before the call, one batch */
    volatile int stop = 1;
    vault_rotation r;
    rotate_ok(f, 10, &stop, &r);
    assert_int_equal(r.rewritten, 10);
    assert_int_equal(r.remaining, 90);
    key_counts kc = check_all(f, f->v);
    assert_int_equal(kc.n[1], 90);
    assert_int_equal(kc.n[2], 10);

    rotate_ok(f, 10, &stop, &r);
    assert_int_equal(r.rewritten, 10);
    assert_int_equal(r.remaining, 80);

    /* a batch that ends a column counts as one too */
    rotate_ok(f, 45, &stop, &r);
    assert_int_equal(r.rewritten, 40);
    assert_int_equal(r.remaining, 40);
    kc = check_all(f, f->v);
    assert_int_equal(kc.n[1], 40);
    assert_int_equal(kc.n[2], 60);

    stop = 0;
    rotate_ok(f, 10, &stop, &r);
    assert_int_equal(r.rewritten, 40);
    assert_int_equal(r.remaining, 0);
    kc = check_all(f, f->v);
    assert_int_equal(kc.n[2], 100);
}

static void test_rotation_resumes_after_a_new_key(void **state)
{
    fixture *f = *state;
    populate(f);
    add_key_ok(f->v, "k2");
    volatile int stop = 1;
    vault_rotation r;
    rotate_ok(f, 30, &stop, &r);
    assert_int_equal(r.remaining, 70);
    /* a newer key before the first rotation finished: k1 and k2 values
     * both move to k3 */
    add_key_ok(f->v, "k3");
    rotate_ok(f, 30, NULL, &r);
    assert_int_equal(r.rewritten, 100);
    assert_int_equal(r.remaining, 0);
    key_counts kc = check_all(f, f->v);
    assert_int_equal(kc.n[3], 100);
}

/* What a kill in the middle of a batch leaves: the batch's transaction
 * never commits. */
static void test_rotation_after_a_rolled_back_batch(void **state)
{
    fixture *f = *state;
    populate(f);
    add_key_ok(f->v, "k2");
    err e;
    err_clear(&e);
    assert_int_equal(db_begin(f->d, &e), 0);
    char want[96];
    for (int i = 0; i < 5; i++) {
        char *s = enc(f->v, "secrets.value", secret_value(i, want, sizeof want));
        char name[16];
        snprintf(name, sizeof name, "s%02d", i);
        assert_int_equal(db_run(f->d, &e, "UPDATE secrets SET value_enc = ? WHERE name = ?", "ss", s, name), 0);
        free(s);
    }
    /* half-written garbage too, as if killed between two statements */
    assert_int_equal(db_run(f->d, &e, "UPDATE secrets SET value_enc = 'enc:v1:k2:' WHERE name = 's10'", NULL), 0);
    db_rollback(f->d);

    key_counts kc = check_all(f, f->v);
    assert_int_equal(kc.n[1], 100);
    vault_rotation r;
    rotate_ok(f, 7, NULL, &r);
    assert_int_equal(r.rewritten, 100);
    assert_int_equal(r.remaining, 0);
    kc = check_all(f, f->v);
    assert_int_equal(kc.n[2], 100);
}

/* The real thing: a child process rotates one row per transaction and is
 * killed with SIGKILL at some point; everything must still decrypt and a
 * later run must finish. */
static void test_rotation_survives_sigkill(void **state)
{
    fixture *f = *state;
    populate(f);
    add_key_ok(f->v, "k2");
    db_close(f->d);   /* no SQLite connection may cross a fork */
    f->d = NULL;

    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    /* each round's child continues where the killed one stopped */
    for (int round = 0; round < 3; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            db *d = NULL;
            vault *v = NULL;
            err e;
            if (db_open(f->dbpath, 0, &d, &e) || vault_open(f->keys, &v, &e)) _exit(2);
            volatile int stop = 1;
            int told = 0;
            for (;;) {
                vault_rotation r;
                if (vault_rotate(d, v, 1, &stop, &r, &e)) _exit(3);
                if (!told) {
                    told = 1;
                    if (write(fds[1], "x", 1) != 1) _exit(4);
                }
                if (!r.remaining) _exit(0);
            }
        }
        close(fds[1]);
        char c;
        assert_int_equal(read(fds[0], &c, 1), 1);   /* one batch committed */
        close(fds[0]);
        usleep((useconds_t)(rand() % 3000));
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));

        err e;
        err_clear(&e);
        assert_int_equal(db_open(f->dbpath, 0, &f->d, &e), 0);
        key_counts kc = check_all(f, f->v);
        assert_int_equal(kc.n[1] + kc.n[2], 100);
        assert_true(kc.n[2] >= 1);
        db_close(f->d);
        f->d = NULL;
    }
    err e;
    err_clear(&e);
    assert_int_equal(db_open(f->dbpath, 0, &f->d, &e), 0);
    vault_rotation r;
    rotate_ok(f, 7, NULL, &r);
    assert_int_equal(r.remaining, 0);
    key_counts kc = check_all(f, f->v);
    assert_int_equal(kc.n[2], 100);
}

static void test_rotation_stops_on_a_value_it_cannot_read(void **state)
{
    fixture *f = *state;
    populate(f);
    add_key_ok(f->v, "k2");
    err e;
    err_clear(&e);
    char now[25];
    db_now(now);
    assert_int_equal(db_run(f->d, &e,
                            "INSERT INTO secrets (name, value_enc, updated_at, updated_by) VALUES ('plain', ?, ?, 't')",
                            "ss", "not encrypted", now),
                     0);
    int64_t id = db_last_id(f->d);
    vault_rotation r;
    err_clear(&e);
    assert_int_equal(vault_rotate(f->d, f->v, 7, NULL, &r, &e), ERR_INVALID);
    char want[64];
    snprintf(want, sizeof want, "secrets.value_enc, id %lld", (long long)id);
    assert_non_null(strstr(e.msg, want));
    /* the batches before it were committed, the one with it was not */
    assert_int_equal(r.rewritten, 56);

    /* a value under a key the file lacks: not found, and named */
    assert_int_equal(db_run(f->d, &e, "UPDATE secrets SET value_enc = ? WHERE name = 'plain'", "s",
                            "enc:v1:k7:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                     0);
    err_clear(&e);
    assert_int_equal(vault_rotate(f->d, f->v, 7, NULL, &r, &e), ERR_NOTFOUND);
    assert_non_null(strstr(e.msg, "k7"));
    assert_non_null(strstr(e.msg, want));

    assert_int_equal(db_run(f->d, &e, "DELETE FROM secrets WHERE name = 'plain'", NULL), 0);
    rotate_ok(f, 7, NULL, &r);
    assert_int_equal(r.remaining, 0);
    check_all(f, f->v);
}

static void test_rotation_arguments(void **state)
{
    fixture *f = *state;
    populate(f);
    vault_rotation r;
    err e;
    err_clear(&e);
    assert_int_equal(vault_rotate(f->d, f->v, 0, NULL, &r, &e), ERR_INVALID);
    assert_int_equal(vault_rotate(f->d, f->v, -3, NULL, &r, &e), ERR_INVALID);
    assert_int_equal(vault_rotate(f->d, f->v, 1000000, NULL, &r, &e), ERR_INVALID);
    /* each batch must commit on its own */
    assert_int_equal(db_begin(f->d, &e), 0);
    assert_int_not_equal(vault_rotate(f->d, f->v, 10, NULL, &r, &e), 0);
    db_rollback(f->d);
    /* nothing to do, out may be NULL */
    err_clear(&e);
    assert_int_equal(vault_rotate(f->d, f->v, 10, NULL, NULL, &e), 0);
}

/* ------------------------------------------------------------ counting */

typedef struct counted {
    char ids[8][16];
    int64_t n[8];
    int len;
} counted;

static void count_cb(void *ud, const char *key_id, int64_t values)
{
    counted *c = ud;
    assert_true(c->len < 8);
    snprintf(c->ids[c->len], sizeof c->ids[0], "%s", key_id);
    c->n[c->len++] = values;
}

static counted count_ok(fixture *f)
{
    counted c;
    memset(&c, 0, sizeof c);
    err e;
    err_clear(&e);
    int rc = vault_count(f->d, count_cb, &c, &e);
    if (rc) print_error("vault_count: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return c;
}

static void test_count_by_key(void **state)
{
    fixture *f = *state;
    populate(f);
    counted c = count_ok(f);
    assert_int_equal(c.len, 1);
    assert_string_equal(c.ids[0], "k1");
    assert_int_equal(c.n[0], 100);

    add_key_ok(f->v, "k2");
    volatile int stop = 1;
    vault_rotation r;
    rotate_ok(f, 33, &stop, &r);
    add_key_ok(f->v, "k3");
    rotate_ok(f, 10, &stop, &r);
    err e;
    err_clear(&e);
    assert_int_equal(db_run(f->d, &e, "UPDATE staff_users SET phone_enc = 'plain text' WHERE username = 'u01'", NULL),
                     0);
    c = count_ok(f);
    /* by key number, values that are not stored forms last under "" */
    assert_int_equal(c.len, 4);
    assert_string_equal(c.ids[0], "k1");
    assert_int_equal(c.n[0], 100 - 33 - 1);
    assert_string_equal(c.ids[1], "k2");
    assert_int_equal(c.n[1], 23);
    assert_string_equal(c.ids[2], "k3");
    assert_int_equal(c.n[2], 10);
    assert_string_equal(c.ids[3], "");
    assert_int_equal(c.n[3], 1);
}

static void test_count_of_an_empty_database(void **state)
{
    fixture *f = *state;
    err e;
    err_clear(&e);
    assert_int_equal(db_open(f->dbpath, DB_OPEN_CREATE, &f->d, &e), 0);
    assert_int_equal(migrate_apply(f->d, NULL, &e), 0);
    counted c = count_ok(f);
    assert_int_equal(c.len, 0);
}

/* ------------------------------------------------------------ pruning */

static void prune_ok(fixture *f, const char *want)
{
    char removed[64] = "junk";
    err e;
    err_clear(&e);
    int rc = vault_prune(f->d, f->v, removed, sizeof removed, &e);
    if (rc) print_error("vault_prune: %s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(removed, want);
    assert_int_equal(file_mode(f->keys), 0600);
    assert_int_equal(temp_files(f->dir), 0);
}

static void reopen(fixture *f)
{
    vault_close(f->v);
    f->v = NULL;
    err e;
    err_clear(&e);
    int rc = vault_open(f->keys, &f->v, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
}

static void test_prune_keeps_keys_in_use(void **state)
{
    fixture *f = *state;
    populate(f);
    /* only the current key, unused or not, never goes */
    prune_ok(f, "");
    add_key_ok(f->v, "k2");
    volatile int stop = 1;
    vault_rotation r;
    rotate_ok(f, 10, &stop, &r);   /* k1 still has 90 values */
    prune_ok(f, "");
    reopen(f);
    key_counts kc = check_all(f, f->v);
    assert_int_equal(kc.n[1], 90);
}

static void test_prune_after_full_rotation(void **state)
{
    fixture *f = *state;
    populate(f);
    add_key_ok(f->v, "k2");
    vault_rotation r;
    rotate_ok(f, 7, NULL, &r);
    prune_ok(f, "k1");
    assert_string_equal(vault_current_key(f->v), "k2");
    check_all(f, f->v);

    char *text = slurp(f->keys);
    assert_null(strstr(text, "\nk1 "));
    assert_non_null(strstr(text, "\nk2 "));
    assert_true(!strncmp(text, "# bandbill key file", 19));   /* comments kept */
    free(text);
    reopen(f);
    assert_string_equal(vault_current_key(f->v), "k2");
    check_all(f, f->v);

    /* nothing more to remove; numbers are never reused */
    prune_ok(f, "");
    add_key_ok(f->v, "k3");
}

static void test_prune_removes_only_unused(void **state)
{
    fixture *f = *state;
    populate(f);            /* all under k1 */
    add_key_ok(f->v, "k2");
    add_key_ok(f->v, "k3");
    add_key_ok(f->v, "k4");
    volatile int stop = 1;
    vault_rotation r;
    rotate_ok(f, 5, &stop, &r);   /* 5 values under k4 */
    prune_ok(f, "k2 k3");
    reopen(f);
    key_counts kc = check_all(f, f->v);
    assert_int_equal(kc.n[1], 95);
    assert_int_equal(kc.n[4], 5);
    assert_string_equal(vault_current_key(f->v), "k4");

    rotate_ok(f, 50, NULL, &r);
    prune_ok(f, "k1");
    reopen(f);
    kc = check_all(f, f->v);
    assert_int_equal(kc.n[4], 100);
}

static void test_prune_checks_its_output_room(void **state)
{
    fixture *f = *state;
    populate(f);
    add_key_ok(f->v, "k2");
    add_key_ok(f->v, "k3");
    vault_rotation r;
    rotate_ok(f, 50, NULL, &r);
    char *before = slurp(f->keys);
    char small[4];
    err e;
    err_clear(&e);
    assert_int_equal(vault_prune(f->d, f->v, small, sizeof small, &e), ERR_LIMIT);
    char *after = slurp(f->keys);
    assert_string_equal(before, after);   /* untouched */
    free(before);
    free(after);
    assert_false(db_in_tx(f->d));
    prune_ok(f, "k1 k2");
}

static void test_prune_refuses_a_changed_file(void **state)
{
    fixture *f = *state;
    populate(f);
    add_key_ok(f->v, "k2");
    vault_rotation r;
    rotate_ok(f, 50, NULL, &r);
    vault *v2 = NULL;
    err e;
    err_clear(&e);
    assert_int_equal(vault_open(f->keys, &v2, &e), 0);
    add_key_ok(v2, "k3");
    char removed[32];
    err_clear(&e);
    assert_int_equal(vault_prune(f->d, f->v, removed, sizeof removed, &e), ERR_CONFLICT);
    assert_false(db_in_tx(f->d));
    vault_close(v2);
    reopen(f);
    assert_string_equal(vault_current_key(f->v), "k3");
    prune_ok(f, "k1");   /* k2 still holds every value */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_create_and_open_round_trip),
        T(test_two_key_files_have_different_keys),
        T(test_create_refuses_existing_file),
        T(test_create_is_0600_whatever_the_umask),
        T(test_create_in_missing_folder_fails),
        T(test_open_refuses_group_or_other_access),
        T(test_open_refuses_symlink_folder_and_missing),
        T(test_malformed_key_files_name_file_and_line),
        T(test_key_file_layout_is_tolerant),
        T(test_encrypt_decrypt_round_trip),
        T(test_encrypt_and_decrypt_append),
        T(test_same_value_encrypts_differently),
        T(test_wrong_place_fails),
        T(test_any_changed_character_fails),
        T(test_unknown_key_is_not_found),
        T(test_malformed_stored_forms),
        T(test_encrypt_limits),
        T(test_index_is_a_keyed_hmac),
        T(test_index_survives_add_key),
        T(test_add_key_makes_it_current),
        T(test_add_key_refuses_a_changed_file),
        T(test_add_key_keeps_hand_edits),
        T(test_rotation_rewrites_everything),
        T(test_rotation_stops_and_resumes),
        T(test_rotation_resumes_after_a_new_key),
        T(test_rotation_after_a_rolled_back_batch),
        T(test_rotation_survives_sigkill),
        T(test_rotation_stops_on_a_value_it_cannot_read),
        T(test_rotation_arguments),
        T(test_count_by_key),
        T(test_count_of_an_empty_database),
        T(test_prune_keeps_keys_in_use),
        T(test_prune_after_full_rotation),
        T(test_prune_removes_only_unused),
        T(test_prune_checks_its_output_room),
        T(test_prune_refuses_a_changed_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
