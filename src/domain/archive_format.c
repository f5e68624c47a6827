/* Archive names and manifest lines (include/mutt/archive_format.h). Pure. */
#include "mutt/archive_format.h"

#include <stdio.h>
#include <string.h>

#include "mutt/error.h"

static const char *const TABLES[] = {"config_audit_log", "event_audit_log"};

bool mutt_archive_table_ok(const char *table)
{
    if (!table)
        return false;
    for (size_t i = 0; i < sizeof(TABLES) / sizeof(TABLES[0]); i++)
        if (strcmp(table, TABLES[i]) == 0)
            return true;
    return false;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool mutt_archive_day_ok(const char *day)
{
    return day && strlen(day) == 10 && all_digits(day, 4) && day[4] == '-' && all_digits(day + 5, 2) &&
           day[7] == '-' && all_digits(day + 8, 2);
}

/* Days since the epoch -> civil date (Howard Hinnant's civil_from_days). */
static void civil(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int mutt_archive_file_name(char *buf, size_t len, const char *table, const char *day, int64_t run_ms, unsigned seq)
{
    if (!mutt_archive_table_ok(table) || !mutt_archive_day_ok(day) || run_ms < 0)
        return MUTT_EINVAL;
    int64_t secs = run_ms / 1000;
    int64_t days = secs / 86400, rem = secs % 86400;
    int y;
    unsigned m, d;
    civil(days, &y, &m, &d);
    int n = snprintf(buf, len, "%s_%s_%04d%02u%02uT%02d%02d%02dZ_%06u%s", table, day, y, m, d, (int)(rem / 3600),
                     (int)(rem % 3600 / 60), (int)(rem % 60), seq, MUTT_ARCHIVE_SUFFIX);
    return n < 0 || (size_t)n >= len ? MUTT_ERANGE : 0;
}

int mutt_archive_table_of(const char *base_name, char *table, size_t len)
{
    if (!base_name || strchr(base_name, '/'))
        return MUTT_EINVAL;
    size_t n = strlen(base_name), sl = strlen(MUTT_ARCHIVE_SUFFIX);
    if (n <= sl || strcmp(base_name + n - sl, MUTT_ARCHIVE_SUFFIX) != 0)
        return MUTT_EINVAL;
    for (size_t i = 0; i < sizeof(TABLES) / sizeof(TABLES[0]); i++) {
        size_t tl = strlen(TABLES[i]);
        char day[11];
        if (strncmp(base_name, TABLES[i], tl) != 0 || base_name[tl] != '_' || n < tl + 1 + 10 + 1 + sl)
            continue;
        memcpy(day, base_name + tl + 1, 10);
        day[10] = '\0';
        if (!mutt_archive_day_ok(day) || base_name[tl + 11] != '_')
            continue;
        if (len <= tl)
            return MUTT_ERANGE;
        memcpy(table, TABLES[i], tl + 1);
        return 0;
    }
    return MUTT_EINVAL;
}

void mutt_archive_hex(const uint8_t sha256[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[sha256[i] >> 4];
        out[2 * i + 1] = hx[sha256[i] & 15];
    }
    out[64] = '\0';
}

static bool plain_name(const char *name, size_t n)
{
    if (n == 0 || memchr(name, '/', n) || memchr(name, '\0', n) || memchr(name, '\n', n))
        return false;
    return !((n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'));
}

int mutt_archive_manifest_line(char *buf, size_t len, const uint8_t sha256[32], const char *name)
{
    if (!name || !plain_name(name, strlen(name)))
        return MUTT_EINVAL;
    char hex[65];
    mutt_archive_hex(sha256, hex);
    int n = snprintf(buf, len, "%s  %s\n", hex, name);
    return n < 0 || (size_t)n >= len ? MUTT_ERANGE : 0;
}

int mutt_archive_manifest_parse(const char *line, size_t len, char hex[65], char *name, size_t name_len)
{
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len < 64 + 2 + 1 || line[64] != ' ' || line[65] != ' ')
        return MUTT_EINVAL;
    for (int i = 0; i < 64; i++) {
        char c = line[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return MUTT_EINVAL;
        hex[i] = c;
    }
    hex[64] = '\0';
    const char *nm = line + 66;
    size_t nl = len - 66;
    if (nl > 0 && nm[0] == '*') { /* sha256sum's binary-mode marker */
        nm++;
        nl--;
    }
    if (!plain_name(nm, nl) || nl >= name_len)
        return MUTT_EINVAL;
    memcpy(name, nm, nl);
    name[nl] = '\0';
    return 0;
}
