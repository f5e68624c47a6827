/* Audit queries (CONTRACT §7, reference §8.4 minus W8/W35/W36/W43): GET /audit (config audit),
 * GET /audit-logs (event audit) and GET /config/history. Filters are validated by
 * domain/webapi.c and bound as parameters; one statement returns the total and the page as JSON
 * built by PostgreSQL (timestamps ISO 8601 UTC with ms). The total is a plain count(*) over the
 * filtered table and the page reads the table again with LIMIT/OFFSET: a CTE used twice would be
 * materialised whole (every filtered row, raw_message included) for each request a read-only key
 * can send. The event audit's OFFSET is capped (MUTT_API_MAX_EVENT_OFFSET). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "web_internal.h"

#define CONFIG_ROW(p)                                                                                             \
    "json_build_object('id'," p ".id,'changed_at'," WEB_ISO(p ".changed_at") ",'changed_by'," p ".changed_by,"  \
    "'operation'," p ".operation,'table_name'," p ".table_name,'record_id'," p ".record_id,'record_key'," p      \
    ".record_key,'old_values'," p ".old_values,'new_values'," p ".new_values,'reason'," p ".reason,"             \
    "'correlation_id'," p ".correlation_id)"
#define EVENT_ROW(p)                                                                                              \
    "json_build_object('id'," p ".id,'event_timestamp'," WEB_ISO(p ".event_timestamp") ",'event_id'," p         \
    ".event_id,'correlation_id'," p ".correlation_id,'hostname'," p ".hostname,'matched_rule_id'," p             \
    ".matched_rule_id,'handling_decision'," p ".handling_decision,'forwarded_to_moog'," p                        \
    ".forwarded_to_moog,'raw_message'," p ".raw_message,'created_at'," WEB_ISO(p ".created_at") ")"

struct audit_op {
    long page, limit;
    const char *list_name; /* "logs" or "history" */
};

static const char *get_param(void *privdata, const char *name)
{
    return web_query_param(privdata, name);
}

/* GET /config/history: the config audit restricted to dynamic_config (optionally one key). */
static const char *get_history_param(void *privdata, const char *name)
{
    if (strcmp(name, "table_name") == 0)
        return "dynamic_config";
    if (strcmp(name, "record_key") == 0)
        return web_query_param(privdata, "key");
    if (strcmp(name, "page") == 0 || strcmp(name, "limit") == 0 || strcmp(name, "start_date") == 0 ||
        strcmp(name, "end_date") == 0 || strcmp(name, "changed_by") == 0 || strcmp(name, "operation") == 0)
        return web_query_param(privdata, name);
    return NULL;
}

static void on_page(struct web_call *c, PGresult *res)
{
    struct audit_op *op = c->data;
    if (PQntuples(res) != 1) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    long long total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    long long pages = (total + op->limit - 1) / op->limit;
    const char *rows = PQgetvalue(res, 0, 1);
    size_t n = strlen(rows) + 200;
    char *body = malloc(n);
    if (!body) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    int len = snprintf(body, n, "{\"%s\":%s,\"pagination\":{\"page\":%ld,\"limit\":%ld,\"total\":%lld,\"pages\":%lld}}",
                       op->list_name, rows, op->page, op->limit, total, pages);
    web_reply_text(c, 200, body, (size_t)len);
    free(body);
}

static void run(struct web_call *c, enum mutt_api_audit_kind kind, mutt_api_param_fn *get, const char *list_name)
{
    struct mutt_api_filter f;
    char err[200];
    const char *field = NULL;
    if (mutt_api_filter_parse(kind, get, c, &f, err, sizeof err, &field) != 0) {
        web_reply_error(c, 400, err, field);
        return;
    }
    struct audit_op *op = calloc(1, sizeof *op);
    if (!op) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    op->page = f.page;
    op->limit = f.limit;
    op->list_name = list_name;
    c->data = op;
    char lim[24], off[24];
    snprintf(lim, sizeof lim, "%ld", f.limit);
    snprintf(off, sizeof off, "%lld", (long long)(f.page - 1) * f.limit);
    const char *vals[MUTT_API_MAX_FILTERS + 2];
    for (int i = 0; i < f.nvalues; i++)
        vals[i] = f.values[i];
    vals[f.nvalues] = lim;
    vals[f.nvalues + 1] = off;
    char sql[3072];
    if (kind == MUTT_API_AUDIT_CONFIG)
        snprintf(sql, sizeof sql,
                 "SELECT (SELECT count(*) FROM config_audit_log %s)::text, COALESCE((SELECT json_agg(" CONFIG_ROW("p")
                 " ORDER BY p.changed_at DESC, p.id DESC) FROM (SELECT * FROM config_audit_log %s "
                 "ORDER BY changed_at DESC, id DESC LIMIT $%d::bigint OFFSET $%d::bigint) p), '[]')::text",
                 f.where, f.where, f.nvalues + 1, f.nvalues + 2);
    else
        snprintf(sql, sizeof sql,
                 "SELECT (SELECT count(*) FROM event_audit_log %s)::text, COALESCE((SELECT json_agg(" EVENT_ROW("p")
                 " ORDER BY p.event_timestamp DESC, p.id DESC) FROM (SELECT * FROM event_audit_log %s "
                 "ORDER BY event_timestamp DESC, id DESC LIMIT $%d::bigint OFFSET $%d::bigint) p), '[]')::text",
                 f.where, f.where, f.nvalues + 1, f.nvalues + 2);
    web_query(c, sql, f.nvalues + 2, vals, on_page);
}

void web_audit(struct web_call *c)
{
    run(c, MUTT_API_AUDIT_CONFIG, get_param, "logs");
}

void web_audit_logs(struct web_call *c)
{
    run(c, MUTT_API_AUDIT_EVENT, get_param, "logs");
}

void web_config_history(struct web_call *c)
{
    run(c, MUTT_API_AUDIT_CONFIG, get_history_param, "history");
}
