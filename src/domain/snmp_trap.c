/* SNMP datagram -> traphandle-shaped event (snmp_trap.h). net-snmp does the BER and the value
 * printing, so values read exactly as snmptrapd hands them to a traphandle; this file only
 * reproduces what conf/snmptrapd/mutt-traphandle then does to each line. */
#include "mutt/snmp_trap.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"

/* snmptrapd's objects (SNMPv2-MIB, SNMP-COMMUNITY-MIB) */
static const oid OID_SYSUPTIME[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
static const oid OID_TRAPOID[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
static const oid OID_TRAPADDRESS[] = {1, 3, 6, 1, 6, 3, 18, 1, 3, 0};
static const oid OID_TRAPCOMMUNITY[] = {1, 3, 6, 1, 6, 3, 18, 1, 4, 0};
static const oid OID_TRAPENTERPRISE[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 3, 0};
static const oid OID_SNMPTRAPS[] = {1, 3, 6, 1, 6, 3, 1, 1, 5};
#define NOID(a) (sizeof(a) / sizeof(a)[0])

void mutt_snmp_lib_setup(void)
{
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
    /* snmptrapd with `outputOption n` prints a traphandle's varbinds quickly (no type names) */
    netsnmp_ds_set_int(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_OID_OUTPUT_FORMAT, NETSNMP_OID_OUTPUT_NUMERIC);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_QUICK_PRINT, 1);
}

int mutt_snmp_decode(const uint8_t *buf, size_t len, struct mutt_snmp_msg *out)
{
    memset(out, 0, sizeof *out);
    u_char *data = (u_char *)buf, type = 0;
    size_t left = len;
    data = asn_parse_sequence(data, &left, &type, (u_char)(ASN_SEQUENCE | ASN_CONSTRUCTOR), "message");
    if (!data)
        return MUTT_EINVAL;
    long version = -1;
    data = asn_parse_int(data, &left, &type, &version, sizeof version);
    if (!data)
        return MUTT_EINVAL;
    if (version != SNMP_VERSION_1 && version != SNMP_VERSION_2c)
        return MUTT_ERANGE;
    size_t clen = MUTT_SNMP_COMMUNITY_MAX;
    data = asn_parse_string(data, &left, &type, (u_char *)out->community, &clen);
    if (!data)
        return MUTT_EINVAL;
    out->community[clen] = '\0';
    out->community_len = clen;
    out->version = version;
    netsnmp_pdu *pdu = snmp_pdu_create(0);
    if (!pdu)
        return MUTT_ENOMEM;
    pdu->version = version;
    if (snmp_pdu_parse(pdu, data, &left) != 0) {
        snmp_free_pdu(pdu);
        return MUTT_EINVAL;
    }
    /* a v1 Trap PDU in a v2c message (or the reverse) is malformed (RFC 3416 §3) */
    if ((pdu->command == SNMP_MSG_TRAP) != (version == SNMP_VERSION_1) &&
        (pdu->command == SNMP_MSG_TRAP || pdu->command == SNMP_MSG_TRAP2 || pdu->command == SNMP_MSG_INFORM)) {
        snmp_free_pdu(pdu);
        return MUTT_EINVAL;
    }
    out->pdu = pdu;
    return 0;
}

void mutt_snmp_msg_dispose(struct mutt_snmp_msg *m)
{
    if (m->pdu)
        snmp_free_pdu(m->pdu);
    m->pdu = NULL;
}

bool mutt_snmp_is_notification(const struct mutt_snmp_msg *m)
{
    int c = m->pdu ? m->pdu->command : 0;
    return c == SNMP_MSG_TRAP || c == SNMP_MSG_TRAP2 || c == SNMP_MSG_INFORM;
}

bool mutt_snmp_is_inform(const struct mutt_snmp_msg *m)
{
    return m->pdu && m->pdu->command == SNMP_MSG_INFORM;
}

bool mutt_snmp_community_allowed(const char *csv, const char *community, size_t len)
{
    if (!csv || !community)
        return false;
    const char *p = csv;
    while (*p) {
        const char *e = strchr(p, ',');
        if (!e)
            e = p + strlen(p);
        const char *a = p, *b = e;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a && (size_t)(b - a) == len && memcmp(a, community, len) == 0)
            return true;
        p = *e ? e + 1 : e;
    }
    return false;
}

int mutt_snmp_v1_trap_oid(const unsigned long *enterprise, size_t enterprise_len, long generic, long specific,
                          unsigned long *out, size_t cap)
{
    if (generic < 0 || generic > 6)
        return MUTT_EINVAL;
    if (generic < 6) {
        if (cap < NOID(OID_SNMPTRAPS) + 1)
            return MUTT_EINVAL;
        for (size_t i = 0; i < NOID(OID_SNMPTRAPS); i++)
            out[i] = OID_SNMPTRAPS[i];
        out[NOID(OID_SNMPTRAPS)] = (unsigned long)generic + 1;
        return (int)NOID(OID_SNMPTRAPS) + 1;
    }
    if (specific < 0 || enterprise_len + 2 > cap)
        return MUTT_EINVAL;
    for (size_t i = 0; i < enterprise_len; i++)
        out[i] = enterprise[i];
    out[enterprise_len] = 0;
    out[enterprise_len + 1] = (unsigned long)specific;
    return (int)enterprise_len + 2;
}

/* ---- the traphandle's line handling --------------------------------------------------------- */

/* js(): tabs become spaces, other control bytes are dropped (JSON escaping is jansson's). */
static void js_clean(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        unsigned char c = (unsigned char)*r;
        if (c == '\t')
            *w++ = ' ';
        else if (c >= 0x20)
            *w++ = (char)c;
    }
    *w = '\0';
}

/* unquote(): a value wholly in double quotes loses them (escapes inside are kept as printed). */
static void unquote(char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
}

static bool oid_is(const oid *name, size_t len, const oid *want, size_t wlen)
{
    return len == wlen && snmp_oid_compare(name, len, want, wlen) == 0;
}

/* snprint_objid / snprint_value into a buffer that grows; NULL on OOM. */
static char *fmt_oid(const oid *name, size_t len)
{
    size_t cap = 256;
    for (;;) {
        char *b = malloc(cap);
        if (!b)
            return NULL;
        if (snprint_objid(b, cap, name, len) >= 0)
            return b;
        free(b);
        if (cap > (1u << 20))
            return NULL;
        cap *= 4;
    }
}

static char *fmt_value(const netsnmp_variable_list *v)
{
    size_t cap = 256;
    for (;;) {
        char *b = malloc(cap);
        if (!b)
            return NULL;
        if (snprint_value(b, cap, v->name, v->name_length, v) >= 0)
            return b;
        free(b);
        if (cap > (1u << 22))
            return NULL;
        cap *= 4;
    }
}

struct builder {
    json_t *vars;
    char *trap_oid;
    char *uptime;
    bool oom;
};

/* One "OID VALUE" line as the traphandle reads it. */
static void add_line(struct builder *b, const netsnmp_variable_list *v)
{
    char *o = fmt_oid(v->name, v->name_length), *val = fmt_value(v);
    if (!o || !val) {
        free(o);
        free(val);
        b->oom = true;
        return;
    }
    js_clean(o);
    if (oid_is(v->name, v->name_length, OID_TRAPOID, NOID(OID_TRAPOID))) {
        js_clean(val);
        free(b->trap_oid);
        b->trap_oid = val;
        free(o);
        return;
    }
    if (oid_is(v->name, v->name_length, OID_SYSUPTIME, NOID(OID_SYSUPTIME))) {
        js_clean(val);
        free(b->uptime);
        b->uptime = val;
        free(o);
        return;
    }
    unquote(val);
    js_clean(val);
    json_t *item = json_pack("{s:s,s:s}", "oid", o, "value", val);
    if (!item || json_array_append_new(b->vars, item) != 0)
        b->oom = true;
    free(o);
    free(val);
}

/* Adds a synthetic varbind (the ones snmptrapd adds for a v1 trap). */
static void add_synthetic(struct builder *b, const oid *name, size_t nlen, u_char type, const void *val, size_t vlen)
{
    netsnmp_variable_list v;
    memset(&v, 0, sizeof v);
    if (snmp_set_var_objid(&v, name, nlen) != 0 || snmp_set_var_typed_value(&v, type, val, vlen) != 0) {
        b->oom = true;
        snmp_free_var_internals(&v);
        return;
    }
    add_line(b, &v);
    snmp_free_var_internals(&v);
}

json_t *mutt_snmp_trap_event(const struct mutt_snmp_msg *m, const char *hostname, const char *source_ip,
                             const char *timestamp)
{
    const netsnmp_pdu *pdu = m->pdu;
    if (!pdu || !mutt_snmp_is_notification(m))
        return NULL;
    struct builder b = {.vars = json_array()};
    if (!b.vars)
        return NULL;
    if (pdu->command == SNMP_MSG_TRAP) {
        /* snmptrapd's order: sysUpTime.0, snmpTrapOID.0, the trap's varbinds, then RFC 3584's
         * snmpTrapAddress.0, snmpTrapCommunity.0, snmpTrapEnterprise.0 */
        oid trap[MUTT_SNMP_OID_MAX];
        unsigned long ent[MUTT_SNMP_OID_MAX], mapped[MUTT_SNMP_OID_MAX];
        size_t elen = pdu->enterprise_length < MUTT_SNMP_OID_MAX ? pdu->enterprise_length : MUTT_SNMP_OID_MAX;
        for (size_t i = 0; i < elen; i++)
            ent[i] = pdu->enterprise[i];
        int n = mutt_snmp_v1_trap_oid(ent, elen, pdu->trap_type, pdu->specific_type, mapped, MUTT_SNMP_OID_MAX);
        if (n < 0) {
            json_decref(b.vars);
            return NULL;
        }
        for (int i = 0; i < n; i++)
            trap[i] = mapped[i];
        u_long ticks = pdu->time;
        add_synthetic(&b, OID_SYSUPTIME, NOID(OID_SYSUPTIME), ASN_TIMETICKS, &ticks, sizeof ticks);
        add_synthetic(&b, OID_TRAPOID, NOID(OID_TRAPOID), ASN_OBJECT_ID, trap, (size_t)n * sizeof(oid));
        for (const netsnmp_variable_list *v = pdu->variables; v; v = v->next_variable)
            add_line(&b, v);
        add_synthetic(&b, OID_TRAPADDRESS, NOID(OID_TRAPADDRESS), ASN_IPADDRESS, pdu->agent_addr, 4);
        add_synthetic(&b, OID_TRAPCOMMUNITY, NOID(OID_TRAPCOMMUNITY), ASN_OCTET_STR, m->community,
                      m->community_len);
        if (pdu->enterprise)
            add_synthetic(&b, OID_TRAPENTERPRISE, NOID(OID_TRAPENTERPRISE), ASN_OBJECT_ID, pdu->enterprise,
                          pdu->enterprise_length * sizeof(oid));
    } else {
        for (const netsnmp_variable_list *v = pdu->variables; v; v = v->next_variable)
            add_line(&b, v);
    }
    json_t *ev = NULL;
    if (!b.oom && b.trap_oid && b.trap_oid[0]) {
        const char *host = hostname && hostname[0] ? hostname : source_ip;
        ev = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:O}", "hostname", host ? host : "", "source_ip",
                       source_ip ? source_ip : "", "trap_oid", b.trap_oid, "uptime", b.uptime ? b.uptime : "",
                       "timestamp", timestamp ? timestamp : "", "source", "snmptrapd", "variables", b.vars);
    }
    json_decref(b.vars);
    free(b.trap_oid);
    free(b.uptime);
    return ev;
}

long mutt_snmp_inform_response(const struct mutt_snmp_msg *m, uint8_t *buf, size_t cap)
{
    if (!mutt_snmp_is_inform(m))
        return MUTT_EINVAL;
    netsnmp_pdu *r = snmp_clone_pdu(m->pdu);
    if (!r)
        return MUTT_ENOMEM;
    r->command = SNMP_MSG_RESPONSE;
    r->errstat = SNMP_ERR_NOERROR;
    r->errindex = 0;
    /* the PDU first, then the header that precedes it (its length is needed) */
    u_char pdubuf[65536], hdr[MUTT_SNMP_COMMUNITY_MAX + 32];
    size_t left = sizeof pdubuf;
    u_char *end = snmp_pdu_build(r, pdubuf, &left);
    snmp_free_pdu(r);
    if (!end)
        return MUTT_EFULL;
    size_t pdulen = (size_t)(end - pdubuf);
    size_t hl = sizeof hdr;
    long version = m->version;
    u_char *p = asn_build_int(hdr, &hl, (u_char)(ASN_UNIVERSAL | ASN_PRIMITIVE | ASN_INTEGER), &version,
                              sizeof version);
    if (p)
        p = asn_build_string(p, &hl, (u_char)(ASN_UNIVERSAL | ASN_PRIMITIVE | ASN_OCTET_STR),
                             (const u_char *)m->community, m->community_len);
    if (!p)
        return MUTT_EINVAL;
    size_t hdrlen = (size_t)(p - hdr);
    size_t ol = cap;
    u_char *q = asn_build_sequence(buf, &ol, (u_char)(ASN_SEQUENCE | ASN_CONSTRUCTOR), hdrlen + pdulen);
    if (!q || ol < hdrlen + pdulen)
        return MUTT_EFULL;
    memcpy(q, hdr, hdrlen);
    memcpy(q + hdrlen, pdubuf, pdulen);
    return (long)((size_t)(q - buf) + hdrlen + pdulen);
}
