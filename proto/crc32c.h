/*
 * crc32c: CRC-32C (Castagnoli) of stored block bytes.  Nodes record it per
 * block so they can scrub without any key; senders attach it to every PUT so
 * transfer damage is caught.  Uses SSE4.2 when the CPU has it.
 */
#ifndef SZ_CRC32C_H
#define SZ_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/** crc32c(crc, buf, len): Extend crc (start with 0) over buf.  Return new crc. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
