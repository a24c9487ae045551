/* vault.h - encryption at rest: the key file, AES-256-GCM values, keyed
 * lookup hashes, and key rotation.
 *
 * The key file lives outside the database (and outside its backups):
 *
 *     # bandbill key file: keep it apart from the database, mode 0600
 *     index <base64 of 32 bytes>   keyed hashes for lookups (never rotated)
 *     audit <base64 of 32 bytes>   the audit trail's chain key (never rotated)
 *     k1 <base64 of 32 bytes>      data keys; the last one encrypts new values
 *     k2 <base64 of 32 bytes>
 *
 * An encrypted value is stored as text "enc:v1:<key id>:<base64 of
 * nonce(12) | ciphertext | tag(16)>", with a fresh random nonce per value
 * and the value's place ("customers.phone") as associated data, so a value
 * copied into another column does not decrypt there.
 *
 * Lookups by phone or ID-card number go through vault_index(): an
 * HMAC-SHA256 of the normalised value under the index key, stored beside
 * the ciphertext and indexed. */
#ifndef BB_VAULT_H
#define BB_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "db.h"
#include "err.h"

#define VAULT_KEY_LEN 32
#define VAULT_INDEX_HEX 65   /* 64 hex digits and a NUL */
#define VAULT_MAX_KEYS 64

typedef struct vault vault;

/* Writes a new key file (index, audit and k1 keys from the system's
 * randomness) with mode 0600. Refuses to overwrite an existing file. */
int vault_create_file(const char *path, err *e);
/* Reads a key file. Refuses (ERR_FORBIDDEN) a file that group or others can
 * read or write, and a file that is not a regular file; ERR_INVALID names
 * the line of anything malformed. */
int vault_open(const char *path, vault **out, err *e);
void vault_close(vault *v);
const char *vault_path(const vault *v);

/* The id of the key that encrypts new values ("k2"). */
const char *vault_current_key(const vault *v);
/* The audit chain key. */
const uint8_t *vault_audit_key(const vault *v);

/* Encrypts n bytes for the place `aad` ("table.column"), appending the
 * stored form to out. */
int vault_encrypt(const vault *v, const char *aad, const void *plain, size_t n, buf *out, err *e);
/* Decrypts a stored form made for `aad`, appending the plaintext to out.
 * ERR_INVALID for a malformed value, ERR_NOTFOUND for an unknown key id,
 * ERR_FORBIDDEN when authentication fails (tampered, or the wrong place). */
int vault_decrypt(const vault *v, const char *aad, const char *stored, buf *out, err *e);
/* The key id a stored form names, or NULL if it is not one. */
const char *vault_key_of(const char *stored, char id[16]);

/* Keyed lookup hash of a normalised value: hex HMAC-SHA256(index key,
 * kind NUL value). `kind` separates domains ("phone", "idcard"). */
void vault_index(const vault *v, const char *kind, const char *value, char out[VAULT_INDEX_HEX]);

/* ---- rotation ---- */

/* Every encrypted column the vault knows, so rotation and erasure reach
 * them all. Subsystems add theirs to the table in vault.c. */
typedef struct vault_column {
    const char *table;
    const char *id;       /* integer primary key column */
    const char *column;   /* holds stored forms (or NULL) */
    const char *aad;      /* "table.column" */
} vault_column;

extern const vault_column vault_columns[];
extern const int vault_columns_count;

/* Appends a new data key (k<N+1>) to the key file, atomically (a new file
 * renamed over the old, mode 0600), and makes it current in v. */
int vault_add_key(vault *v, char new_id[16], err *e);

typedef struct vault_rotation {
    int64_t rewritten;    /* values re-encrypted by this call */
    int64_t remaining;    /* values still under an older key (0 when done) */
} vault_rotation;

/* Re-encrypts, under the current key, every value of every registered column
 * that is under another key, `batch` rows per transaction. Safe to stop at
 * any point (kill -9 included) and to run again: it simply continues with
 * what is left. `stop` (may be NULL) is checked between batches. */
int vault_rotate(db *d, const vault *v, int batch, const volatile int *stop, vault_rotation *out, err *e);
/* Counts the stored values under each key id (for `bandbill keys status`). */
typedef void (*vault_count_cb)(void *ud, const char *key_id, int64_t values);
int vault_count(db *d, vault_count_cb cb, void *ud, err *e);
/* Removes from the key file every data key that no stored value uses, except
 * the current one. Writes the ids removed, space-separated, into removed. */
int vault_prune(db *d, vault *v, char *removed, size_t n, err *e);

#endif
