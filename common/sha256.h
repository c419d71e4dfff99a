/* SHA-256 (FIPS 180-4), incremental, for the checksums of exported
 * files. */
#ifndef SS_SHA256_H
#define SS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64

struct sha256 {
        uint32_t h[8];
        uint64_t total; /* bytes hashed so far */
        size_t fill;    /* bytes waiting in block */
        unsigned char block[64];
};

void sha256_init(struct sha256 *ctx);
void sha256_update(struct sha256 *ctx, const void *data, size_t len);

/* Finishes the hash and writes it as 64 lowercase hex digits plus NUL.
 * ctx must be initialised again before reuse. */
void sha256_hex(struct sha256 *ctx, char out[SHA256_HEX_LEN + 1]);

#endif
