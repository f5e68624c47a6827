/* WEBUI_USERS_FILE parsing and key lookup (D43). Pure (no I/O); in core beside approval.c, which
 * reads the file and checks it at config load. */
#include "mutt/users.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "mutt/error.h"

const char *mutt_user_role_name(enum mutt_user_role r)
{
    switch (r) {
    case MUTT_USER_ADMIN: return "admin";
    case MUTT_USER_APPROVER: return "approver";
    case MUTT_USER_READONLY: return "readonly";
    }
    return "unknown";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The next whitespace-separated field of [*p, end): its start and length; false at the end. */
static bool next_field(const char **p, const char *end, const char **f, size_t *flen)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
    if (*p == end)
        return false;
    *f = *p;
    while (*p < end && **p != ' ' && **p != '\t')
        (*p)++;
    *flen = (size_t)(*p - *f);
    return true;
}

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > MUTT_USER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._@-", s[i]))
            return false;
    return true;
}

static int parse_line(const char *p, const char *end, struct mutt_users *out, char *why, size_t whylen)
{
    const char *f[4];
    size_t fl[4];
    int n = 0;
    while (n < 4 && next_field(&p, end, &f[n], &fl[n]))
        n++;
    if (n == 0)
        return 0; /* blank */
    if (n != 3) {
        snprintf(why, whylen, "expected 'name role key_sha256_hex'");
        return MUTT_EINVAL;
    }
    if (!name_ok(f[0], fl[0])) {
        snprintf(why, whylen, "bad user name (1..64 of A-Z a-z 0-9 . _ @ -)");
        return MUTT_EINVAL;
    }
    struct mutt_user u = {0};
    memcpy(u.name, f[0], fl[0]);
    if (fl[1] == 5 && memcmp(f[1], "admin", 5) == 0)
        u.role = MUTT_USER_ADMIN;
    else if (fl[1] == 8 && memcmp(f[1], "approver", 8) == 0)
        u.role = MUTT_USER_APPROVER;
    else if (fl[1] == 8 && memcmp(f[1], "readonly", 8) == 0)
        u.role = MUTT_USER_READONLY;
    else {
        snprintf(why, whylen, "role must be admin, approver or readonly");
        return MUTT_EINVAL;
    }
    if (fl[2] != 64) {
        snprintf(why, whylen, "key hash must be 64 hex digits (sha256 of the key)");
        return MUTT_EINVAL;
    }
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval(f[2][2 * i]), lo = hexval(f[2][2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(why, whylen, "key hash must be 64 hex digits (sha256 of the key)");
            return MUTT_EINVAL;
        }
        u.sha[i] = (unsigned char)(hi << 4 | lo);
    }
    for (size_t i = 0; i < out->n; i++) {
        if (strcmp(out->users[i].name, u.name) == 0) {
            snprintf(why, whylen, "user %s listed twice", u.name);
            return MUTT_EINVAL;
        }
        if (memcmp(out->users[i].sha, u.sha, 32) == 0) {
            snprintf(why, whylen, "same key hash as user %s", out->users[i].name);
            return MUTT_EINVAL;
        }
    }
    if (out->n == MUTT_USERS_MAX) {
        snprintf(why, whylen, "more than %d users", MUTT_USERS_MAX);
        return MUTT_EINVAL;
    }
    out->users[out->n++] = u;
    return 0;
}

int mutt_users_parse(const char *text, size_t len, struct mutt_users *out, char *err, size_t errlen)
{
    out->n = 0;
    const char *p = text, *end = text ? text + len : NULL;
    for (unsigned line = 1; p && p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        const char *hash = memchr(p, '#', (size_t)(le - p));
        const char *stop = hash ? hash : le;
        if (stop > p && stop[-1] == '\r')
            stop--;
        char why[160];
        if (memchr(p, '\0', (size_t)(stop - p)) || parse_line(p, stop, out, why, sizeof why) != 0) {
            if (memchr(p, '\0', (size_t)(stop - p)))
                snprintf(why, sizeof why, "NUL byte");
            if (err)
                snprintf(err, errlen, "line %u: %s", line, why);
            out->n = 0;
            return MUTT_EINVAL;
        }
        p = eol ? eol + 1 : end;
    }
    return 0;
}

const struct mutt_user *mutt_users_find(const struct mutt_users *u, const char *key, size_t klen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!u || !key || klen == 0 || EVP_Digest(key, klen, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return NULL;
    const struct mutt_user *found = NULL;
    for (size_t i = 0; i < u->n; i++) {
        unsigned char diff = 0;
        for (size_t j = 0; j < 32; j++)
            diff |= (unsigned char)(md[j] ^ u->users[i].sha[j]);
        /* no early exit: the time taken does not tell which row (or whether one) matched */
        if (diff == 0)
            found = &u->users[i];
    }
    return found;
}
