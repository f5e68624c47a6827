/* domain/snmp_trap.c: datagram decoding, community check, RFC 3584 v1 -> v2 mapping, the
 * traphandle-shaped event (values as snmptrapd prints them for a traphandle, then unquoted), the
 * INFORM Response, and an oid_prefix rule matching the event's trap_oid unchanged. Datagrams are
 * encoded here with net-snmp's own builder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <jansson.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/rules.h"
#include "mutt/snmp_trap.h"

static const oid SYSUPTIME[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
static const oid TRAPOID[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
static const oid CISCO_TRAP[] = {1, 3, 6, 1, 4, 1, 9, 9, 41, 2, 0, 1};
static const oid VAR_STR[] = {1, 3, 6, 1, 4, 1, 9, 9, 41, 1, 2, 3, 1, 5, 1};
static const oid VAR_INT[] = {1, 3, 6, 1, 4, 1, 9, 9, 41, 1, 2, 3, 1, 2, 1};
static const oid ENTERPRISE[] = {1, 3, 6, 1, 4, 1, 2636};
#define N(a) (sizeof(a) / sizeof(a)[0])

/* version + community + the PDU, as a sender puts them on the wire */
static size_t encode(long version, const char *community, netsnmp_pdu *pdu, uint8_t *out, size_t cap)
{
    u_char pdubuf[4096], hdr[300];
    size_t left = sizeof pdubuf, hl = sizeof hdr, ol = cap;
    u_char *end = snmp_pdu_build(pdu, pdubuf, &left);
    assert_non_null(end);
    u_char *p = asn_build_int(hdr, &hl, (u_char)(ASN_UNIVERSAL | ASN_PRIMITIVE | ASN_INTEGER), &version, sizeof version);
    p = asn_build_string(p, &hl, (u_char)(ASN_UNIVERSAL | ASN_PRIMITIVE | ASN_OCTET_STR), (const u_char *)community,
                         strlen(community));
    assert_non_null(p);
    size_t hdrlen = (size_t)(p - hdr), pdulen = (size_t)(end - pdubuf);
    u_char *q = asn_build_sequence(out, &ol, (u_char)(ASN_SEQUENCE | ASN_CONSTRUCTOR), hdrlen + pdulen);
    assert_non_null(q);
    memcpy(q, hdr, hdrlen);
    memcpy(q + hdrlen, pdubuf, pdulen);
    return (size_t)(q - out) + hdrlen + pdulen;
}

static netsnmp_pdu *v2_notification(int command)
{
    netsnmp_pdu *pdu = snmp_pdu_create(command);
    pdu->version = SNMP_VERSION_2c;
    pdu->reqid = 4711;
    u_long ticks = 4242;
    snmp_pdu_add_variable(pdu, SYSUPTIME, N(SYSUPTIME), ASN_TIMETICKS, &ticks, sizeof ticks);
    snmp_pdu_add_variable(pdu, TRAPOID, N(TRAPOID), ASN_OBJECT_ID, CISCO_TRAP, sizeof CISCO_TRAP);
    const char *s = "Gi0/3 \"uplink\"\tdown";
    snmp_pdu_add_variable(pdu, VAR_STR, N(VAR_STR), ASN_OCTET_STR, s, strlen(s));
    long i = 3;
    snmp_pdu_add_variable(pdu, VAR_INT, N(VAR_INT), ASN_INTEGER, &i, sizeof i);
    return pdu;
}

static int setup(void **state)
{
    (void)state;
    mutt_snmp_lib_setup();
    return 0;
}

static void test_community_list_is_exact_and_trimmed(void **state)
{
    (void)state;
    assert_true(mutt_snmp_community_allowed("public", "public", 6));
    assert_true(mutt_snmp_community_allowed("public, ops", "ops", 3));
    assert_true(mutt_snmp_community_allowed(" ,,x , y", "x", 1));
    assert_false(mutt_snmp_community_allowed("public", "Public", 6));
    assert_false(mutt_snmp_community_allowed("public", "pub", 3));
    assert_false(mutt_snmp_community_allowed("public", "publicx", 7));
    assert_false(mutt_snmp_community_allowed("public,,", "", 0));
    assert_false(mutt_snmp_community_allowed("", "public", 6));
}

static void test_v1_trap_oid_follows_rfc3584(void **state)
{
    (void)state;
    unsigned long ent[] = {1, 3, 6, 1, 4, 1, 9}, out[MUTT_SNMP_OID_MAX];
    for (long g = 0; g <= 5; g++) {
        assert_int_equal(10, mutt_snmp_v1_trap_oid(ent, 7, g, 99, out, MUTT_SNMP_OID_MAX));
        unsigned long want[] = {1, 3, 6, 1, 6, 3, 1, 1, 5, (unsigned long)g + 1};
        assert_memory_equal(want, out, sizeof want);
    }
    assert_int_equal(9, mutt_snmp_v1_trap_oid(ent, 7, 6, 17, out, MUTT_SNMP_OID_MAX));
    unsigned long spec[] = {1, 3, 6, 1, 4, 1, 9, 0, 17};
    assert_memory_equal(spec, out, sizeof spec);
    assert_int_equal(MUTT_EINVAL, mutt_snmp_v1_trap_oid(ent, 7, 7, 0, out, MUTT_SNMP_OID_MAX));
    assert_int_equal(MUTT_EINVAL, mutt_snmp_v1_trap_oid(ent, 7, -1, 0, out, MUTT_SNMP_OID_MAX));
    assert_int_equal(MUTT_EINVAL, mutt_snmp_v1_trap_oid(ent, 7, 6, 17, out, 8));
}

static void test_v2c_trap_becomes_the_traphandle_event(void **state)
{
    (void)state;
    uint8_t wire[4096];
    netsnmp_pdu *pdu = v2_notification(SNMP_MSG_TRAP2);
    size_t len = encode(SNMP_VERSION_2c, "public", pdu, wire, sizeof wire);
    snmp_free_pdu(pdu);

    struct mutt_snmp_msg m;
    assert_int_equal(0, mutt_snmp_decode(wire, len, &m));
    assert_int_equal(SNMP_VERSION_2c, m.version);
    assert_string_equal("public", m.community);
    assert_true(mutt_snmp_is_notification(&m));
    assert_false(mutt_snmp_is_inform(&m));
    json_t *ev = mutt_snmp_trap_event(&m, NULL, "192.0.2.7", "2026-01-01T00:00:00Z");
    mutt_snmp_msg_dispose(&m);
    assert_non_null(ev);
    char *s = json_dumps(ev, JSON_COMPACT);
    /* the traphandle's keys in its order; the string keeps snmptrapd's escaped quotes, the tab
     * became a space (js()) */
    assert_string_equal("{\"hostname\":\"192.0.2.7\",\"source_ip\":\"192.0.2.7\","
                        "\"trap_oid\":\".1.3.6.1.4.1.9.9.41.2.0.1\",\"uptime\":\"0:0:00:42.42\","
                        "\"timestamp\":\"2026-01-01T00:00:00Z\",\"source\":\"snmptrapd\",\"variables\":["
                        "{\"oid\":\".1.3.6.1.4.1.9.9.41.1.2.3.1.5.1\",\"value\":\"Gi0/3 \\\\\\\"uplink\\\\\\\" down\"},"
                        "{\"oid\":\".1.3.6.1.4.1.9.9.41.1.2.3.1.2.1\",\"value\":\"3\"}]}",
                        s);
    free(s);
    json_decref(ev);
}

static void test_v1_traps_get_the_v2_trap_oid_and_rfc3584_varbinds(void **state)
{
    (void)state;
    uint8_t wire[4096];
    netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_TRAP);
    pdu->version = SNMP_VERSION_1;
    pdu->enterprise = snmp_duplicate_objid(ENTERPRISE, N(ENTERPRISE));
    pdu->enterprise_length = N(ENTERPRISE);
    pdu->trap_type = 6;
    pdu->specific_type = 42;
    pdu->time = 777;
    const uint8_t agent[4] = {198, 51, 100, 1};
    memcpy(pdu->agent_addr, agent, 4);
    snmp_pdu_add_variable(pdu, VAR_STR, N(VAR_STR), ASN_OCTET_STR, "x", 1);
    size_t len = encode(SNMP_VERSION_1, "ops", pdu, wire, sizeof wire);
    snmp_free_pdu(pdu);

    struct mutt_snmp_msg m;
    assert_int_equal(0, mutt_snmp_decode(wire, len, &m));
    json_t *ev = mutt_snmp_trap_event(&m, "router7", "192.0.2.7", "t");
    mutt_snmp_msg_dispose(&m);
    assert_non_null(ev);
    assert_string_equal("router7", json_string_value(json_object_get(ev, "hostname")));
    assert_string_equal(".1.3.6.1.4.1.2636.0.42", json_string_value(json_object_get(ev, "trap_oid")));
    assert_string_equal("0:0:00:07.77", json_string_value(json_object_get(ev, "uptime")));
    char *vars = json_dumps(json_object_get(ev, "variables"), JSON_COMPACT);
    assert_string_equal("[{\"oid\":\".1.3.6.1.4.1.9.9.41.1.2.3.1.5.1\",\"value\":\"x\"},"
                        "{\"oid\":\".1.3.6.1.6.3.18.1.3.0\",\"value\":\"198.51.100.1\"},"
                        "{\"oid\":\".1.3.6.1.6.3.18.1.4.0\",\"value\":\"ops\"},"
                        "{\"oid\":\".1.3.6.1.6.3.1.1.4.3.0\",\"value\":\".1.3.6.1.4.1.2636\"}]",
                        vars);
    free(vars);
    json_decref(ev);
}

static void test_inform_response_echoes_request_id_and_varbinds(void **state)
{
    (void)state;
    uint8_t wire[4096], resp[4096];
    netsnmp_pdu *pdu = v2_notification(SNMP_MSG_INFORM);
    size_t len = encode(SNMP_VERSION_2c, "public", pdu, wire, sizeof wire);
    snmp_free_pdu(pdu);
    struct mutt_snmp_msg m, r;
    assert_int_equal(0, mutt_snmp_decode(wire, len, &m));
    assert_true(mutt_snmp_is_inform(&m));
    long n = mutt_snmp_inform_response(&m, resp, sizeof resp);
    assert_true(n > 0);
    assert_int_equal(MUTT_EFULL, mutt_snmp_inform_response(&m, resp, 10));
    mutt_snmp_msg_dispose(&m);
    assert_int_equal(0, mutt_snmp_decode(resp, (size_t)n, &r));
    assert_int_equal(SNMP_MSG_RESPONSE, r.pdu->command);
    assert_int_equal(4711, r.pdu->reqid);
    assert_int_equal(0, r.pdu->errstat);
    assert_string_equal("public", r.community);
    int nv = 0;
    for (netsnmp_variable_list *v = r.pdu->variables; v; v = v->next_variable)
        nv++;
    assert_int_equal(4, nv);
    assert_false(mutt_snmp_is_notification(&r));
    mutt_snmp_msg_dispose(&r);
}

static void test_bad_datagrams_are_refused(void **state)
{
    (void)state;
    struct mutt_snmp_msg m;
    assert_int_equal(MUTT_EINVAL, mutt_snmp_decode((const uint8_t *)"not snmp", 8, &m));
    assert_null(m.pdu);
    /* SEQUENCE { INTEGER 3 (SNMPv3) ... } */
    const uint8_t v3[] = {0x30, 0x03, 0x02, 0x01, 0x03};
    assert_int_equal(MUTT_ERANGE, mutt_snmp_decode(v3, sizeof v3, &m));
    /* a truncated trap */
    uint8_t wire[4096];
    netsnmp_pdu *pdu = v2_notification(SNMP_MSG_TRAP2);
    size_t len = encode(SNMP_VERSION_2c, "public", pdu, wire, sizeof wire);
    snmp_free_pdu(pdu);
    assert_int_equal(MUTT_EINVAL, mutt_snmp_decode(wire, len - 5, &m));
    assert_null(m.pdu);
    /* a GET is SNMP but no notification */
    pdu = snmp_pdu_create(SNMP_MSG_GET);
    snmp_add_null_var(pdu, SYSUPTIME, N(SYSUPTIME));
    len = encode(SNMP_VERSION_2c, "public", pdu, wire, sizeof wire);
    snmp_free_pdu(pdu);
    assert_int_equal(0, mutt_snmp_decode(wire, len, &m));
    assert_false(mutt_snmp_is_notification(&m));
    assert_null(mutt_snmp_trap_event(&m, NULL, "192.0.2.1", "t"));
    mutt_snmp_msg_dispose(&m);
    /* a notification without snmpTrapOID.0 gives no event (the traphandle posts none either) */
    pdu = snmp_pdu_create(SNMP_MSG_TRAP2);
    snmp_pdu_add_variable(pdu, VAR_STR, N(VAR_STR), ASN_OCTET_STR, "x", 1);
    len = encode(SNMP_VERSION_2c, "public", pdu, wire, sizeof wire);
    snmp_free_pdu(pdu);
    assert_int_equal(0, mutt_snmp_decode(wire, len, &m));
    assert_null(mutt_snmp_trap_event(&m, NULL, "192.0.2.1", "t"));
    mutt_snmp_msg_dispose(&m);
}

/* An existing oid_prefix rule matches the native event's trap_oid, and ingest's normalisation
 * builds the message from it (D9), as for the traphandle's POST. */
static void test_oid_prefix_rule_matches_the_native_event(void **state)
{
    (void)state;
    uint8_t wire[4096];
    netsnmp_pdu *pdu = v2_notification(SNMP_MSG_TRAP2);
    size_t len = encode(SNMP_VERSION_2c, "public", pdu, wire, sizeof wire);
    snmp_free_pdu(pdu);
    struct mutt_snmp_msg m;
    assert_int_equal(0, mutt_snmp_decode(wire, len, &m));
    json_t *ev = mutt_snmp_trap_event(&m, NULL, "192.0.2.7", "2026-01-01T00:00:00Z");
    mutt_snmp_msg_dispose(&m);
    struct mutt_event_rules er;
    mutt_event_rules_init_default(&er);
    char err[256] = "";
    assert_int_equal(0, mutt_event_normalize(ev, &er, err, sizeof err, NULL));
    const char *msg = json_string_value(json_object_get(ev, "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "SNMP trap .1.3.6.1.4.1.9.9.41.2.0.1"));

    struct mutt_rule rules[] = {
        {.id = 1, .trap_oid = ".1.3.6.1.4.1.9.9.41", .syslog_severity = -1, .match_type = MUTT_MATCH_OID_PREFIX,
         .priority = 10, .prod_handling = "Page_and_ticket", .dev_handling = "Ignore", .team_assignment = "NETO",
         .is_active = true},
        {.id = 2, .trap_oid = ".1.3.6.1.4.1.9.9.4", .syslog_severity = -1, .match_type = MUTT_MATCH_OID_PREFIX,
         .priority = 1, .prod_handling = "Ignore", .dev_handling = "Ignore", .team_assignment = "X", .is_active = true},
    };
    struct mutt_ruleset *rs = mutt_rules_compile(rules, 2, err, sizeof err);
    assert_non_null(rs);
    struct mutt_match_scratch *sc = mutt_match_scratch_create();
    const struct mutt_rule *hit = mutt_rules_first_match(rs, msg, strlen(msg),
                                                         json_string_value(json_object_get(ev, "trap_oid")), -1, sc);
    assert_non_null(hit);
    assert_int_equal(1, hit->id); /* ".1.3.6.1.4.1.9.9.4" is not a prefix at a dot boundary */
    mutt_match_scratch_destroy(sc);
    mutt_rules_destroy(rs);
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_community_list_is_exact_and_trimmed),
        cmocka_unit_test(test_v1_trap_oid_follows_rfc3584),
        cmocka_unit_test(test_v2c_trap_becomes_the_traphandle_event),
        cmocka_unit_test(test_v1_traps_get_the_v2_trap_oid_and_rfc3584_varbinds),
        cmocka_unit_test(test_inform_response_echoes_request_id_and_varbinds),
        cmocka_unit_test(test_bad_datagrams_are_refused),
        cmocka_unit_test(test_oid_prefix_rule_matches_the_native_event),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
