/* Named operators of the management API (D43, D46): the WEBUI_USERS_FILE format
 * (`name role key_sha256_hex` per line, `#` comments) parsed into a table, and the lookup of a
 * presented key in it (constant time over the whole table). Pure: the caller reads the file or
 * the Vault value. Any thread. */
#ifndef MUTT_USERS_H
#define MUTT_USERS_H

#include <stdbool.h>
#include <stddef.h>

enum mutt_user_role { MUTT_USER_READONLY = 1, MUTT_USER_ADMIN, MUTT_USER_APPROVER };

#define MUTT_USER_NAME_MAX 64 /* bytes of a name, without the NUL */
#define MUTT_USERS_MAX 256    /* users per table: a longer file is refused */

struct mutt_user {
    char name[MUTT_USER_NAME_MAX + 1];
    enum mutt_user_role role;
    unsigned char sha[32]; /* sha256 of the key */
};

struct mutt_users {
    struct mutt_user users[MUTT_USERS_MAX];
    size_t n;
};

/* Parses `text` (len bytes; lines end in '\n', a trailing '\r' is dropped) into *out, replacing
 * what it held. Names are [A-Za-z0-9._@-], at most 64 bytes, unique; roles admin, approver,
 * readonly; hashes 64 hex digits, unique. Returns 0, or MUTT_EINVAL with "line N: why" in err
 * (out then holds nothing). */
int mutt_users_parse(const char *text, size_t len, struct mutt_users *out, char *err, size_t errlen);

/* The user whose hash is sha256(key); NULL when none. Every row is compared, whatever matches. */
const struct mutt_user *mutt_users_find(const struct mutt_users *u, const char *key, size_t klen);

/* "admin" "approver" "readonly". */
const char *mutt_user_role_name(enum mutt_user_role r);

#endif
