/* The SNMP trap decoder (domain/snmp_trap.c) on arbitrary datagrams. Properties: no crash or
 * leak; a notification that yields an event yields a JSON object with string trap_oid, uptime,
 * source_ip and an array of {oid,value} strings; an inform's Response decodes again as a
 * Response with the same request id. */
#include "fuzz.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <jansson.h>

#include "mutt/snmp_trap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        mutt_snmp_lib_setup();
        ready = 1;
    }
    struct mutt_snmp_msg m;
    if (mutt_snmp_decode(data, size, &m) != 0) {
        FUZZ_CHECK(m.pdu == NULL, "a refused datagram left a PDU");
        return 0;
    }
    (void)mutt_snmp_community_allowed("public, ops", m.community, m.community_len);
    json_t *ev = mutt_snmp_trap_event(&m, NULL, "192.0.2.1", "2026-01-01T00:00:00Z");
    if (ev) {
        FUZZ_CHECK(mutt_snmp_is_notification(&m), "an event from a non-notification");
        static const char *const fields[] = {"hostname", "source_ip", "trap_oid", "uptime", "timestamp"};
        for (size_t i = 0; i < 5; i++)
            FUZZ_CHECK(json_is_string(json_object_get(ev, fields[i])), "no string %s", fields[i]);
        json_t *vars = json_object_get(ev, "variables"), *v;
        size_t i;
        FUZZ_CHECK(json_is_array(vars), "variables is not an array");
        json_array_foreach(vars, i, v)
        {
            FUZZ_CHECK(json_is_string(json_object_get(v, "oid")) && json_is_string(json_object_get(v, "value")),
                       "variable %zu is not {oid,value}", i);
        }
        json_decref(ev);
    }
    if (mutt_snmp_is_inform(&m)) {
        static uint8_t resp[65536 + 512];
        long n = mutt_snmp_inform_response(&m, resp, sizeof resp);
        if (n > 0) {
            struct mutt_snmp_msg r;
            FUZZ_CHECK(mutt_snmp_decode(resp, (size_t)n, &r) == 0, "our Response does not decode");
            FUZZ_CHECK(r.pdu->command == SNMP_MSG_RESPONSE && r.pdu->reqid == m.pdu->reqid, "Response mismatch");
            mutt_snmp_msg_dispose(&r);
        }
    }
    mutt_snmp_msg_dispose(&m);
    return 0;
}
