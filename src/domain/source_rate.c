/* Per-source token buckets (source_rate.h). A chained hash table over a fixed array of entries,
 * with an intrusive LRU list so a full table forgets the least recently seen sender in O(1):
 * a flood of spoofed addresses costs a constant per datagram, never a scan. */
#include "mutt/source_rate.h"

#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

struct entry {
    char addr[MUTT_SOURCE_ADDR_MAX];
    uint32_t hnext;          /* next entry in the same hash bucket */
    uint32_t prev, next;     /* LRU list: head = most recently seen */
    uint64_t tokens_milli;   /* tokens × 1000, at most rate × 1000 */
    int64_t last_ms;         /* when the tokens were last topped up */
    uint64_t suppressed;     /* refusals in the current window */
    int64_t first_ms;        /* the window's first refusal */
};

struct mutt_source_rate {
    struct entry *e;
    uint32_t *buckets;
    size_t nbuckets;  /* a power of two */
    size_t cap, used;
    uint32_t head, tail;
    uint64_t rate;
    int64_t window_ms;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct mutt_source_rate *mutt_source_rate_new(size_t capacity, uint32_t rate, int64_t window_ms)
{
    if (capacity == 0 || capacity >= NIL || rate == 0 || window_ms <= 0)
        return NULL;
    struct mutt_source_rate *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->nbuckets = 16;
    while (t->nbuckets < capacity * 2)
        t->nbuckets *= 2;
    t->e = calloc(capacity, sizeof *t->e);
    t->buckets = malloc(t->nbuckets * sizeof *t->buckets);
    if (!t->e || !t->buckets) {
        mutt_source_rate_free(t);
        return NULL;
    }
    for (size_t i = 0; i < t->nbuckets; i++)
        t->buckets[i] = NIL;
    t->cap = capacity;
    t->head = t->tail = NIL;
    t->rate = rate;
    t->window_ms = window_ms;
    return t;
}

void mutt_source_rate_free(struct mutt_source_rate *t)
{
    if (!t)
        return;
    free(t->e);
    free(t->buckets);
    free(t);
}

size_t mutt_source_rate_size(const struct mutt_source_rate *t)
{
    return t->used;
}

static void lru_unlink(struct mutt_source_rate *t, uint32_t i)
{
    struct entry *x = &t->e[i];
    if (x->prev != NIL)
        t->e[x->prev].next = x->next;
    else
        t->head = x->next;
    if (x->next != NIL)
        t->e[x->next].prev = x->prev;
    else
        t->tail = x->prev;
}

static void lru_push_front(struct mutt_source_rate *t, uint32_t i)
{
    struct entry *x = &t->e[i];
    x->prev = NIL;
    x->next = t->head;
    if (t->head != NIL)
        t->e[t->head].prev = i;
    t->head = i;
    if (t->tail == NIL)
        t->tail = i;
}

static void hash_remove(struct mutt_source_rate *t, uint32_t i)
{
    uint32_t *p = &t->buckets[hash(t->e[i].addr) & (t->nbuckets - 1)];
    while (*p != NIL && *p != i)
        p = &t->e[*p].hnext;
    if (*p == i)
        *p = t->e[i].hnext;
}

static void summary_of(const struct entry *x, struct mutt_source_summary *out)
{
    memcpy(out->addr, x->addr, sizeof out->addr);
    out->suppressed = x->suppressed;
    out->first_ms = x->first_ms;
}

bool mutt_source_rate_take(struct mutt_source_rate *t, const char *addr, int64_t now_ms,
                           struct mutt_source_summary *evicted, bool *has_evicted)
{
    char key[MUTT_SOURCE_ADDR_MAX];
    size_t n = strnlen(addr, sizeof key - 1);
    memcpy(key, addr, n);
    key[n] = '\0';
    if (has_evicted)
        *has_evicted = false;
    size_t b = hash(key) & (t->nbuckets - 1);
    uint32_t i = t->buckets[b];
    while (i != NIL && strcmp(t->e[i].addr, key) != 0)
        i = t->e[i].hnext;
    struct entry *x;
    if (i == NIL) {
        if (t->used < t->cap) {
            i = (uint32_t)t->used++;
        } else {
            i = t->tail;
            x = &t->e[i];
            if (x->suppressed && evicted && has_evicted) {
                summary_of(x, evicted);
                *has_evicted = true;
            }
            lru_unlink(t, i);
            hash_remove(t, i);
        }
        x = &t->e[i];
        memset(x, 0, sizeof *x);
        memcpy(x->addr, key, n + 1);
        x->tokens_milli = t->rate * 1000;
        x->last_ms = now_ms;
        x->hnext = t->buckets[b];
        t->buckets[b] = i;
        lru_push_front(t, i);
    } else {
        x = &t->e[i];
        if (t->head != i) {
            lru_unlink(t, i);
            lru_push_front(t, i);
        }
    }
    if (now_ms > x->last_ms) {
        uint64_t cap = t->rate * 1000;
        uint64_t elapsed = (uint64_t)(now_ms - x->last_ms);
        /* rate tokens per 1000 ms = rate milli-tokens per ms; capped before it could overflow */
        uint64_t add = elapsed >= 1000 ? cap : elapsed * t->rate;
        x->tokens_milli = x->tokens_milli + add > cap ? cap : x->tokens_milli + add;
        x->last_ms = now_ms;
    }
    if (x->tokens_milli >= 1000) {
        x->tokens_milli -= 1000;
        return true;
    }
    if (x->suppressed++ == 0)
        x->first_ms = now_ms;
    return false;
}

size_t mutt_source_rate_due(struct mutt_source_rate *t, int64_t now_ms, bool all, struct mutt_source_summary *out,
                            size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < t->used && k < max; i++) {
        struct entry *x = &t->e[i];
        if (x->suppressed == 0 || (!all && now_ms - x->first_ms < t->window_ms))
            continue;
        summary_of(x, &out[k++]);
        x->suppressed = 0;
    }
    return k;
}
