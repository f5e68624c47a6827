/* The two-person rule's policy (D47): which writes need a second person, from APPROVAL_REQUIRED
 * (comma list of `config`, `config:<key>`, `rules`, `dev_hosts`, `teams`). Pure. Any thread. */
#ifndef MUTT_APPROVAL_H
#define MUTT_APPROVAL_H

#include <stdbool.h>
#include <stddef.h>

enum mutt_approval_scope {
    MUTT_APPROVAL_CONFIG = 1,
    MUTT_APPROVAL_RULES,
    MUTT_APPROVAL_DEV_HOSTS,
    MUTT_APPROVAL_TEAMS,
};

#define MUTT_APPROVAL_MAX_KEYS 64

struct mutt_approval_policy {
    bool config_all;  /* `config`: every dynamic-config key */
    bool rules, dev_hosts, teams;
    size_t nkeys;     /* `config:<key>` items, canonical key names (legacy names resolved) */
    char keys[MUTT_APPROVAL_MAX_KEYS][128];
};

/* Parses the comma list (spaces around items allowed, empty = nothing covered). An unknown item
 * or an unknown config key is MUTT_EINVAL with the item named in err. */
int mutt_approval_parse(const char *list, struct mutt_approval_policy *out, char *err, size_t errlen);

/* True when anything at all needs approval. */
bool mutt_approval_enabled(const struct mutt_approval_policy *p);

/* Whether a write of `scope` needs approval. For MUTT_APPROVAL_CONFIG, config_key names the key
 * written (canonical or legacy name); NULL means "some key, not known before the write" (a
 * rollback): covered when `config` or any `config:<key>` is listed. */
bool mutt_approval_covers(const struct mutt_approval_policy *p, enum mutt_approval_scope scope, const char *config_key);

struct mutt_config;
struct mutt_users;

/* Reads and parses a WEBUI_USERS_FILE (at most 1 MiB; blocking file read: start-up and CLI only).
 * Returns 0, or MUTT_EINVAL with "WEBUI_USERS_FILE <path>: line N: why" (or the read error) in err. */
int mutt_users_read_file(const char *path, struct mutt_users *out, char *err, size_t errlen);

/* The start-up / --check-config checks of issue 17: APPROVAL_REQUIRED parses; when the web role is
 * enabled, WEBUI_USERS_FILE and WEBUI_USERS parse (secret values are never quoted). Returns 0 or
 * MUTT_EINVAL with one line in err. Blocking (reads the users file). */
int mutt_approval_check_config(const struct mutt_config *cfg, char *err, size_t errlen);

/* "config" "rules" "dev_hosts" "teams". */
const char *mutt_approval_scope_name(enum mutt_approval_scope s);

#endif
