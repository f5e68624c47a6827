/* SNMP traps as events (issue 15, CONTRACT D39, D57, D58): decode a v1/v2c datagram with
 * net-snmp's BER and PDU parsers, check its community, map a v1 trap to its v2 trap OID (RFC 3584
 * §3), and build the event the shipped snmptrapd traphandle posts (conf/snmptrapd/mutt-traphandle:
 * numeric OIDs, values as snmptrapd prints them for a traphandle). Also encodes the Response PDU
 * that answers a v2c INFORM. Pure: no I/O, no clock; the library must have been set up once with
 * mutt_snmp_lib_setup() (value formatting reads its global output options). Loop thread only
 * (net-snmp's output options are process-wide). */
#ifndef MUTT_SNMP_TRAP_H
#define MUTT_SNMP_TRAP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snmp_pdu; /* net-snmp's netsnmp_pdu */

#define MUTT_SNMP_COMMUNITY_MAX 255
#define MUTT_SNMP_OID_MAX 128 /* sub-identifiers, net-snmp's MAX_OID_LEN */

/* One decoded datagram. pdu is owned: release with mutt_snmp_msg_dispose. */
struct mutt_snmp_msg {
    long version; /* 0 = v1, 1 = v2c */
    char community[MUTT_SNMP_COMMUNITY_MAX + 1];
    size_t community_len;
    struct snmp_pdu *pdu;
};

/* Sets net-snmp's output options the traphandle's values are printed with (snmptrapd's for a
 * traphandle: numeric OIDs, values without their type, timeticks as D:H:MM:SS.hh) and tells the
 * library to read no configuration and keep no persistent state (D58). Never calls init_snmp, so
 * no MIB, /etc/snmp file or ~/.snmp directory is touched. Idempotent. */
void mutt_snmp_lib_setup(void);

/* Parses one datagram (message header + PDU). Returns 0, MUTT_EINVAL (not BER, or truncated),
 * MUTT_ERANGE (SNMPv3 or an unknown version), MUTT_ENOMEM. On failure out->pdu is NULL. */
int mutt_snmp_decode(const uint8_t *buf, size_t len, struct mutt_snmp_msg *out);
void mutt_snmp_msg_dispose(struct mutt_snmp_msg *m);

/* True when the PDU is a notification: a v1 Trap, a v2 Trap or an InformRequest. */
bool mutt_snmp_is_notification(const struct mutt_snmp_msg *m);
bool mutt_snmp_is_inform(const struct mutt_snmp_msg *m);

/* True when community (len bytes) equals one entry of csv (comma list, entries trimmed of
 * spaces; empty entries ignored). Comparison is exact (communities are case-sensitive). */
bool mutt_snmp_community_allowed(const char *csv, const char *community, size_t len);

/* RFC 3584 §3.1: the snmpTrapOID of a v1 trap. generic 0..5 -> 1.3.6.1.6.3.1.1.5.(generic+1);
 * 6 (enterpriseSpecific) -> enterprise.0.specific. Writes at most `cap` sub-identifiers to out and
 * returns their count, or MUTT_EINVAL (generic out of 0..6, or the result would not fit). */
int mutt_snmp_v1_trap_oid(const unsigned long *enterprise, size_t enterprise_len, long generic, long specific,
                          unsigned long *out, size_t cap);

/* The event the traphandle would post for this trap:
 *   {"hostname","source_ip","trap_oid","uptime","timestamp","source":"snmptrapd",
 *    "variables":[{"oid","value"},...]}
 * sysUpTime.0 and snmpTrapOID.0 become uptime and trap_oid; a v1 trap also gets the varbinds
 * snmptrapd appends (RFC 3584 §3.1: snmpTrapAddress.0, snmpTrapCommunity.0,
 * snmpTrapEnterprise.0). hostname may be NULL (then source_ip, as the traphandle does when
 * snmptrapd names no host). Returns a new object, or NULL (no trap OID, or out of memory). */
json_t *mutt_snmp_trap_event(const struct mutt_snmp_msg *m, const char *hostname, const char *source_ip,
                             const char *timestamp);

/* Encodes the Response PDU answering an InformRequest (same request id and varbinds, no error;
 * RFC 3416 §4.2.7) into buf. Returns the length, or MUTT_EFULL / MUTT_EINVAL / MUTT_ENOMEM. */
long mutt_snmp_inform_response(const struct mutt_snmp_msg *m, uint8_t *buf, size_t cap);

#endif
