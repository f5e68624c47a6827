/* POST /rules/dry-run (issue 16 §1, D41, D47): what a rule body would catch in the sample of
 * recent events, before it is saved. A read: the read-only key may ask, nothing is written. The
 * steps are one PostgreSQL read (rules and dev hosts, one snapshot) and one LRANGE of the sample,
 * both asynchronous; the comparison itself is domain/dryrun.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/dryrun.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/keys.h"
#include "web_internal.h"

/* Per-request state. */
struct dryrun_op {
    json_t *body;
    json_t *candidate; /* set up front for a new rule; for an edit once the rows are read */
    int64_t edit_id;
    struct mutt_dryrun *run;
};

static void free_dryrun_op(void *p)
{
    struct dryrun_op *op = p;
    json_decref(op->body);
    json_decref(op->candidate);
    mutt_dryrun_destroy(op->run);
    free(op);
}

static void reply_result(struct web_call *c)
{
    struct dryrun_op *op = c->data;
    json_t *o = mutt_dryrun_result(op->run);
    if (!o) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    web_reply_obj(c, 200, o);
}

static void on_sample(struct web_call *c, redisReply *reply)
{
    struct dryrun_op *op = c->data;
    if (reply->type != REDIS_REPLY_ARRAY) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type == REDIS_REPLY_STRING && mutt_dryrun_add_event(op->run, e->str, e->len) != 0) {
            web_reply_error(c, 500, "internal error", NULL);
            return;
        }
    }
    reply_result(c);
}

static void on_rows(struct web_call *c, PGresult *res)
{
    struct dryrun_op *op = c->data;
    if (PQntuples(res) != 1 || PQnfields(res) != 2) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    json_t *rows = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    json_t *dev = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    char err[300] = "";
    const char *field = NULL;
    int rc = rows && dev ? 0 : MUTT_ENOMEM;
    if (rc == 0 && !op->candidate)
        rc = mutt_dryrun_candidate(op->body, rows, op->edit_id, &op->candidate, err, sizeof err, &field);
    if (rc == 0) {
        op->run = mutt_dryrun_create(rows, dev, op->candidate, op->edit_id, err, sizeof err);
        rc = op->run ? 0 : MUTT_ENOMEM;
    }
    json_decref(rows);
    json_decref(dev);
    if (rc == MUTT_EINVAL) {
        web_reply_error(c, 400, err, field);
        return;
    }
    if (rc == MUTT_ENOTFOUND) {
        web_reply_error(c, 404, "Rule not found", "rule_id");
        return;
    }
    if (rc != 0) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    /* D62: the live sample_events; the list holds at most that many once the next push trims it */
    int64_t n = mutt_dynconfig_int(c->ctx->dyn, MUTT_DYN_SAMPLE_EVENTS);
    if (n <= 0) {
        reply_result(c);
        return;
    }
    char stop[24];
    snprintf(stop, sizeof stop, "%lld", (long long)n - 1);
    const char *argv[] = {"LRANGE", MUTT_KEY_SAMPLE_EVENTS, "0", stop};
    size_t lens[] = {6, strlen(MUTT_KEY_SAMPLE_EVENTS), 1, strlen(stop)};
    web_redis(c, 4, argv, lens, on_sample);
}

void web_rules_dry_run(struct web_call *c)
{
    json_t *body = web_body_object(c, false);
    if (!body)
        return;
    struct dryrun_op *op = calloc(1, sizeof *op);
    if (!op) {
        json_decref(body);
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    op->body = body;
    c->data = op;
    c->free_data = free_dryrun_op;
    char err[300] = "";
    const char *field = NULL;
    if (mutt_dryrun_parse_rule_id(body, &op->edit_id, err, sizeof err) != 0) {
        web_reply_error(c, 400, err, "rule_id");
        return;
    }
    /* a new rule is validated before any I/O, exactly as POST /rules does; an edit needs its row */
    if (op->edit_id == 0) {
        int rc = mutt_dryrun_candidate(body, NULL, 0, &op->candidate, err, sizeof err, &field);
        if (rc != 0) {
            web_reply_error(c, rc == MUTT_EINVAL ? 400 : 500, rc == MUTT_EINVAL ? err : "internal error", field);
            return;
        }
    }
    web_query(c, MUTT_DRYRUN_ROWS_SQL, 0, NULL, on_rows);
}
