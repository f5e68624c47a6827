/* Command line: options, sub-commands and exit codes (CONTRACT §1, §10: 0 ok, 1 runtime
 * failure, 2 usage/config error). Loads and validates the config, then hands the process to
 * app.c. Nothing here touches the loop. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mutt/adapter_opts.h"
#include "mutt/app.h"
#include "mutt/cli.h"
#include "mutt/config.h"
#include "mutt/log.h"
#include "mutt/pod.h"
#include "mutt/version.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: mutt [--config FILE] [--roles LIST] [--check-config] [--version] [--help]\n"
            "       mutt [--config FILE] <command>\n"
            "\n"
            "Runs the MUTT pipeline stages on one event loop.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   KEY=VALUE config file (default /etc/mutt/mutt.conf, else ./mutt.conf);\n"
            "                      environment variables override it\n"
            "  -r, --roles LIST    all (default) or a comma list of: ingest alert forward remediate web\n"
            "                      retention (env MUTT_ROLES)\n"
            "      --check-config  validate the config and test connectivity; exit 0 ok, 1 failure, 2 invalid\n"
            "  -V, --version       print the version and exit\n"
            "  -h, --help          print this help and exit\n"
            "\n"
            "Commands:\n"
            "  migrate             apply the PostgreSQL schema (versioned, idempotent, safe to run twice)\n"
            "  check-config        same as --check-config\n");
    mutt_cli_usage(out);
    fprintf(out,
            "\n"
            "Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP re-reads LOG_LEVEL, LOG_FORMAT and the\n"
            "file's dynamic-safe keys and reloads the rules cache.\n");
}

static void print_report(const struct mutt_config_report *rep)
{
    for (size_t i = 0; i < rep->n_warnings; i++)
        fprintf(stderr, "%s\n", rep->warnings[i]);
    for (size_t i = 0; i < rep->n_errors; i++)
        fprintf(stderr, "%s\n", rep->errors[i]);
}

/* What the options before the sub-command asked for. */
struct main_args {
    const char *config_path; /* NULL: the default places */
    const char *roles_arg;   /* NULL: MUTT_ROLES or all */
    bool check_config;
};

/* Reads the options up to the sub-command: -1 to go on, else the exit status (--version,
 * --help, usage error). */
static int parse_options(int argc, char **argv, struct main_args *m)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"roles", required_argument, NULL, 'r'},
        {"check-config", no_argument, NULL, 'C'}, {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int opt;
    /* "+" stops at the first sub-command so its own flags are left for it */
    while ((opt = getopt_long(argc, argv, "+c:r:Vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            m->config_path = optarg;
            break;
        case 'r':
            m->roles_arg = optarg;
            break;
        case 'C':
            m->check_config = true;
            break;
        case 'V':
            printf("mutt %s (%s)\n", MUTT_VERSION, MUTT_GIT_REV);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

/* Log level and format from the config, and the pod name (POD_NAME or the default) in pod_name. */
static void configure_logging(const struct mutt_config *cfg, char *pod_name, size_t len)
{
    enum mutt_log_level lvl = MUTT_LOG_INFO;
    enum mutt_log_format fmt = MUTT_LOG_TEXT;
    mutt_log_parse_level(mutt_config_str(cfg, MUTT_CFG_LOG_LEVEL), &lvl);
    mutt_log_parse_format(mutt_config_str(cfg, MUTT_CFG_LOG_FORMAT), &fmt);
    const char *configured_pod = mutt_config_str(cfg, MUTT_CFG_POD_NAME);
    if (configured_pod[0])
        snprintf(pod_name, len, "%s", configured_pod);
    else
        mutt_pod_default_name(pod_name, len);
    mutt_log_configure(fmt, lvl, pod_name);
}

/* No sub-command: the pipeline itself, after the production compliance gate and the optional
 * migration. The exit status. */
static int run_server(struct mutt_config *cfg, const char *pod_name)
{
    if (strcasecmp(mutt_config_str(cfg, MUTT_CFG_MUTT_ENV), "production") == 0 &&
        mutt_cli_compliance_report(cfg, stderr) > 0) {
        /* CONTRACT §2, D25: a critical compliance violation refuses start-up in production */
        fprintf(stderr, "mutt: refusing to start: critical compliance violations (MUTT_ENV=production)\n");
        return 2;
    }
    int rc = 0;
    if (mutt_config_bool(cfg, MUTT_CFG_MIGRATE_ON_START) &&
        (mutt_config_roles(cfg) & (MUTT_ROLE_ALERT | MUTT_ROLE_WEB | MUTT_ROLE_RETENTION)))
        rc = mutt_cli_migrate(cfg); /* before the loop exists: blocking is fine here */
    if (rc == 0)
        rc = mutt_app_run(cfg, pod_name);
    return rc;
}

int main(int argc, char **argv)
{
    struct main_args m = {0};
    int status = parse_options(argc, argv, &m);
    if (status >= 0)
        return status;
    bool check_config = m.check_config;
    const char *roles_arg = m.roles_arg;
    const char *command = optind < argc ? argv[optind] : NULL;
    /* words after the sub-command are its own arguments (src/cli) */
    int cmd_argc = command ? argc - optind - 1 : 0;
    char **cmd_argv = command ? argv + optind + 1 : NULL;
    if (command && strcmp(command, "check-config") == 0) {
        check_config = true;
        command = NULL;
    }
    if (command && !mutt_cli_known(command)) {
        fprintf(stderr, "mutt: unknown command '%s' (try --help)\n", command);
        return 2;
    }

    unsigned roles = 0;
    /* MUTT_ROLES from the environment is validated by the config loader itself */
    if (roles_arg != NULL) {
        char bad[64] = "";
        if (mutt_roles_parse(roles_arg, &roles, bad, sizeof(bad)) != 0) {
            fprintf(stderr,
                    "config error: MUTT_ROLES=%s: unknown role '%s'; valid roles: ingest, alert, forward, "
                    "remediate, web, retention, all\n",
                    roles_arg, bad);
            return 2;
        }
    }
    /* `migrate` needs only the database keys: validate as if no role were on */
    if (command != NULL)
        roles = MUTT_ROLE_NONE;
    struct mutt_config_report rep = {0};
    struct mutt_config *cfg = mutt_config_load(m.config_path, NULL, roles, &rep);
    print_report(&rep);
    bool bad_config = cfg == NULL || rep.n_errors > 0;
    mutt_config_report_free(&rep);
    if (bad_config) {
        mutt_config_destroy(cfg);
        return 2;
    }
    char pod_name[300];
    configure_logging(cfg, pod_name, sizeof(pod_name));

    int rc;
    if (check_config)
        rc = mutt_cli_run("check-config", cmd_argc, cmd_argv, cfg);
    else if (command)
        rc = mutt_cli_run(command, cmd_argc, cmd_argv, cfg);
    else
        rc = run_server(cfg, pod_name);
    mutt_config_destroy(cfg);
    return rc;
}
