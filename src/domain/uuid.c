/* UUIDv4 text from caller-supplied random bytes. Pure; see include/mutt/uuid.h. */
#include "mutt/uuid.h"

#include <stddef.h>

void mutt_uuid_v4_format(const uint8_t rnd[16], char out[MUTT_UUID_STR_LEN])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    size_t o = 0;

    for (int i = 0; i < 16; i++)
        b[i] = rnd[i];
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10xx (RFC 9562) */
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}
