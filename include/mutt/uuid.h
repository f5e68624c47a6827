/* UUID version 4 text from caller-supplied random bytes (D1 event ids, generated correlation
 * ids). Draws no randomness itself: the caller passes 16 bytes from its RNG. Any thread. */
#ifndef MUTT_UUID_H
#define MUTT_UUID_H

#include <stdint.h>

#define MUTT_UUID_STR_LEN 37 /* 36 characters + NUL */

/* Writes "xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx" (lower-case hex, V in 8..b) into out: the version
 * nibble is forced to 4 and the variant bits to 10 (RFC 9562), the other 122 bits come from rnd.
 * Cannot fail. */
void mutt_uuid_v4_format(const uint8_t rnd[16], char out[MUTT_UUID_STR_LEN]);

#endif
