-- Optional sample data (reference §4.1-4.3) for a demo or a fresh dev database; never applied by
-- `mutt migrate`. Load with: psql -d mutt -f conf/seed.sql. Re-running adds nothing twice.
INSERT INTO alert_rules (match_string, trap_oid, match_type, priority, prod_handling, dev_handling, team_assignment)
SELECT v.match_string, v.trap_oid, v.match_type, v.priority, v.prod_handling, v.dev_handling, v.team_assignment
FROM (VALUES
    ('CRITICAL',               NULL,                    'contains',   10, 'Page_and_ticket', 'Ticket_only', 'NETO'),
    ('ERROR',                  NULL,                    'contains',   20, 'Ticket_only',     'Ignore',      'NETO'),
    ('LINK-DOWN',              NULL,                    'contains',    5, 'Page_and_ticket', 'Ticket_only', 'NetOps'),
    ('DOT1X-FIRMWARE-RUNNING', NULL,                    'contains',   50, 'Ticket_only',     'Ignore',      'Security'),
    (NULL,                     '.1.3.6.1.4.1.9.9.41.2', 'oid_prefix', 15, 'Page_and_ticket', 'Ignore',      'NetOps')
) AS v (match_string, trap_oid, match_type, priority, prod_handling, dev_handling, team_assignment)
WHERE NOT EXISTS (
    SELECT 1 FROM alert_rules r
    WHERE r.match_string IS NOT DISTINCT FROM v.match_string AND r.trap_oid IS NOT DISTINCT FROM v.trap_oid
      AND r.match_type = v.match_type
);

INSERT INTO development_hosts (hostname) VALUES
    ('dev-router1'), ('test-switch1'), ('qa-firewall1')
ON CONFLICT DO NOTHING;

INSERT INTO device_teams (hostname, team_assignment) VALUES
    ('router1.prod.example.com',   'NetOps'),
    ('switch1.prod.example.com',   'NetOps'),
    ('firewall1.prod.example.com', 'Security'),
    ('server1.prod.example.com',   'SysAdmin')
ON CONFLICT DO NOTHING;
