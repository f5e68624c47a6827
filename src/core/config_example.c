/* Writes mutt.conf.example from the key table (config_keys.c): every static key with its
 * default, range, aliases and the roles that need it, grouped by role. Pure text generation;
 * a unit test keeps the committed file equal to this output. */
#include <stdio.h>
#include <string.h>

#include "mutt/config.h"


static const struct {
    const char *group;
    const char *title;
} example_groups[] = {
    { "process", "Process: roles, identity, logging, heartbeats" },
    { "http", "HTTP listeners" },
    { "redis", "Redis" },
    { "postgres", "PostgreSQL" },
    { "ingest", "Ingest API (role ingest)" },
    { "alert", "Alert stage (role alert)" },
    { "forward", "Forward stage: webhook delivery (role forward)" },
    { "remediate", "Remediation: DLQ replay (role remediate)" },
    { "web", "Management API and dashboard (role web)" },
    { "lineage", "Event lineage: timelines of GET /events and `mutt trace` (every stage writes)" },
    { "retention", "Retention (role retention, or `mutt retention`)" },
    { "vault", "Vault and secrets" },
};

static const char *type_name(enum mutt_cfg_type t)
{
    switch (t) {
    case MUTT_CFG_T_STRING: return "string";
    case MUTT_CFG_T_INT: return "int";
    case MUTT_CFG_T_BOOL: return "bool";
    case MUTT_CFG_T_DOUBLE: return "number";
    case MUTT_CFG_T_PORT: return "port";
    case MUTT_CFG_T_SECRET: return "secret";
    case MUTT_CFG_T_PORT_LIST: return "port list";
    }
    return "string";
}

static void write_banner(FILE *out, const char *title)
{
    fprintf(out, "\n# ==============================================================================\n");
    fprintf(out, "# %s\n", title);
    fprintf(out, "# ==============================================================================\n");
}

static void write_key(FILE *out, const struct mutt_cfg_def *d)
{
    fprintf(out, "\n# %s (%s", d->description, type_name(d->type));
    if (d->type == MUTT_CFG_T_PORT || d->type == MUTT_CFG_T_PORT_LIST)
        fprintf(out, ", 1..65535");
    else if ((d->type == MUTT_CFG_T_INT || d->type == MUTT_CFG_T_DOUBLE) && mutt_cfg_def_has_range(d)) {
        if (d->type == MUTT_CFG_T_DOUBLE)
            fprintf(out, ", %g..%g", d->min, d->max);
        else if (d->max >= MUTT_CFG_NOMAX_THRESHOLD)
            fprintf(out, ", >= %lld", (long long)d->min);
        else
            fprintf(out, ", %lld..%lld", (long long)d->min, (long long)d->max);
    }
    if (d->aliases[0]) {
        fprintf(out, "; aliases: ");
        for (size_t a = 0; a < 4 && d->aliases[a]; a++)
            fprintf(out, "%s%s", a ? ", " : "", d->aliases[a]);
    }
    if (d->required_roles) {
        char names[128];
        fprintf(out, "; required for: %s", mutt_roles_format(d->required_roles, names, sizeof names));
    }
    if (d->dynamic_safe)
        fprintf(out, "; reloaded on SIGHUP");
    fprintf(out, ")\n#%s=%s\n", d->name, d->default_value ? d->default_value : "");
}

void mutt_config_write_example(FILE *out)
{
    fputs("# mutt.conf.example: every static configuration key of MUTT with its built-in default.\n"
          "# Generated from the key table (src/core/config_keys.c) by mutt_config_write_example();\n"
          "# a unit test fails when this file and the table drift apart, so regenerate, do not edit.\n"
          "#\n"
          "# Format: one KEY=VALUE per line. Lines starting with # are comments; blank lines are\n"
          "# ignored; an optional `export ` prefix and matching single or double quotes around the\n"
          "# value are accepted; whitespace around key and value is trimmed.\n"
          "#\n"
          "# Precedence: built-in default < this file < environment variable. Dynamic keys\n"
          "# (`mutt config list`) can further be overridden at run time in Redis.\n"
          "# Unknown keys in this file are warned about (with the nearest known key); unknown\n"
          "# environment variables are ignored. Setting two spellings of one key (see the alias\n"
          "# table at the end) to different values is an error.\n"
          "# Keys marked \"reloaded on SIGHUP\" are re-read from this file on SIGHUP; all others\n"
          "# need a restart. Values of type secret are never printed.\n"
          "#\n"
          "# Default location: /etc/mutt/mutt.conf, else ./mutt.conf; `mutt --config FILE` overrides.\n"
          "# Every key below is commented out and shows its default: uncomment to change it.\n",
          out);
    for (size_t g = 0; g < sizeof example_groups / sizeof example_groups[0]; g++) {
        write_banner(out, example_groups[g].title);
        for (int k = 0; k < MUTT_CFG__COUNT; k++)
            if (strcmp(mutt_cfg_defs[k].group, example_groups[g].group) == 0)
                write_key(out, &mutt_cfg_defs[k]);
    }
    write_banner(out, "Aliases: both spellings are accepted, in this file and in the environment");
    fputs("#\n", out);
    for (int k = 0; k < MUTT_CFG__COUNT; k++)
        for (size_t a = 0; a < 4 && mutt_cfg_defs[k].aliases[a]; a++)
            fprintf(out, "# %s -> %s\n", mutt_cfg_defs[k].aliases[a], mutt_cfg_defs[k].name);
    fputs("# LOG_JSON_ENABLED=true -> LOG_FORMAT=json (false -> LOG_FORMAT=text)\n"
          "# VAULT_SECRETS_PATH=a/b/c -> VAULT_MOUNT_PATH=a and VAULT_SECRET_PATH=b/c\n",
          out);
}
