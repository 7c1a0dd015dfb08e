/*
 * seal: the crypto module, and the only file that includes sodium.h or zstd.h.
 *
 * Keys.  A key file holds one 32-byte tenant master key.  From it, crypto_kdf
 * derives: an id key (keyed BLAKE2b-256 block ids), an encryption key, and a
 * 16-byte public fingerprint that lets restore reject a wrong key up front.
 *
 * Sealed block layout (all integers little-endian):
 *   byte 0      format version (1)
 *   byte 1      flags: bit0 = zstd-compressed plaintext
 *   byte 2      cipher: 1 = XChaCha20-Poly1305, 2 = AES-256-GCM
 *   byte 3      reserved, 0
 *   bytes 4..27 nonce (24 bytes; AES-GCM uses the first 12)
 *   then        ciphertext, then a 16-byte tag
 * The cipher is XChaCha20-Poly1305 unless SNAPZONE_CIPHER=aes256gcm asks for
 * AES-256-GCM (used only where the CPU has AES-NI); seal_open reads either.
 * The associated data is the 32-byte block id, so a block cannot be moved to
 * another id.  seal_open() recomputes the id from the plaintext and rejects
 * a mismatch.
 */
#ifndef SZ_SEAL_H
#define SZ_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SEAL_ID_BYTES 32
#define SEAL_FPR_BYTES 16
#define SEAL_HDR_BYTES 28
#define SEAL_TAG_BYTES 16
#define SEAL_MAX_BLOCK (4u << 20)

struct seal_keys;
struct seal_ctx;

/** seal_init(): Initialise libsodium once per process.  Return 0 or SZ_EINTERNAL. */
int seal_init(void);

/** seal_keygen_file(path): Write a new random key file with mode 0600.
 *  Refuses to overwrite: SZ_EEXIST if path exists.  Return 0 or SZ_E*. */
int seal_keygen_file(const char *path);

/** seal_keys_load(path, out): Load a key file.  Caller frees with
 *  seal_keys_free().  Return 0, SZ_ENOENT, SZ_EINVAL (not a key file), SZ_EIO. */
int seal_keys_load(const char *path, struct seal_keys **out);

/** seal_keys_free(keys): Wipe and free.  NULL is a no-op. */
void seal_keys_free(struct seal_keys *keys);

/** seal_fingerprint(keys): Borrowed; valid until seal_keys_free. 16 bytes. */
const uint8_t *seal_fingerprint(const struct seal_keys *keys);

/** seal_block_id(keys, buf, len, id): id = keyed BLAKE2b-256(buf) under the id key. */
void seal_block_id(const struct seal_keys *keys, const void *buf, size_t len,
                   uint8_t id[SEAL_ID_BYTES]);

/** seal_bound(len): Largest sealed size of a len-byte block. */
size_t seal_bound(size_t len);

/** seal_ctx_new(keys, max_block, out): Per-thread scratch state (zstd
 *  contexts, buffers) for blocks up to max_block bytes.  keys is borrowed
 *  and must outlive the context.  Caller frees with seal_ctx_free. */
int seal_ctx_new(const struct seal_keys *keys, size_t max_block, struct seal_ctx **out);

/** seal_ctx_free(ctx): NULL is a no-op. */
void seal_ctx_free(struct seal_ctx *ctx);

/** seal_block(ctx, id, plain, len, out, outcap, outlen): Compress plain with
 *  zstd (level 1) when that makes it smaller, then encrypt with a random nonce
 *  and id as associated data.  out needs seal_bound(len) bytes.
 *  Return 0, SZ_EINVAL or SZ_ETOOBIG. */
int seal_block(struct seal_ctx *ctx, const uint8_t id[SEAL_ID_BYTES], const void *plain,
               size_t len, uint8_t *out, size_t outcap, size_t *outlen);

/** seal_open(ctx, id, sealed, len, out, outcap, outlen): Authenticate and
 *  decrypt, decompress, then check that the keyed id of the plaintext equals
 *  id.  Never writes unverified data to the caller as a success.
 *  Return 0, SZ_EAUTH (wrong key or tampered), SZ_ECORRUPT (bad header,
 *  decompression failure or id mismatch), SZ_ETOOBIG (outcap too small). */
int seal_open(struct seal_ctx *ctx, const uint8_t id[SEAL_ID_BYTES], const void *sealed,
              size_t len, uint8_t *out, size_t outcap, size_t *outlen);

/** seal_digest(keys, buf, len, out): keyed BLAKE2b-256 of buf under a
 *  separate digest key; used to fingerprint a whole manifest. */
void seal_digest(const struct seal_keys *keys, const void *buf, size_t len,
                 uint8_t out[SEAL_ID_BYTES]);

/** seal_random(buf, len): Fill buf with cryptographically random bytes. */
void seal_random(void *buf, size_t len);

/** seal_cipher_name(): "xchacha20poly1305" or "aes256gcm": what seal_block uses. */
const char *seal_cipher_name(void);

#endif
