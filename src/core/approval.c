/* APPROVAL_REQUIRED parsing and matching (D47). Pure, but in core: config:<key> items are checked
 * against the dynamic-config schema (legacy names resolved). */
#include "mutt/approval.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/config.h"
#include "mutt/users.h"

#include "mutt/dynconfig.h"
#include "mutt/error.h"

#define USERS_FILE_CAP (1u << 20)

int mutt_users_read_file(const char *path, struct mutt_users *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "WEBUI_USERS_FILE %s: %s", path, strerror(errno));
        return MUTT_EINVAL;
    }
    char *buf = malloc(USERS_FILE_CAP + 1);
    size_t n = buf ? fread(buf, 1, USERS_FILE_CAP + 1, f) : 0;
    bool bad = !buf || ferror(f) || n > USERS_FILE_CAP;
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(err, errlen, "WEBUI_USERS_FILE %s: unreadable or larger than 1 MiB", path);
        return MUTT_EINVAL;
    }
    char why[200];
    int rc = mutt_users_parse(buf, n, out, why, sizeof why);
    free(buf);
    if (rc != 0)
        snprintf(err, errlen, "WEBUI_USERS_FILE %s: %s", path, why);
    return rc;
}

int mutt_approval_check_config(const struct mutt_config *cfg, char *err, size_t errlen)
{
    struct mutt_approval_policy *p = malloc(sizeof *p);
    struct mutt_users *u = malloc(sizeof *u);
    int rc = p && u ? 0 : MUTT_ENOMEM;
    if (rc == 0)
        rc = mutt_approval_parse(mutt_config_str(cfg, MUTT_CFG_APPROVAL_REQUIRED), p, err, errlen);
    if (rc == 0 && (mutt_config_roles(cfg) & MUTT_ROLE_WEB)) {
        const char *path = mutt_config_str(cfg, MUTT_CFG_WEBUI_USERS_FILE);
        if (path && *path)
            rc = mutt_users_read_file(path, u, err, errlen);
        const char *secret = mutt_config_str(cfg, MUTT_CFG_WEBUI_USERS);
        char why[200];
        if (rc == 0 && secret && *secret && mutt_users_parse(secret, strlen(secret), u, why, sizeof why) != 0) {
            snprintf(err, errlen, "WEBUI_USERS=***: %s", why);
            rc = MUTT_EINVAL;
        }
    }
    if (rc == MUTT_ENOMEM)
        snprintf(err, errlen, "out of memory");
    free(p);
    free(u);
    return rc;
}

const char *mutt_approval_scope_name(enum mutt_approval_scope s)
{
    switch (s) {
    case MUTT_APPROVAL_CONFIG: return "config";
    case MUTT_APPROVAL_RULES: return "rules";
    case MUTT_APPROVAL_DEV_HOSTS: return "dev_hosts";
    case MUTT_APPROVAL_TEAMS: return "teams";
    }
    return "unknown";
}

static int add_item(struct mutt_approval_policy *out, const char *item, char *err, size_t errlen)
{
    if (strcmp(item, "config") == 0)
        out->config_all = true;
    else if (strcmp(item, "rules") == 0)
        out->rules = true;
    else if (strcmp(item, "dev_hosts") == 0)
        out->dev_hosts = true;
    else if (strcmp(item, "teams") == 0)
        out->teams = true;
    else if (strncmp(item, "config:", 7) == 0) {
        const struct mutt_dynconfig_def *def = mutt_dynconfig_def_resolve(item + 7, NULL);
        if (!def) {
            snprintf(err, errlen, "APPROVAL_REQUIRED: unknown dynamic config key in '%.100s'", item);
            return MUTT_EINVAL;
        }
        if (out->nkeys == MUTT_APPROVAL_MAX_KEYS) {
            snprintf(err, errlen, "APPROVAL_REQUIRED: more than %d config:<key> items", MUTT_APPROVAL_MAX_KEYS);
            return MUTT_EINVAL;
        }
        snprintf(out->keys[out->nkeys++], sizeof out->keys[0], "%s", def->name);
    } else {
        snprintf(err, errlen,
                 "APPROVAL_REQUIRED: unknown item '%.100s' (use config, config:<key>, rules, dev_hosts, teams)", item);
        return MUTT_EINVAL;
    }
    return 0;
}

int mutt_approval_parse(const char *list, struct mutt_approval_policy *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *p = list ? list : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > 0) {
            char item[160];
            if (n >= sizeof item) {
                snprintf(err, errlen, "APPROVAL_REQUIRED: item too long");
                memset(out, 0, sizeof *out);
                return MUTT_EINVAL;
            }
            memcpy(item, p, n);
            item[n] = '\0';
            if (add_item(out, item, err, errlen) != 0) {
                memset(out, 0, sizeof *out);
                return MUTT_EINVAL;
            }
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

bool mutt_approval_enabled(const struct mutt_approval_policy *p)
{
    return p->config_all || p->rules || p->dev_hosts || p->teams || p->nkeys > 0;
}

bool mutt_approval_covers(const struct mutt_approval_policy *p, enum mutt_approval_scope scope, const char *config_key)
{
    switch (scope) {
    case MUTT_APPROVAL_RULES: return p->rules;
    case MUTT_APPROVAL_DEV_HOSTS: return p->dev_hosts;
    case MUTT_APPROVAL_TEAMS: return p->teams;
    case MUTT_APPROVAL_CONFIG: break;
    }
    if (p->config_all)
        return true;
    if (!config_key)
        return p->nkeys > 0;
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_resolve(config_key, NULL);
    for (size_t i = 0; def && i < p->nkeys; i++)
        if (strcmp(p->keys[i], def->name) == 0)
            return true;
    return false;
}
