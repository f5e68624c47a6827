/* The SNMP trap listener (issue 15 item 2, CONTRACT D39, D57, D58), part of the ingest role:
 * SNMP_TRAP_PORT (0 = off) on BIND_ADDR, v1 and v2c traps and v2c informs whose community is in
 * SNMP_COMMUNITIES, decoded on MUTT's own UDP socket (net-snmp's parser, never its select loop;
 * domain/snmp_trap.c) into the traphandle's event and handed to a listener intake
 * (listen_intake.h). An INFORM is answered once its event is queued, so a sender whose inform was
 * dropped sends it again. UDP cannot push back: what cannot be queued is dropped and counted in
 * mutt_listener_messages_total{listener="snmp",result}. Loop thread only; one instance. */
#ifndef MUTT_LISTEN_SNMP_H
#define MUTT_LISTEN_SNMP_H

#include "mutt/ctx.h"

extern const struct mutt_stage mutt_listen_snmp_stage;

#endif
