/* Fast non-cryptographic randomness for ids and jitter (xoshiro256**, seeded from getrandom at
 * first use). Not for secrets or keys. Loop thread only. */
#ifndef MUTT_RANDOM_H
#define MUTT_RANDOM_H

#include <stddef.h>
#include <stdint.h>

uint64_t mutt_random_u64(void);
void mutt_random_bytes(void *buf, size_t len);
/* Writes a fresh UUIDv4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") into out. */
void mutt_random_uuid(char out[37]);

#endif
