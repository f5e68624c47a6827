#!/usr/bin/env bash
# Packaging checks (issue 8): the Dockerfile statically (no Docker engine here), the systemd units,
# `make install` into a temporary DESTDIR, sd_notify from the real binary under a fake systemd
# socket, and that every metric named by the Prometheus rules and the Grafana board is emitted on
# /metrics of a running `mutt --roles=all` (harness Redis + PostgreSQL). promtool checks the
# rules when Debian's `prometheus` package is installed (not a dependency: skipped otherwise).
. "$(dirname "$0")/lib.sh"

DOCKERFILE="$E2E_ROOT/conf/Dockerfile"

# Instructions of the last stage (after the last FROM), continuation lines joined.
runtime_stage() {
    sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' "$DOCKERFILE" | grep -v '^[[:space:]]*#' |
        awk 'toupper($1)=="FROM"{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}'
}
build_stage() {
    sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' "$DOCKERFILE" | grep -v '^[[:space:]]*#' |
        awk 'toupper($1)=="FROM"{n++} n==1{print}'
}
# Package names given to apt-get install in the text on stdin.
apt_packages() {
    grep -o 'apt-get install[^&]*' | sed 's/apt-get install//' | tr ' ' '\n' | grep -v '^-' | grep -v '^$' | sort -u
}

test_dockerfile_is_multi_stage_on_bookworm_slim() {
    local froms
    froms=$(grep -ciE '^FROM[[:space:]]+debian:bookworm-slim' "$DOCKERFILE")
    assert_eq 2 "$froms" "FROM debian:bookworm-slim lines (build + runtime)"
    grep -qiE '^FROM[[:space:]]+debian:bookworm-slim[[:space:]]+AS[[:space:]]+build' "$DOCKERFILE" ||
        t_fail "first stage is not named build"
    runtime_stage | grep -qE '^COPY --from=build .*/mutt /usr/local/bin/mutt' || t_fail "runtime stage does not copy the binary from build"
}

test_dockerfile_runtime_stage_installs_every_library_the_binary_links() {
    [ -x "$MUTT_BIN" ] || t_fail "no binary at $MUTT_BIN"
    local have lib real pkg missing=""
    have=$(runtime_stage | apt_packages)
    [ -n "$have" ] || t_fail "no apt-get install in the runtime stage"
    while read -r lib; do
        [ -n "$lib" ] || continue
        real=$(readlink -f "$lib")
        pkg=$(dpkg -S "$real" 2>/dev/null || dpkg -S "$lib" 2>/dev/null) || t_fail "dpkg -S finds no package for $lib"
        pkg=${pkg%%:*}
        grep -qx "$pkg" <<<"$have" || missing="$missing $pkg($lib)"
    done < <(ldd "$MUTT_BIN" | awk '/=> \//{print $3}' | grep -vE '/lib(asan|ubsan|lsan|tsan)\.so')
    # (sanitizer runtimes appear only in `make test-asan` builds; the image is built without them)
    [ -z "$missing" ] || t_fail "runtime stage lacks the packages of linked libraries:$missing"
    # and no -dev package or compiler leaks into the runtime image
    if grep -qE -- '-dev$|^gcc$|^make$' <<<"$have"; then t_fail "build tools in the runtime stage: $have"; fi
}

test_dockerfile_build_stage_has_the_dev_packages_of_deps_sh() {
    local have p
    have=$(build_stage | apt_packages)
    for p in $(sed -n '/^PKGS=(/,/)/p' "$E2E_ROOT/tests/harness/deps.sh" | tr ' ()' '\n\n\n' | grep -- '-dev$' | grep -v cmocka); do
        grep -qx "$p" <<<"$have" || t_fail "build stage lacks $p (tests/harness/deps.sh)"
    done
    build_stage | grep -qE '^RUN .*make ' || t_fail "build stage does not run make"
}

# The build stage's `make` line must name targets this Makefile has ("No rule to make target
# 'mutt'" once stopped every image build); `make -n` with its arguments proves it without a build.
test_dockerfile_make_line_names_real_targets() {
    local cmd out args
    # words after "RUN make" up to "&&", with the two shell expansions it uses replaced (no eval)
    cmd=$(build_stage | grep -E '^RUN[[:space:]]+make[[:space:]]' | head -n 1 |
        sed -E 's/&&.*//; s/^RUN[[:space:]]+make[[:space:]]+//; s/"\$\(nproc\)"/2/g; s/"\$GIT_REV"/test/g; s/"//g')
    [ -n "$cmd" ] || t_fail "no 'RUN make' line in the build stage"
    read -ra args <<<"$cmd"
    # the build context as the stage's COPY lines lay it out (no binary, no build/ of this tree)
    local ctx="$E2E_TMP/docker-context" line words n i src dst
    mkdir -p "$ctx"
    while read -r line; do
        read -ra words <<<"$line"
        n=${#words[@]}
        dst=${words[n - 1]}
        for ((i = 1; i < n - 1; i++)); do
            src=${words[i]%/}
            if [ -d "$E2E_ROOT/$src" ]; then # COPY dir/ dest/ copies the directory's contents
                mkdir -p "$ctx/$dst" && cp -a "$E2E_ROOT/$src/." "$ctx/$dst"
            else
                case "$dst" in */) mkdir -p "$ctx/$dst" ;; *) mkdir -p "$(dirname "$ctx/$dst")" ;; esac
                cp -a "$E2E_ROOT/$src" "$ctx/$dst"
            fi
        done
    done < <(build_stage | grep -E '^COPY[[:space:]]' | grep -v -- '--from')
    [ -f "$ctx/Makefile" ] || t_fail "the build stage copies no Makefile"
    out=$(make -n -C "$ctx" "${args[@]}" 2>&1 >/dev/null) || t_fail "the Dockerfile's 'make $cmd' fails on its context: $out"
}

test_dockerfile_runs_as_non_root_with_healthcheck_and_ports() {
    local rt user
    rt=$(runtime_stage)
    user=$(grep -iE '^USER[[:space:]]' <<<"$rt" | tail -n 1 | awk '{print $2}')
    [ -n "$user" ] || t_fail "runtime stage has no USER"
    case ${user%%:*} in root | 0) t_fail "USER is root ($user)" ;; esac
    grep -qiE '^HEALTHCHECK .*CMD .*mutt.*health' <<<"$rt" || t_fail "no HEALTHCHECK running mutt health"
    local port
    for port in 8080 8090 8081 514/udp 514/tcp 162/udp; do
        grep -iE '^EXPOSE' <<<"$rt" | grep -qE "(^|[[:space:]])$port([[:space:]]|\$)" || t_fail "port $port not EXPOSEd"
    done
    # configured by environment: no config file is copied to /etc/mutt
    if grep -qE '^COPY .*/etc/mutt' <<<"$rt"; then t_fail "runtime stage ships a config file"; fi
}

test_systemd_units_use_notify_watchdog_and_hardening() {
    local u key
    for u in mutt.service mutt@.service; do
        for key in Type=notify WatchdogSec= EnvironmentFile=/etc/mutt/mutt.conf NoNewPrivileges=yes \
            ProtectSystem=strict ProtectHome=yes PrivateTmp=yes ReadWritePaths= User=mutt; do
            grep -q "^$key" "$E2E_ROOT/conf/$u" || t_fail "$u lacks $key"
        done
        # D56: ports 514/162 as User=mutt, and no other capability
        for key in CapabilityBoundingSet AmbientCapabilities; do
            assert_eq "$key=CAP_NET_BIND_SERVICE" "$(grep "^$key=" "$E2E_ROOT/conf/$u")" "$u $key"
        done
    done
    if command -v systemd-analyze >/dev/null 2>&1; then
        # verify needs the binary at the unit's path; run it on copies pointing at ours
        local d="$E2E_TMP/units" out
        mkdir -p "$d"
        for u in mutt.service mutt@.service; do
            sed "s|/usr/local/bin/mutt|$MUTT_BIN|g" "$E2E_ROOT/conf/$u" >"$d/$u"
        done
        cp "$d/mutt@.service" "$d/mutt@ingest.service"
        out=$(cd "$d" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no ./mutt.service ./mutt@ingest.service 2>&1) || true
        # Only complaints about our units' own syntax count (the sandbox has no systemd running).
        if grep -E 'Unknown (key|section)|Invalid|Failed to parse|bad-setting' <<<"$out" | grep -v 'Failed to connect'; then
            t_fail "systemd-analyze verify: $out"
        fi
    else
        skip_note no-systemd-analyze "systemd-analyze not installed: the units are checked statically only"
    fi
}

test_template_instance_name_selects_the_roles() {
    local line script inst got
    line=$(grep '^ExecStart=' "$E2E_ROOT/conf/mutt@.service")
    # systemd's own unescaping: %% -> %, $$ -> $ ; %i is passed as $1
    script=$(sed -n "s/^ExecStart=\/bin\/sh -c '\(.*\)' mutt %i$/\1/p" <<<"$line" | sed -e 's/%%/%/g' -e 's/\$\$/$/g')
    [ -n "$script" ] || t_fail "unexpected ExecStart: $line"
    script=${script//\/usr\/local\/bin\/mutt/echo}
    for inst in ingest:ingest ingest-2:ingest alert,forward:alert,forward web-10:web; do
        got=$(sh -c "$script" mutt "${inst%%:*}")
        assert_eq "--config /etc/mutt/mutt.conf --roles=${inst#*:}" "$got" "instance ${inst%%:*}"
    done
}

test_make_install_honours_prefix_and_destdir() {
    local dest="$E2E_TMP/destdir" f
    # -o: install the binary under test as it is; never rebuild it here (an ASan build would be
    # relinked with the default flags)
    (cd "$E2E_ROOT" && make -s --no-print-directory -o "$MUTT_BIN" install DESTDIR="$dest" PREFIX=/opt/mutt \
        BIN="$MUTT_BIN" BUILD="${MUTT_BUILD:-build}") >"$E2E_TMP/install.log" 2>&1 ||
        { cat "$E2E_TMP/install.log" >&2; t_fail "make install failed"; }
    for f in bin/mutt lib/systemd/system/mutt.service lib/systemd/system/mutt@.service \
        share/man/man1/mutt.1 share/mutt/mutt.conf.example share/mutt/schema.sql \
        share/mutt/prometheus/alerts.yml share/mutt/prometheus/recording-rules.yml \
        share/mutt/grafana/mutt-dashboard.json share/mutt/rsyslog/60-mutt.conf \
        share/mutt/rsyslog/60-mutt-omprog.conf share/mutt/snmptrapd/snmptrapd.conf libexec/mutt/mutt-traphandle; do
        [ -s "$dest/opt/mutt/$f" ] || t_fail "make install did not write $f"
    done
    [ -x "$dest/opt/mutt/bin/mutt" ] && [ -x "$dest/opt/mutt/libexec/mutt/mutt-traphandle" ] || t_fail "not executable"
    "$dest/opt/mutt/bin/mutt" --version >/dev/null || t_fail "installed binary does not run"
    grep -q '^ExecStart=/opt/mutt/bin/mutt ' "$dest/opt/mutt/lib/systemd/system/mutt.service" || t_fail "unit path not rewritten for PREFIX"
    grep -q '/opt/mutt/libexec/mutt/mutt-traphandle' "$dest/opt/mutt/share/mutt/snmptrapd/snmptrapd.conf" || t_fail "traphandle path not rewritten"
    grep -q 'binary="/opt/mutt/bin/mutt ' "$dest/opt/mutt/share/mutt/rsyslog/60-mutt-omprog.conf" || t_fail "omprog path not rewritten"
    if grep -rq '/usr/local' "$dest/opt/mutt/lib/systemd/system/"; then t_fail "unit still names /usr/local"; fi
    [ ! -e "$dest/etc/mutt/mutt.conf" ] || t_fail "make install must not write /etc/mutt/mutt.conf"
    if command -v man >/dev/null 2>&1; then
        man -l "$dest/opt/mutt/share/man/man1/mutt.1" 2>/dev/null | grep -q 'EXIT STATUS' || t_fail "man page does not render"
    else
        skip_note no-man "man not installed: the man page is not rendered"
    fi
}

# ---------------------------------------------------------------------- running instance checks
CONF="$E2E_TMP/mutt.conf"
# the listeners on, so their metric families are on /metrics too
e2e_config "$CONF" SYSLOG_UDP_PORT="$(free_port)" SNMP_TRAP_PORT="$(free_port)"

# Metric names a file references: mutt_* and process_* identifiers, not recording-rule names
# (those contain ':').
referenced_metrics() {
    grep -ohE '[A-Za-z0-9_:]*(mutt|process)_[A-Za-z0-9_:]*' "$@" | grep -v ':' | grep -E '^(mutt|process)_' | sort -u
}
emitted_metrics() { # sample names and family names on /metrics
    curl -sf -m 5 "http://127.0.0.1:$INGEST_PORT/metrics" | awk '/^# TYPE/{print $3; next} /^[a-z]/{sub(/[{ ].*/, ""); print}' | sort -u
}

test_sdnotify_ready_watchdog_and_stopping_from_the_real_binary() {
    command -v python3 >/dev/null 2>&1 || t_fail "python3 needed for the fake systemd socket (tests/harness/deps.sh installs it)"
    local sock="$E2E_TMP/notify.sock" got="$E2E_TMP/notify.got"
    python3 - "$sock" "$got" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(60)
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        try: d = s.recv(4096).decode()
        except socket.timeout: break
        f.write(d.replace("\n", " ") + "\n")
        if "STOPPING=1" in d: break
PY
    echo $! >>"$E2E_TMP/pids"
    wait_until 5 test -S "$sock" || t_fail "fake systemd socket not created"
    NOTIFY_SOCKET=$sock WATCHDOG_USEC=200000 start_mutt "$CONF" all
    wait_until 10 grep -qx 'READY=1' "$got" || t_fail "no READY=1: $(cat "$got")"
    pings_at_least() { [ "$(grep -cx 'WATCHDOG=1' "$got")" -ge "$1" ]; } # re-evaluated per poll
    wait_until 10 pings_at_least 3 || t_fail "fewer than 3 WATCHDOG=1: $(cat "$got")"
    stop_mutt 0
    wait_until 10 grep -qx 'STOPPING=1' "$got" || t_fail "no STOPPING=1 after SIGTERM: $(cat "$got")"
    # READY comes before STOPPING, and nothing else was sent
    assert_eq "READY=1" "$(grep -v '^WATCHDOG=1$' "$got" | head -n 1)"
    assert_eq "" "$(grep -vxE 'READY=1|WATCHDOG=1|STOPPING=1' "$got")" "unexpected datagrams"
}

test_prometheus_rules_and_grafana_board_name_only_emitted_metrics() {
    start_mutt "$CONF" all
    # one event through, so the labelled children exist too
    http POST "http://127.0.0.1:$INGEST_PORT/ingest" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' \
        -d '{"timestamp":"2026-01-01T00:00:00Z","hostname":"pkg-test","message":"packaging check"}'
    assert_status 200
    local emitted names missing="" n
    emitted=$(emitted_metrics)
    [ -n "$emitted" ] || t_fail "nothing on /metrics"
    names=$(referenced_metrics "$E2E_ROOT/conf/prometheus/alerts.yml" "$E2E_ROOT/conf/prometheus/recording-rules.yml")
    [ "$(wc -l <<<"$names")" -ge 10 ] || t_fail "suspiciously few metric names in the rules: $names"
    grep -qx mutt_listener_messages_total <<<"$names" || t_fail "the rules do not watch the listeners"
    for n in $names; do grep -qx "$n" <<<"$emitted" || missing="$missing $n"; done
    [ -z "$missing" ] || t_fail "rules name metrics that mutt does not emit:$missing"
    # Grafana: every target expression
    command -v python3 >/dev/null 2>&1 || t_fail "python3 needed to read the dashboard JSON"
    python3 - "$E2E_ROOT/conf/grafana/mutt-dashboard.json" >"$E2E_TMP/grafana.exprs" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def walk(ps):
    for p in ps:
        yield p
        yield from walk(p.get("panels", []))
n = 0
for p in walk(d["panels"]):
    for t in p.get("targets", []):
        print(t["expr"]); n += 1
assert n >= 15, n
PY
    names=$(referenced_metrics "$E2E_TMP/grafana.exprs")
    missing=""
    for n in $names; do grep -qx "$n" <<<"$emitted" || missing="$missing $n"; done
    [ -z "$missing" ] || t_fail "dashboard queries metrics that mutt does not emit:$missing"
    # the recording rules the alerts use are all defined
    local rec
    for rec in $(grep -E '^[[:space:]]*expr:' "$E2E_ROOT/conf/prometheus/alerts.yml" | grep -oE '(^|[^"a-z0-9_:])mutt:[a-z0-9_:]+' | sed 's/^[^m]//' | sort -u); do
        # (names inside quotes are label values such as dlq_name="mutt:dlq:dead")
        grep -q "record: $rec\$" "$E2E_ROOT/conf/prometheus/recording-rules.yml" || t_fail "alerts use undefined $rec"
    done
    stop_mutt 0
}

test_promtool_accepts_the_rules() {
    if ! command -v promtool >/dev/null 2>&1; then
        skip_note no-promtool "promtool not installed (Debian package prometheus): rules checked for structure only"
        python3 - "$E2E_ROOT/conf/prometheus/recording-rules.yml" "$E2E_ROOT/conf/prometheus/alerts.yml" <<'PY' ||
import re, sys, yaml
n = 0
for path in sys.argv[1:]:
    doc = yaml.safe_load(open(path))
    for g in doc["groups"]:
        assert g["name"] and g["rules"], g
        for r in g["rules"]:
            n += 1
            assert ("record" in r) != ("alert" in r), r
            e = r["expr"]
            assert isinstance(e, str) and e.strip(), r
            for o, c in ("()", "{}", "[]"):
                assert e.count(o) == e.count(c), (o, e)
            if "record" in r:
                assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", r["record"]), r["record"]
            else:
                assert r["labels"]["severity"] in ("critical", "warning", "info"), r
                assert r["annotations"]["summary"], r
                assert "for" not in r or re.fullmatch(r"\d+[smh]", r["for"]), r
assert n >= 20, n
PY
            t_fail "rules files are malformed"
        return 0
    fi
    promtool check rules "$E2E_ROOT/conf/prometheus/recording-rules.yml" "$E2E_ROOT/conf/prometheus/alerts.yml" ||
        t_fail "promtool check rules"
}

t_run "Dockerfile: two stages on debian:bookworm-slim" test_dockerfile_is_multi_stage_on_bookworm_slim
t_run "Dockerfile: runtime stage installs every linked library's package" test_dockerfile_runtime_stage_installs_every_library_the_binary_links
t_run "Dockerfile: build stage has the -dev packages of deps.sh" test_dockerfile_build_stage_has_the_dev_packages_of_deps_sh
t_run "Dockerfile: its make line names real targets" test_dockerfile_make_line_names_real_targets
t_run "Dockerfile: non-root USER, HEALTHCHECK, EXPOSE" test_dockerfile_runs_as_non_root_with_healthcheck_and_ports
t_run "systemd: notify, watchdog, hardening" test_systemd_units_use_notify_watchdog_and_hardening
t_run "systemd: mutt@<roles>[-N] selects --roles" test_template_instance_name_selects_the_roles
t_run "make install honours PREFIX and DESTDIR" test_make_install_honours_prefix_and_destdir
t_run "sd_notify: READY, WATCHDOG, STOPPING from the binary" test_sdnotify_ready_watchdog_and_stopping_from_the_real_binary
t_run "Prometheus rules and Grafana board name emitted metrics" test_prometheus_rules_and_grafana_board_name_only_emitted_metrics
t_run "promtool check rules" test_promtool_accepts_the_rules
t_summary
