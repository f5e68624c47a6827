/* Unit tests of DB_HOST/DB_PORT pairing (D38, D55): libpq's multi-host convention, parsed once
 * for config validation and for the pool's own walk over the hosts. Pure. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mutt/error.h"
#include "mutt/pg_hosts.h"

static void test_pg_hosts_one_port_applies_to_every_host(void **state)
{
    (void)state;
    struct mutt_pg_host h[MUTT_PG_MAX_HOSTS];
    char why[128] = "";
    assert_int_equal(mutt_pg_hosts_parse(" 10.0.0.1 ,db2,/run/pg", "6000", h, MUTT_PG_MAX_HOSTS, why, sizeof why), 3);
    assert_string_equal(h[0].host, "10.0.0.1");
    assert_string_equal(h[1].host, "db2");
    assert_string_equal(h[2].host, "/run/pg");
    for (int i = 0; i < 3; i++)
        assert_int_equal(h[i].port, 6000);
}

static void test_pg_hosts_port_list_pairs_in_order(void **state)
{
    (void)state;
    struct mutt_pg_host h[MUTT_PG_MAX_HOSTS];
    char why[128] = "";
    assert_int_equal(mutt_pg_hosts_parse("a,b", "5433, 5434", h, MUTT_PG_MAX_HOSTS, why, sizeof why), 2);
    assert_int_equal(h[0].port, 5433);
    assert_int_equal(h[1].port, 5434);
    /* no port at all: libpq's 5432 */
    assert_int_equal(mutt_pg_hosts_parse("a", NULL, h, MUTT_PG_MAX_HOSTS, why, sizeof why), 1);
    assert_int_equal(h[0].port, 5432);
    /* no host: libpq's default (the local socket), one entry */
    assert_int_equal(mutt_pg_hosts_parse("", "5433", h, MUTT_PG_MAX_HOSTS, why, sizeof why), 1);
    assert_string_equal(h[0].host, "");
    assert_int_equal(h[0].port, 5433);
}

static void test_pg_hosts_refuses_mismatch_empty_entries_bad_ports_and_too_many(void **state)
{
    (void)state;
    struct mutt_pg_host h[3];
    char why[128] = "";
    assert_int_equal(mutt_pg_hosts_parse("a,b,c", "1,2", h, 3, why, sizeof why), MUTT_EINVAL);
    assert_string_equal(why, "3 hosts but 2 ports (give one port for all hosts, or one per host)");
    assert_int_equal(mutt_pg_hosts_parse("a,,c", "1", h, 3, why, sizeof why), MUTT_EINVAL);
    assert_string_equal(why, "empty entry in the host list");
    assert_int_equal(mutt_pg_hosts_parse("a,b", "1,", h, 3, why, sizeof why), MUTT_EINVAL);
    assert_string_equal(why, "empty entry in the port list");
    assert_int_equal(mutt_pg_hosts_parse("a", "65536", h, 3, why, sizeof why), MUTT_EINVAL);
    assert_string_equal(why, "port must be between 1 and 65535");
    assert_int_equal(mutt_pg_hosts_parse("a", "0", h, 3, why, sizeof why), MUTT_EINVAL);
    assert_int_equal(mutt_pg_hosts_parse("a,b,c,d", "1", h, 3, why, sizeof why), MUTT_EINVAL);
    assert_string_equal(why, "more than 3 hosts");
    assert_int_equal(mutt_pg_ports_check("5432,5433", why, sizeof why), 2);
    assert_int_equal(mutt_pg_ports_check("5432;5433", why, sizeof why), MUTT_EINVAL);
}

static void test_pg_hosts_format_brackets_ipv6(void **state)
{
    (void)state;
    struct mutt_pg_host h = { .host = "::1", .port = 5432 };
    char buf[64];
    assert_string_equal(mutt_pg_host_format(&h, buf, sizeof buf), "[::1]:5432");
    strcpy(h.host, "db1");
    assert_string_equal(mutt_pg_host_format(&h, buf, sizeof buf), "db1:5432");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_hosts_one_port_applies_to_every_host),
        cmocka_unit_test(test_pg_hosts_port_list_pairs_in_order),
        cmocka_unit_test(test_pg_hosts_refuses_mismatch_empty_entries_bad_ports_and_too_many),
        cmocka_unit_test(test_pg_hosts_format_brackets_ipv6),
    };
    return cmocka_run_group_tests_name("pg_hosts", tests, NULL, NULL);
}
