/* Syslog line → event fields (D57): RFC 5424 and RFC 3164 headers, read leniently (a line that
 * fits neither still becomes an event). Pure: no I/O, no clock; see include/mutt/syslog_parse.h. */
#include "mutt/syslog_parse.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/timefmt.h"

/* Next space-separated token of [*p, end); advances *p past it and one space. */
static bool next_token(const char **p, const char *end, const char **tok, size_t *tlen)
{
    const char *s = *p;
    if (s >= end)
        return false;
    const char *e = memchr(s, ' ', (size_t)(end - s));
    if (e == NULL)
        e = end;
    *tok = s;
    *tlen = (size_t)(e - s);
    *p = e < end ? e + 1 : end;
    return *tlen > 0;
}

static json_t *lossy_stringn(const char *s, size_t n)
{
    /* NULL when the bytes are not UTF-8. A NUL byte is valid UTF-8 but would be written as
     * \u0000, which ingest refuses, and with it the whole batch: lossy path too. */
    json_t *v = memchr(s, '\0', n) == NULL ? json_stringn(s, n) : NULL;
    if (v == NULL) {
        char *ascii = malloc(n + 1); /* keep the line, lossily, rather than drop it */
        if (ascii == NULL)
            return NULL;
        for (size_t i = 0; i < n; i++)
            ascii[i] = (unsigned char)s[i] < 0x80 && s[i] != '\0' ? s[i] : '?';
        v = json_stringn(ascii, n);
        free(ascii);
    }
    return v;
}

static void set_strn(json_t *o, const char *key, const char *s, size_t n)
{
    json_t *v = lossy_stringn(s, n);
    if (v != NULL)
        json_object_set_new(o, key, v);
}

static bool is_nil(const char *s, size_t n)
{
    return n == 1 && s[0] == '-';
}

/* "Oct 11 22:14:15" (RFC 3164 TIMESTAMP, day space-padded). */
static bool is_3164_time(const char *s, size_t n)
{
    static const char *months = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (n < 16 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':' || s[15] != ' ')
        return false;
    bool month = false;
    for (int i = 0; i < 12; i++)
        month = month || memcmp(s, months + 3 * i, 3) == 0;
    return month && isdigit((unsigned char)s[5]) && isdigit((unsigned char)s[7]) && isdigit((unsigned char)s[14]);
}

const char *mutt_syslog_facility_name(int facility)
{
    static const char *const names[24] = {
        "kern",   "user",   "mail",   "daemon", "auth",   "syslog", "lpr",    "news",
        "uucp",   "cron",   "authpriv", "ftp",  "ntp",    "audit",  "alert",  "clock",
        "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    };
    return facility >= 0 && facility < 24 ? names[facility] : NULL;
}

/* PARAM-VALUE inside quotes, from *p (just past the opening quote) to the closing quote; '\"',
 * '\\' and '\]' are escapes (RFC 5424 6.3.3), any other backslash is kept. Advances *p past the
 * closing quote. NULL when the quote never closes or on OOM. */
static json_t *sd_value(const char **p, const char *end)
{
    const char *s = *p;
    char *buf = malloc((size_t)(end - s) + 1);
    if (buf == NULL)
        return NULL;
    size_t n = 0;
    while (s < end && *s != '"') {
        if (*s == '\\' && s + 1 < end && (s[1] == '"' || s[1] == '\\' || s[1] == ']'))
            s++;
        buf[n++] = *s++;
    }
    json_t *v = s < end ? lossy_stringn(buf, n) : NULL;
    free(buf);
    *p = s < end ? s + 1 : end;
    return v;
}

/* SD-NAME: printable US-ASCII except '=', ' ', ']' and '"' (RFC 5424 6.3.2). */
static size_t sd_name_len(const char *s, const char *end)
{
    size_t n = 0;
    while (s + n < end && s[n] > 32 && s[n] < 127 && s[n] != '=' && s[n] != ']' && s[n] != '"')
        n++;
    return n;
}

/* [s, end) holds one or more SD-ELEMENTs; returns them as an object (caller owns), or NULL when
 * they do not follow the grammar (the event then goes without structured_data). */
static json_t *parse_structured_data(const char *s, const char *end)
{
    json_t *sd = json_object();
    while (sd != NULL && s < end) {
        if (*s != '[')
            goto malformed;
        s++;
        size_t idn = sd_name_len(s, end);
        if (idn == 0)
            goto malformed;
        json_t *id = lossy_stringn(s, idn);
        if (id == NULL)
            goto malformed;
        json_t *params = json_object_get(sd, json_string_value(id));
        if (params == NULL) { /* a repeated SD-ID adds to the first one's params */
            params = json_object();
            if (params == NULL || json_object_set_new(sd, json_string_value(id), params) != 0) {
                json_decref(id);
                goto malformed;
            }
        }
        json_decref(id);
        s += idn;
        while (s < end && *s == ' ') {
            s++;
            size_t nn = sd_name_len(s, end);
            if (nn == 0 || s + nn + 1 >= end || s[nn] != '=' || s[nn + 1] != '"')
                goto malformed;
            char name[64];
            if (nn >= sizeof(name)) /* PARAM-NAME is at most 32 characters */
                goto malformed;
            memcpy(name, s, nn);
            name[nn] = '\0';
            s += nn + 2;
            json_t *v = sd_value(&s, end);
            if (v == NULL || json_object_set_new(params, name, v) != 0)
                goto malformed;
        }
        if (s >= end || *s != ']')
            goto malformed;
        s++;
    }
    return sd;
malformed:
    json_decref(sd);
    return NULL;
}

bool mutt_syslog_trim(const char **line, size_t *len)
{
    const char *s = *line;
    size_t n = *len;
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' '))
        n--;
    size_t lead = 0;
    while (lead < n && isspace((unsigned char)s[lead]))
        lead++;
    *line = s + lead;
    *len = n - lead;
    return *len > 0;
}

/* The header fields found so far: pointers into the line (NULL when absent), and the parsed
 * STRUCTURED-DATA (owned; NULL when absent or malformed). */
struct header {
    const char *host, *ts, *prog, *procid, *msgid;
    size_t host_len, ts_len, prog_len, procid_len, msgid_len;
    json_t *sd;
};

/* "<PRI>" at *p: sets the facility and severity fields and advances *p past it. */
static void parse_pri(json_t *ev, const char **p, const char *end)
{
    if (*p >= end || **p != '<')
        return;
    const char *q = *p + 1;
    int pri = 0, digits = 0;
    while (q < end && isdigit((unsigned char)*q) && digits < 3) {
        pri = pri * 10 + (*q - '0');
        q++;
        digits++;
    }
    if (digits > 0 && q < end && *q == '>' && pri <= 191) {
        json_object_set_new(ev, "syslog_severity", json_integer(pri & 7));
        json_object_set_new(ev, "facility", json_integer(pri >> 3));
        json_object_set_new(ev, "facility_text", json_string(mutt_syslog_facility_name(pri >> 3)));
        *p = q + 1;
    }
}

/* A token that is not the nil value "-" becomes the field. */
static void take_field(const char *tok, size_t tl, const char **field, size_t *field_len)
{
    if (!is_nil(tok, tl)) {
        *field = tok;
        *field_len = tl;
    }
}

/* RFC 5424 after "1 ": TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]; "-" is nil. When all
 * five fields are there, fills h and advances *p to MSG. */
static void parse_5424(const char **p, const char *end, struct header *h)
{
    const char *q = *p + 2, *tok;
    size_t tl;
    const char *f[5];
    size_t fl[5];
    int n = 0;
    while (n < 5 && next_token(&q, end, &tok, &tl)) {
        f[n] = tok;
        fl[n] = tl;
        n++;
    }
    if (n != 5)
        return;
    take_field(f[0], fl[0], &h->ts, &h->ts_len);
    take_field(f[1], fl[1], &h->host, &h->host_len);
    take_field(f[2], fl[2], &h->prog, &h->prog_len);
    take_field(f[3], fl[3], &h->procid, &h->procid_len);
    take_field(f[4], fl[4], &h->msgid, &h->msgid_len);
    /* STRUCTURED-DATA: "-" or one or more [..] elements ("\]" escapes a bracket). The
     * span is found leniently so MSG is the same whether or not the grammar holds. */
    if (q < end && *q == '-') {
        q++;
    } else {
        const char *sd_start = q;
        while (q < end && *q == '[') {
            while (q < end && *q != ']') {
                if (*q == '\\' && q + 1 < end)
                    q++;
                q++;
            }
            if (q < end)
                q++;
        }
        if (q > sd_start)
            h->sd = parse_structured_data(sd_start, q);
    }
    if (q < end && *q == ' ')
        q++;
    if (end - q >= 3 && memcmp(q, "\xEF\xBB\xBF", 3) == 0)
        q += 3; /* UTF-8 BOM */
    *p = q;
}

/* RFC 3164 at *p (is_3164_time holds): "Mmm dd hh:mm:ss HOST TAG: msg". The header has no year
 * or zone, so the event is stamped with the arrival time and the original kept as
 * syslog_timestamp. Fills h and advances *p past HOST; the message keeps the TAG. */
static void parse_3164(json_t *ev, const char **p, const char *end, struct header *h)
{
    set_strn(ev, "syslog_timestamp", *p, 15);
    const char *q = *p + 16, *tok;
    size_t tl;
    if (next_token(&q, end, &tok, &tl)) {
        h->host = tok;
        h->host_len = tl;
        *p = q;
    }
    const char *s = *p;
    const char *colon = memchr(s, ':', (size_t)(end - s));
    const char *sp = memchr(s, ' ', (size_t)(end - s));
    if (colon != NULL && (sp == NULL || colon < sp)) {
        h->prog = s;
        h->prog_len = (size_t)(colon - s);
        const char *br = memchr(s, '[', h->prog_len);
        if (br != NULL) {
            const char *close = memchr(br, ']', (size_t)(colon - br));
            if (close != NULL && close > br + 1) { /* "sshd[123]" → procid "123" */
                h->procid = br + 1;
                h->procid_len = (size_t)(close - br - 1);
            }
            h->prog_len = (size_t)(br - s); /* "sshd[123]" → "sshd" */
        }
    }
}

/* The event's fields from the header (taking h->sd), the message [msg, end) and the origin. */
static void set_fields(json_t *ev, struct header *h, const char *msg, const char *end,
                       const struct mutt_syslog_origin *origin)
{
    if (h->host != NULL && h->host_len > 0)
        set_strn(ev, "hostname", h->host, h->host_len);
    else
        json_object_set_new(ev, "hostname", json_string(origin->default_host));
    if (origin->source_ip != NULL)
        json_object_set_new(ev, "source_ip", json_string(origin->source_ip));
    if (h->prog != NULL && h->prog_len > 0)
        set_strn(ev, "program", h->prog, h->prog_len);
    if (h->procid != NULL)
        set_strn(ev, "procid", h->procid, h->procid_len);
    if (h->msgid != NULL)
        set_strn(ev, "msgid", h->msgid, h->msgid_len);
    set_strn(ev, "message", msg, (size_t)(end - msg));
    if (h->sd != NULL)
        json_object_set_new(ev, "structured_data", h->sd);
    h->sd = NULL;
    char tbuf[MUTT_TIME_ISO8601_MS_LEN];
    if (h->ts != NULL && mutt_time_parse_iso8601n(h->ts, h->ts_len, NULL) == 0)
        set_strn(ev, "timestamp", h->ts, h->ts_len);
    else if (mutt_time_format_iso8601_ms(origin->now_ms, tbuf, sizeof(tbuf)) == 0)
        json_object_set_new(ev, "timestamp", json_string(tbuf));
    json_object_set_new(ev, "source", json_string("syslog"));
}

json_t *mutt_syslog_parse(const char *line, size_t len, const struct mutt_syslog_origin *origin)
{
    if (!mutt_syslog_trim(&line, &len))
        return NULL;
    json_t *ev = json_object();
    if (ev == NULL)
        return NULL;
    const char *p = line, *end = line + len;
    struct header h = {0};
    parse_pri(ev, &p, end);
    if (end - p >= 2 && p[0] == '1' && p[1] == ' ')
        parse_5424(&p, end, &h);
    else if (is_3164_time(p, (size_t)(end - p)))
        parse_3164(ev, &p, end, &h);
    set_fields(ev, &h, p, end, origin);
    return ev;
}
