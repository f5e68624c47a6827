-- wrk script for bench/ingest.sh: POST one realistic syslog event (~300 bytes) per request, or,
-- with BATCH=<n> in the environment, a JSON array of n such events per request.
local key = os.getenv("INGEST_KEY") or "bench-ingest-key-0123456789abcdef0123456789"
local batch = tonumber(os.getenv("BATCH") or "0")

local event = '{"timestamp":"2026-11-25T11:30:00.123Z","hostname":"core-sw-07.dc2.example.net",' ..
    '"message":"%LINK-3-UPDOWN: Interface GigabitEthernet1/0/24, changed state to down (peer ap-113 lost carrier)",' ..
    '"syslog_severity":3,"source_type":"cisco-ios","facility":"local7","program":"ios","source_ip":"10.20.7.1"}'

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-KEY"] = key
if batch > 0 then
    local parts = {}
    for i = 1, batch do parts[i] = event end
    wrk.body = "[" .. table.concat(parts, ",") .. "]"
else
    wrk.body = event
end

-- No response() hook: it would run Lua per response and steal CPU from the server on this
-- 2-core box. wrk prints "Non-2xx or 3xx responses: N" itself; bench/ingest.sh reads it.
function done(summary, latency, requests)
    io.write(string.format("BENCH p50_us=%d p99_us=%d requests=%d duration_us=%d errors=%d\n",
        latency:percentile(50), latency:percentile(99), summary.requests, summary.duration,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
