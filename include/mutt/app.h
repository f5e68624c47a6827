/* The long-running `mutt` process: adapters, HTTP front end, pod identity, stages, signals and
 * the graceful drain. main.c parses the command line and hands over here. */
#ifndef MUTT_APP_H
#define MUTT_APP_H

struct mutt_config;

/* Runs until SIGTERM/SIGINT (exit code 0), a pod-name conflict (2) or a start-up failure (1).
 * Borrows cfg. */
int mutt_app_run(struct mutt_config *cfg, const char *pod_name);

#endif
