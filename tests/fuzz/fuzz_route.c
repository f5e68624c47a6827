/* Request routing: the router and URL decoding of src/io/http_server.c and the endpoint table,
 * path matching and version negotiation of src/domain/webapi.c. The router's matcher and decoder
 * are static and its request type is private, so this file compiles http_server.c into itself
 * (no h2o loop is started: only the pure parts run, on a hand-made h2o_req_t for the query).
 * Input: path[?query] \n query parameter name \n three version header values.
 * Properties: a path the router sends to an endpoint is one the table matches and the other way
 * round (the "/api/ *" fallback answers 405 from the table: they must agree); endpoint_find and
 * allowed_methods agree; URL decoding never grows and inverts percent-encoding; a query value is
 * no longer than the query; version comparison is antisymmetric. */
#include "../../src/io/http_server.c"

#include "fuzz.h"
#include "mutt/webapi.h"

#define MAX_LINE 4096

static struct mutt_http router; /* routes only: never created, started or destroyed */
static size_t n_table_routes;   /* the first routes mirror mutt_api_endpoints under /api/v1, /api/v2 */
static const struct mutt_api_endpoint *route_ep[256];

static void setup(void)
{
    static const char *const prefixes[] = {"/api/v1", "/api/v2"};
    for (const struct mutt_api_endpoint *ep = mutt_api_endpoints; ep->path; ep++) {
        for (int i = 0; i < 2; i++) {
            char pattern[128];
            snprintf(pattern, sizeof pattern, "%s%s", prefixes[i], ep->path);
            if (router.nroutes >= 256 || mutt_http_route(&router, MUTT_HTTP_WEB, ep->methods, pattern, NULL, NULL) != 0)
                fuzz_fail("cannot register %s", pattern);
            route_ep[router.nroutes - 1] = ep;
        }
    }
    n_table_routes = router.nroutes;
    static const char *const others[] = {"/", "/audit", "/ui/*", "/health", "/health/ready", "/metrics",
                                         "/ingest", "/api/v2/ingest", "/api/*"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        if (mutt_http_route(&router, MUTT_HTTP_ALL, "GET", others[i], NULL, NULL) != 0)
            fuzz_fail("cannot register %s", others[i]);
}

static void check_routes(const char *path, size_t plen)
{
    for (size_t i = 0; i < router.nroutes; i++) {
        struct mutt_http_req r = {.nparams = 0};
        const char *bad = NULL;
        /* a shape that matched with a NUL parameter (a 400) still counts as the route's */
        bool m = route_match(&router.routes[i], path, plen, &r, &bad) != MUTT_URLPATH_NO_MATCH;
        for (size_t k = 0; k < r.nparams; k++) {
            FUZZ_CHECK(strlen(r.param_values[k]) <= plen, "parameter longer than the path");
            free(r.param_values[k]);
        }
        if (i < n_table_routes && plen >= 7) {
            const struct mutt_api_endpoint *ep = route_ep[i];
            if (memcmp(path, i % 2 ? "/api/v2" : "/api/v1", 7) == 0) {
                bool t = mutt_api_path_match(ep->path, path + 7, plen - 7);
                FUZZ_CHECK(m == t, "'%.*s': router %s %s%s, table says %s", (int)plen, path,
                           m ? "matches" : "does not match", i % 2 ? "/api/v2" : "/api/v1", ep->path,
                           t ? "match" : "no match");
            }
        }
    }
    if (plen >= 7) {
        char allow[256];
        const struct mutt_api_endpoint *ep = mutt_api_endpoint_find(mutt_api_endpoints, path + 7, plen - 7);
        bool any = mutt_api_allowed_methods(mutt_api_endpoints, path + 7, plen - 7, allow, sizeof allow);
        FUZZ_CHECK((ep != NULL) == any, "endpoint_find and allowed_methods disagree on '%.*s'", (int)plen, path);
        FUZZ_CHECK(!any || allow[0] != '\0', "empty Allow for '%.*s'", (int)plen, path);
    }
}

static void check_decode(const char *s, size_t len)
{
    char *dec = malloc(len + 1), *enc = malloc(3 * len + 1), *back = malloc(3 * len + 1);
    if (dec && enc && back) {
        mutt_urlpath_decode_query(s, len, dec);
        FUZZ_CHECK(strlen(dec) <= len, "decoding grew '%.*s'", (int)len, s);
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c))
                enc[o++] = (char)c;
            else
                o += (size_t)snprintf(enc + o, 4, "%%%02X", c);
        }
        mutt_urlpath_decode_query(enc, o, back);
        FUZZ_CHECK(memcmp(back, s, len) == 0 && back[len] == '\0', "decode(encode(x)) != x for '%.*s'", (int)len, s);
    }
    free(dec);
    free(enc);
    free(back);
}

static void check_query(const char *path, size_t len, const char *name)
{
    h2o_req_t hreq;
    memset(&hreq, 0, sizeof hreq);
    h2o_mem_init_pool(&hreq.pool);
    hreq.path = h2o_iovec_init(path, len);
    const char *q = memchr(path, '?', len);
    hreq.query_at = q ? (size_t)(q - path) : SIZE_MAX;
    struct mutt_http_req r = {.h2o = &hreq};
    const char *v = mutt_http_req_query_param(&r, name);
    FUZZ_CHECK(v == NULL || (q != NULL && strlen(v) <= len - (size_t)(q - path)), "query value longer than the query");
    h2o_mem_clear_pool(&hreq.pool);
}

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (router.nroutes == 0)
        setup();
    if (size > MAX_LINE * 3)
        return 0;
    char *p[5];
    if (!fuzz_split(data, size, p, 5))
        return 0;
    size_t len = strlen(p[0]);
    const char *qm = memchr(p[0], '?', len);
    size_t plen = qm ? (size_t)(qm - p[0]) : len;

    check_routes(p[0], plen);
    check_decode(p[0], len);
    check_query(p[0], len, p[1]);

    const struct mutt_api_version *v = mutt_api_negotiate(p[2][0] ? p[2] : NULL, p[3][0] ? p[3] : NULL,
                                                          p[4][0] ? p[4] : NULL);
    FUZZ_CHECK(v != NULL && v->version != NULL, "no version negotiated");
    FUZZ_CHECK(mutt_api_version_cmp(p[2], p[2]) == 0, "'%s' differs from itself", p[2]);
    FUZZ_CHECK(sign(mutt_api_version_cmp(p[2], p[3])) == -sign(mutt_api_version_cmp(p[3], p[2])),
               "cmp('%s','%s') is not antisymmetric", p[2], p[3]);
    fuzz_free_parts(p, 5);
    return 0;
}
