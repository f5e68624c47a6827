/* The embedded dashboard (W39: no CDN): GET / (index.html), GET /audit (audit.html) and
 * GET /ui/<file> from the table tools/embed.sh generates out of src/web/ui/ at build
 * time. The pages hold no secret: they ask for the API key and send it as a header. */
#include <string.h>

#include "mutt/http.h"
#include "web_internal.h"
#include "ui_assets.h"

static int find_asset(const char *name, size_t len)
{
    for (int i = 0; mutt_ui_assets[i].path; i++) {
        const char *p = mutt_ui_assets[i].path + 1; /* skip the '/' */
        if (strlen(p) == len && memcmp(p, name, len) == 0)
            return i;
    }
    return -1;
}

static void serve(struct mutt_http_req *req, const char *name, size_t len)
{
    int i = find_asset(name, len);
    if (i < 0) {
        mutt_http_reply_error(req, 404, "not found", NULL);
        return;
    }
    mutt_http_add_header(req, "cache-control", "no-cache");
    mutt_http_add_header(req, "x-content-type-options", "nosniff");
    mutt_http_reply(req, 200, mutt_ui_assets[i].content_type, (const char *)mutt_ui_assets[i].data,
                    mutt_ui_assets[i].len);
}

static void on_page(struct mutt_http_req *req, void *privdata)
{
    const char *name = privdata;
    serve(req, name, strlen(name));
}

static void on_file(struct mutt_http_req *req, void *privdata)
{
    (void)privdata;
    size_t plen = 0;
    const char *path = mutt_http_req_path(req, &plen);
    if (plen <= 4 || memchr(path + 4, '/', plen - 4)) {
        mutt_http_reply_error(req, 404, "not found", NULL);
        return;
    }
    serve(req, path + 4, plen - 4);
}

int mutt_web_ui_register(struct mutt_ctx *ctx)
{
    int rc = mutt_http_route(ctx->http, MUTT_HTTP_WEB, "GET", "/", on_page, (void *)"index.html");
    if (rc == 0)
        rc = mutt_http_route(ctx->http, MUTT_HTTP_WEB, "GET", "/audit", on_page, (void *)"audit.html");
    if (rc == 0)
        rc = mutt_http_route(ctx->http, MUTT_HTTP_WEB, "GET", "/ui/*", on_file, NULL);
    return rc;
}
