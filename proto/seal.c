/*
 * seal: key files, key derivation, keyed block ids and the sealed-block
 * format (zstd, then AEAD).  The only file in snapzone that includes sodium.h
 * or zstd.h; every other module sees opaque keys, contexts and byte strings.
 * Format and API contract: seal.h.
 *
 * Notes on the implementation:
 *  - The cipher used by seal_block is chosen once, in seal_init, and copied
 *    into each seal_ctx; seal_open accepts either cipher byte.
 *  - The header is not covered by the AEAD (the associated data is the id
 *    only, per seal.h), so every header byte is checked explicitly: unknown
 *    version, cipher or flag bits, a non-zero reserved byte and, for AES-GCM,
 *    non-zero unused nonce bytes 16..27 are SZ_ECORRUPT.  A flipped
 *    compression bit is caught by the id check after decryption.
 *  - seal_block and seal_open never allocate: they use the ctx's zstd
 *    contexts and its scratch buffer.
 */
#include "seal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "err.h"
#include "fsutil.h"
#include "log.h"

#define SEAL_VERSION 1
#define SEAL_FLAG_ZSTD 0x01u
#define SEAL_CIPHER_XCHACHA 1
#define SEAL_CIPHER_AESGCM 2
#define SEAL_NONCE_OFF 4
#define SEAL_NONCE_BYTES 24
#define SEAL_AES_NONCE_BYTES 12
#define SEAL_KEY_BYTES 32
#define SEAL_ZSTD_LEVEL 1

#define SEAL_KEYFILE_MAGIC "snapzone-key-v1\n"
#define SEAL_KEYFILE_MAGIC_LEN (sizeof(SEAL_KEYFILE_MAGIC) - 1)
#define SEAL_KEYFILE_LEN (SEAL_KEYFILE_MAGIC_LEN + 2 * SEAL_KEY_BYTES + 1)

_Static_assert(SEAL_HDR_BYTES == SEAL_NONCE_OFF + SEAL_NONCE_BYTES, "header layout");
_Static_assert(SEAL_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "xchacha nonce");
_Static_assert(SEAL_AES_NONCE_BYTES == crypto_aead_aes256gcm_NPUBBYTES, "aes nonce");
_Static_assert(SEAL_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES, "xchacha tag");
_Static_assert(SEAL_TAG_BYTES == crypto_aead_aes256gcm_ABYTES, "aes tag");
_Static_assert(SEAL_KEY_BYTES == crypto_kdf_KEYBYTES, "kdf key");
_Static_assert(SEAL_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "xchacha key");
_Static_assert(SEAL_KEY_BYTES == crypto_aead_aes256gcm_KEYBYTES, "aes key");
_Static_assert(SEAL_ID_BYTES == crypto_generichash_BYTES, "id size");
_Static_assert(SEAL_FPR_BYTES <= crypto_generichash_BYTES, "fingerprint size");

/* Lives in sodium_malloc'd, read-only memory; sodium_free wipes it. */
struct seal_keys {
    uint8_t id_key[SEAL_KEY_BYTES];
    uint8_t enc_key[SEAL_KEY_BYTES];
    uint8_t digest_key[SEAL_KEY_BYTES];
    uint8_t fpr[SEAL_FPR_BYTES];
};

struct seal_ctx {
    const struct seal_keys *keys;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *scratch;
    size_t scratch_cap;
    size_t max_block;
    int cipher;
};

static pthread_once_t seal_once = PTHREAD_ONCE_INIT;
static int seal_init_rc = SZ_EINTERNAL;
static int seal_cipher = SEAL_CIPHER_XCHACHA;

/* ---- initialisation and cipher choice ---------------------------------- */

static int seal_pick_cipher(void)
{
    const char *want = getenv("SNAPZONE_CIPHER");
    int aes = crypto_aead_aes256gcm_is_available();

    /* XChaCha20-Poly1305 by default: it runs everywhere, so a snapshot can
     * be restored on any CPU after a disaster, and its 192-bit random
     * nonces have no practical per-key message limit (AES-GCM's 96-bit
     * ones are good for about 2^32 blocks per key).  AES-256-GCM is opt-in. */
    if (want == NULL || want[0] == '\0')
        return SEAL_CIPHER_XCHACHA;
    if (strcmp(want, "xchacha20poly1305") == 0)
        return SEAL_CIPHER_XCHACHA;
    if (strcmp(want, "aes256gcm") == 0) {
        if (!aes)
            log_warn("SNAPZONE_CIPHER=aes256gcm: no AES-NI, using xchacha20poly1305");
        return aes ? SEAL_CIPHER_AESGCM : SEAL_CIPHER_XCHACHA;
    }
    log_warn("SNAPZONE_CIPHER=%s: unknown cipher, using the default", want);
    return SEAL_CIPHER_XCHACHA;
}

static void seal_init_once(void)
{
    if (sodium_init() < 0)
        return;
    seal_cipher = seal_pick_cipher();
    seal_init_rc = 0;
}

int seal_init(void)
{
    if (pthread_once(&seal_once, seal_init_once) != 0)
        return SZ_EINTERNAL;
    return seal_init_rc;
}

const char *seal_cipher_name(void)
{
    (void)seal_init();
    return seal_cipher == SEAL_CIPHER_AESGCM ? "aes256gcm" : "xchacha20poly1305";
}

void seal_random(void *buf, size_t len)
{
    (void)seal_init();
    randombytes_buf(buf, len);
}

/* ---- key files ---------------------------------------------------------- */

/* Constant-time decode of lowercase hex only; returns 0 or -1. */
static int seal_hex_decode(const char *hex, uint8_t *out, size_t outlen)
{
    unsigned bad = 0;

    for (size_t i = 0; i < 2 * outlen; i++) {
        unsigned c = (unsigned char)hex[i];
        unsigned num = c ^ 48u;
        unsigned num_ok = ((num - 10u) >> 8) & 0xffu;
        unsigned alpha = c - 87u;
        unsigned alpha_ok = (((alpha - 10u) ^ (alpha - 16u)) >> 8) & 0xffu;
        unsigned v = (num_ok & num) | (alpha_ok & alpha);

        bad |= ~(num_ok | alpha_ok) & 0xffu;
        if (i & 1)
            out[i / 2] |= (uint8_t)(v & 0x0fu);
        else
            out[i / 2] = (uint8_t)((v & 0x0fu) << 4);
    }
    return bad ? -1 : 0;
}

static int seal_parse_keyfile(const uint8_t *buf, size_t len, uint8_t master[SEAL_KEY_BYTES])
{
    const char *hex = (const char *)buf + SEAL_KEYFILE_MAGIC_LEN;

    if (len != SEAL_KEYFILE_LEN)
        return SZ_EINVAL;
    if (memcmp(buf, SEAL_KEYFILE_MAGIC, SEAL_KEYFILE_MAGIC_LEN) != 0)
        return SZ_EINVAL;
    if (buf[SEAL_KEYFILE_LEN - 1] != '\n')
        return SZ_EINVAL;
    if (seal_hex_decode(hex, master, SEAL_KEY_BYTES) != 0)
        return SZ_EINVAL;
    return 0;
}

static int seal_derive(struct seal_keys *k, const uint8_t master[SEAL_KEY_BYTES])
{
    uint8_t fkey[SEAL_KEY_BYTES];
    uint8_t fhash[crypto_generichash_BYTES];
    int rc = SZ_EINTERNAL;

    if (crypto_kdf_derive_from_key(k->id_key, SEAL_KEY_BYTES, 1, "szblkid_", master) != 0 ||
        crypto_kdf_derive_from_key(k->enc_key, SEAL_KEY_BYTES, 2, "szencrpt", master) != 0 ||
        crypto_kdf_derive_from_key(k->digest_key, SEAL_KEY_BYTES, 3, "szdigest", master) != 0 ||
        crypto_kdf_derive_from_key(fkey, SEAL_KEY_BYTES, 4, "szfinger", master) != 0)
        goto out;
    if (crypto_generichash(fhash, sizeof(fhash), fkey, sizeof(fkey), NULL, 0) != 0)
        goto out;
    memcpy(k->fpr, fhash, SEAL_FPR_BYTES);
    rc = 0;
out:
    sodium_memzero(fkey, sizeof(fkey));
    sodium_memzero(fhash, sizeof(fhash));
    return rc;
}

int seal_keygen_file(const char *path)
{
    uint8_t master[SEAL_KEY_BYTES];
    char text[SEAL_KEYFILE_LEN + 1];
    int rc;

    if (path == NULL)
        return SZ_EINVAL;
    rc = seal_init();
    if (rc != 0)
        return rc;
    crypto_kdf_keygen(master);
    memcpy(text, SEAL_KEYFILE_MAGIC, SEAL_KEYFILE_MAGIC_LEN);
    sodium_bin2hex(text + SEAL_KEYFILE_MAGIC_LEN, 2 * SEAL_KEY_BYTES + 1, master, sizeof(master));
    text[SEAL_KEYFILE_LEN - 1] = '\n';
    rc = fsu_write_atomic(path, text, SEAL_KEYFILE_LEN, 0600, 1);
    sodium_memzero(master, sizeof(master));
    sodium_memzero(text, sizeof(text));
    return rc;
}

int seal_keys_load(const char *path, struct seal_keys **out)
{
    uint8_t master[SEAL_KEY_BYTES];
    uint8_t *buf = NULL;
    size_t len = 0;
    struct seal_keys *k = NULL;
    int rc;

    if (path == NULL || out == NULL)
        return SZ_EINVAL;
    *out = NULL;
    rc = seal_init();
    if (rc != 0)
        return rc;
    rc = fsu_read_file(path, 4096, &buf, &len);
    if (rc == SZ_ETOOBIG)
        rc = SZ_EINVAL;
    if (rc != 0)
        goto out;
    rc = seal_parse_keyfile(buf, len, master);
    if (rc != 0)
        goto out;
    k = sodium_malloc(sizeof(*k));
    if (k == NULL) {
        rc = SZ_ENOMEM;
        goto out;
    }
    rc = seal_derive(k, master);
    if (rc != 0)
        goto out;
    sodium_mprotect_readonly(k);
    *out = k;
    k = NULL;
out:
    if (k != NULL)
        sodium_free(k);
    if (buf != NULL) {
        sodium_memzero(buf, len);
        free(buf);
    }
    sodium_memzero(master, sizeof(master));
    return rc;
}

void seal_keys_free(struct seal_keys *keys)
{
    if (keys != NULL)
        sodium_free(keys); /* makes it writable, wipes it, unmaps it */
}

const uint8_t *seal_fingerprint(const struct seal_keys *keys)
{
    return keys->fpr;
}

/* ---- hashing ------------------------------------------------------------ */

static void seal_keyed_hash(const uint8_t key[SEAL_KEY_BYTES], const void *buf, size_t len,
                            uint8_t out[SEAL_ID_BYTES])
{
    /* Cannot fail with these sizes; the return value carries no information. */
    (void)crypto_generichash(out, SEAL_ID_BYTES, buf, len, key, SEAL_KEY_BYTES);
}

void seal_block_id(const struct seal_keys *keys, const void *buf, size_t len,
                   uint8_t id[SEAL_ID_BYTES])
{
    seal_keyed_hash(keys->id_key, buf, len, id);
}

void seal_digest(const struct seal_keys *keys, const void *buf, size_t len,
                 uint8_t out[SEAL_ID_BYTES])
{
    seal_keyed_hash(keys->digest_key, buf, len, out);
}

/* ---- contexts ----------------------------------------------------------- */

size_t seal_bound(size_t len)
{
    return SEAL_HDR_BYTES + len + SEAL_TAG_BYTES;
}

int seal_ctx_new(const struct seal_keys *keys, size_t max_block, struct seal_ctx **out)
{
    struct seal_ctx *ctx = NULL;
    int rc = SZ_EINVAL;

    if (keys == NULL || out == NULL || max_block == 0 || max_block > SEAL_MAX_BLOCK)
        goto out;
    rc = seal_init();
    if (rc != 0)
        goto out;
    rc = SZ_ENOMEM;
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        goto out;
    ctx->keys = keys;
    ctx->max_block = max_block;
    ctx->cipher = seal_cipher;
    ctx->scratch_cap = seal_bound(max_block);
    ctx->scratch = malloc(ctx->scratch_cap);
    ctx->cctx = ZSTD_createCCtx();
    ctx->dctx = ZSTD_createDCtx();
    if (ctx->scratch == NULL || ctx->cctx == NULL || ctx->dctx == NULL)
        goto out;
    rc = SZ_EINTERNAL;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_compressionLevel, SEAL_ZSTD_LEVEL)))
        goto out;
    *out = ctx;
    ctx = NULL;
    rc = 0;
out:
    seal_ctx_free(ctx);
    return rc;
}

void seal_ctx_free(struct seal_ctx *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->scratch != NULL)
        sodium_memzero(ctx->scratch, ctx->scratch_cap);
    free(ctx->scratch);
    ZSTD_freeCCtx(ctx->cctx);
    ZSTD_freeDCtx(ctx->dctx);
    free(ctx);
}

/* ---- seal --------------------------------------------------------------- */

/* Write the body (compressed when smaller, else plain) at body; return its
 * length and set *flags. */
static size_t seal_compress(struct seal_ctx *ctx, const void *plain, size_t len, uint8_t *body,
                            uint8_t *flags)
{
    if (len > 1) {
        size_t n = ZSTD_compress2(ctx->cctx, body, len - 1, plain, len);
        if (!ZSTD_isError(n) && n < len) {
            *flags = SEAL_FLAG_ZSTD;
            return n;
        }
    }
    if (len > 0)
        memcpy(body, plain, len);
    *flags = 0;
    return len;
}

static void seal_encrypt(int cipher, const struct seal_keys *keys, const uint8_t *id,
                         const uint8_t *nonce, uint8_t *body, size_t n)
{
    /* In place; tag right after the ciphertext.  Cannot fail for n <= 4 MiB. */
    if (cipher == SEAL_CIPHER_AESGCM)
        (void)crypto_aead_aes256gcm_encrypt_detached(body, body + n, NULL, body, n, id,
                                                     SEAL_ID_BYTES, NULL, nonce, keys->enc_key);
    else
        (void)crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
            body, body + n, NULL, body, n, id, SEAL_ID_BYTES, NULL, nonce, keys->enc_key);
}

int seal_block(struct seal_ctx *ctx, const uint8_t id[SEAL_ID_BYTES], const void *plain,
               size_t len, uint8_t *out, size_t outcap, size_t *outlen)
{
    uint8_t *nonce = out + SEAL_NONCE_OFF;
    uint8_t *body = out + SEAL_HDR_BYTES;
    uint8_t flags;
    size_t n;

    if (ctx == NULL || id == NULL || (plain == NULL && len > 0) || out == NULL || outlen == NULL)
        return SZ_EINVAL;
    *outlen = 0;
    if (len > ctx->max_block || outcap < seal_bound(len))
        return SZ_ETOOBIG;
    n = seal_compress(ctx, plain, len, body, &flags);
    out[0] = SEAL_VERSION;
    out[1] = flags;
    out[2] = (uint8_t)ctx->cipher;
    out[3] = 0;
    if (ctx->cipher == SEAL_CIPHER_AESGCM) {
        randombytes_buf(nonce, SEAL_AES_NONCE_BYTES);
        memset(nonce + SEAL_AES_NONCE_BYTES, 0, SEAL_NONCE_BYTES - SEAL_AES_NONCE_BYTES);
    } else {
        randombytes_buf(nonce, SEAL_NONCE_BYTES);
    }
    seal_encrypt(ctx->cipher, ctx->keys, id, nonce, body, n);
    *outlen = SEAL_HDR_BYTES + n + SEAL_TAG_BYTES;
    return 0;
}

/* ---- open --------------------------------------------------------------- */

static int seal_check_header(const uint8_t *hdr, size_t len)
{
    static const uint8_t zero[SEAL_NONCE_BYTES - SEAL_AES_NONCE_BYTES];

    if (len < SEAL_HDR_BYTES + SEAL_TAG_BYTES)
        return SZ_ECORRUPT;
    if (hdr[0] != SEAL_VERSION || (hdr[1] & ~SEAL_FLAG_ZSTD) != 0 || hdr[3] != 0)
        return SZ_ECORRUPT;
    if (hdr[2] == SEAL_CIPHER_XCHACHA)
        return 0;
    if (hdr[2] != SEAL_CIPHER_AESGCM)
        return SZ_ECORRUPT;
    if (memcmp(hdr + SEAL_NONCE_OFF + SEAL_AES_NONCE_BYTES, zero, sizeof(zero)) != 0)
        return SZ_ECORRUPT;
    /* libsodium 1.0.18 has AES-GCM only with AES-NI + PCLMUL. */
    return crypto_aead_aes256gcm_is_available() ? 0 : SZ_EUNAVAIL;
}

static int seal_decrypt(const struct seal_keys *keys, const uint8_t *id, const uint8_t *sealed,
                        size_t n, uint8_t *dst)
{
    const uint8_t *nonce = sealed + SEAL_NONCE_OFF;
    const uint8_t *ct = sealed + SEAL_HDR_BYTES;
    int r;

    if (sealed[2] == SEAL_CIPHER_AESGCM)
        r = crypto_aead_aes256gcm_decrypt_detached(dst, NULL, ct, n, ct + n, id, SEAL_ID_BYTES,
                                                   nonce, keys->enc_key);
    else
        r = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            dst, NULL, ct, n, ct + n, id, SEAL_ID_BYTES, nonce, keys->enc_key);
    return r == 0 ? 0 : SZ_EAUTH;
}

static int seal_decompress(struct seal_ctx *ctx, size_t n, uint8_t *out, size_t outcap,
                           size_t *ptlen)
{
    size_t r = ZSTD_decompressDCtx(ctx->dctx, out, outcap, ctx->scratch, n);

    if (ZSTD_isError(r))
        return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall ? SZ_ETOOBIG : SZ_ECORRUPT;
    *ptlen = r;
    return 0;
}

/* Decrypt (and decompress) the n-byte body into out.  *ptlen is the
 * plaintext size on success, or how much of out may have been written. */
static int seal_unwrap(struct seal_ctx *ctx, const uint8_t *id, const uint8_t *sealed, size_t n,
                       uint8_t *out, size_t outcap, size_t *ptlen)
{
    int rc;

    if (!(sealed[1] & SEAL_FLAG_ZSTD)) {
        if (n > outcap)
            return SZ_ETOOBIG;
        *ptlen = n;
        return seal_decrypt(ctx->keys, id, sealed, n, out);
    }
    if (n > ctx->scratch_cap)
        return SZ_ETOOBIG;
    rc = seal_decrypt(ctx->keys, id, sealed, n, ctx->scratch);
    if (rc != 0)
        return rc;
    *ptlen = outcap;
    return seal_decompress(ctx, n, out, outcap, ptlen);
}

int seal_open(struct seal_ctx *ctx, const uint8_t id[SEAL_ID_BYTES], const void *sealed,
              size_t len, uint8_t *out, size_t outcap, size_t *outlen)
{
    uint8_t got[SEAL_ID_BYTES];
    size_t ptlen = 0;
    int rc;

    if (ctx == NULL || id == NULL || sealed == NULL || out == NULL || outlen == NULL)
        return SZ_EINVAL;
    *outlen = 0;
    rc = seal_check_header(sealed, len);
    if (rc != 0)
        return rc;
    rc = seal_unwrap(ctx, id, sealed, len - SEAL_HDR_BYTES - SEAL_TAG_BYTES, out, outcap, &ptlen);
    if (rc != 0)
        goto fail;
    seal_block_id(ctx->keys, out, ptlen, got);
    if (sodium_memcmp(got, id, SEAL_ID_BYTES) != 0) {
        rc = SZ_ECORRUPT;
        goto fail;
    }
    *outlen = ptlen;
    return 0;
fail:
    /* Never leave unverified plaintext behind in the caller's buffer. */
    sodium_memzero(out, ptlen);
    return rc;
}
