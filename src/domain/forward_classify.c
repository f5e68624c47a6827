/* Webhook outcome classification (CONTRACT §5, D4). Pure; the curl code table mirrors the
 * CURLcode numbers of <curl/curl.h>, which are part of libcurl's stable ABI, so this file
 * needs neither the header nor the library. */
#include "mutt/forward_classify.h"

#include <stdio.h>

enum mutt_delivery mutt_forward_classify(long http_status, int curl_code)
{
    if (curl_code != 0)
        return MUTT_RETRY; /* timeouts, refused/reset connections, TLS and DNS trouble */
    if (http_status >= 200 && http_status <= 299)
        return MUTT_DELIVERED; /* W14: any 2xx, not only 200/201 */
    if (http_status == 408 || http_status == 429 || (http_status >= 500 && http_status <= 599))
        return MUTT_RETRY;
    if (http_status <= 0)
        return MUTT_RETRY; /* the exchange produced no status line: treat as transport trouble */
    return MUTT_DEAD; /* other 4xx, 1xx/3xx finals (D4), and nonsense like 600+ */
}

struct curl_text {
    int code;
    const char *text;
};

/* Texts as curl_easy_strerror() words them (7.88), for the codes a webhook POST can meet. */
static const struct curl_text curl_texts[] = {
    {1, "Unsupported protocol"},
    {3, "URL using bad/illegal format or missing URL"},
    {5, "Couldn't resolve proxy name"},
    {6, "Couldn't resolve host name"},
    {7, "Couldn't connect to server"},
    {8, "Weird server reply"},
    {16, "Error in the HTTP2 framing layer"},
    {18, "Transferred a partial file"},
    {23, "Failed writing received data to disk/application"},
    {26, "Failed to open/read local data from file/application"},
    {27, "Out of memory"},
    {28, "Timeout was reached"},
    {35, "SSL connect error"},
    {42, "Operation was aborted by an application callback"},
    {47, "Number of redirects hit maximum amount"},
    {52, "Server returned nothing (no headers, no data)"},
    {55, "Failed sending data to the peer"},
    {56, "Failure when receiving data from the peer"},
    {58, "Problem with the local SSL certificate"},
    {59, "Couldn't use specified SSL cipher"},
    {60, "SSL peer certificate or SSH remote key was not OK"},
    {77, "Problem with the SSL CA cert (path? access rights?)"},
    {92, "Stream error in the HTTP/2 framing layer"},
};

const char *mutt_forward_curl_text(int curl_code)
{
    for (size_t i = 0; i < sizeof(curl_texts) / sizeof(curl_texts[0]); i++)
        if (curl_texts[i].code == curl_code)
            return curl_texts[i].text;
    return "transport error";
}

const char *mutt_forward_reason(long http_status, int curl_code, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    if (curl_code != 0)
        snprintf(buf, len, "curl_%d: %s", curl_code, mutt_forward_curl_text(curl_code));
    else if (http_status > 0)
        snprintf(buf, len, "http_%ld", http_status);
    else
        snprintf(buf, len, "no_http_status");
    return buf;
}

const char *mutt_forward_metric_reason(long http_status, int curl_code)
{
    if (curl_code == 28)
        return "timeout";
    if (curl_code == 6 || curl_code == 7)
        return "connect";
    if (curl_code == 0 && http_status == 429)
        return "rate_limit";
    return "http";
}
