/* Native syslog listeners of the ingest role (CONTRACT D39, D56, D57): SYSLOG_UDP_PORT (RFC 3164
 * and RFC 5424 datagrams) and SYSLOG_TCP_PORT (RFC 6587 octet counting or LF framing, detected
 * per connection), each off while its port is 0. Lines become the relay's events
 * (domain/syslog_parse.c) and go through ingest's group commit (ingest_intake.h). TCP stops
 * reading while an intake is out or Redis is unavailable (the sender is held); UDP drops and
 * counts. Loop thread only. */
#ifndef MUTT_LISTEN_SYSLOG_H
#define MUTT_LISTEN_SYSLOG_H

#include "mutt/ctx.h"

/* Largest syslog message kept (RFC 6587 frames longer than this are cut and counted). */
#define MUTT_SYSLOG_MAX_MSG 65536

extern const struct mutt_stage mutt_listen_syslog_stage;

#endif
