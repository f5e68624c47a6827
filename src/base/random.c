/* xoshiro256** seeded once from the kernel. Ids need uniqueness, not secrecy; jitter needs speed.
 * Loop thread only (no locking on purpose). */
#include "mutt/random.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t state[4];
static int seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void seed(void)
{
    if (getrandom(state, sizeof(state), 0) != (ssize_t)sizeof(state)) {
        /* getrandom cannot fail on Linux >= 3.17 short of a seccomp filter; fall back to a
         * time/pid mix rather than refusing to start */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        state[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull;
        state[1] = (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 32);
        state[2] = 0xBF58476D1CE4E5B9ull;
        state[3] = 0x94D049BB133111EBull;
    }
    if ((state[0] | state[1] | state[2] | state[3]) == 0)
        state[0] = 1;
    seeded = 1;
}

uint64_t mutt_random_u64(void)
{
    if (!seeded)
        seed();
    uint64_t result = rotl(state[1] * 5, 7) * 9;
    uint64_t t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotl(state[3], 45);
    return result;
}

void mutt_random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        uint64_t r = mutt_random_u64();
        size_t n = len < sizeof(r) ? len : sizeof(r);
        memcpy(p, &r, n);
        p += n;
        len -= n;
    }
}

void mutt_random_uuid(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    mutt_random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}
