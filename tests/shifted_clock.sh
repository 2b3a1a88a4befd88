#!/usr/bin/env bash
# No test may depend on the time of day, the date or the machine's zone. This reruns the
# time-sensitive tests with the zone shifted far east and far west of UTC and, with
# libfaketime (apt-get install faketime), the clock moved to awkward UTC moments.
# Too slow for `make test`; run it by hand after touching time handling:
#   tests/shifted_clock.sh [DIR...]      e.g. tests/shifted_clock.sh tests/journeys
# Limits: the Temporal dev server (`temporal`, a static Go binary) ignores libfaketime and
# stays on the real clock in tests/e2e and tests/segments; only our processes move there
# (they make the quiet-hours and cap decisions). The time-skipping test server honours it.
set -uo pipefail
cd "$(dirname "$0")/.."

DIRS=("$@")
[ ${#DIRS[@]} -gt 0 ] || DIRS=(tests/runtime tests/journeys tests/loyalty tests/schedules tests/segments
                              tests/api tests/importing tests/e2e)
ZONES=(Pacific/Kiritimati America/Adak)  # UTC+14 and UTC-10 (-9 in summer)
MOMENTS=("2026-12-05 02:00:00"           # a Saturday, before dawn in the Americas
         "2027-06-16 13:00:00"           # a Wednesday afternoon, summer time in the north
         "2028-02-29 22:30:00"           # a leap day, after dark in Europe and the Americas
         "2026-12-31 23:45:00")          # the year ends during the run
LIBFAKETIME=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
failed=()

run() {  # zone, UTC moment ("" for the real clock), directories...
    local zone=$1 moment=$2; shift 2
    for dir in "$@"; do
        local -a vars=("TZ=$zone" "PGTZ=$zone")  # PGTZ: PostgreSQL sessions in that zone too
        if [ -n "$moment" ]; then
            # A relative offset, taken per directory: the clock starts at `moment` and runs on.
            # The monotonic clock moves by the same offset (leaving it alone makes libfaketime
            # 0.9.10 fail time.sleep with EINVAL).
            vars+=("LD_PRELOAD=$LIBFAKETIME" "FAKETIME=$(printf %+d $(( $(date -u -d "$moment" +%s) - $(date +%s) )))")
        fi
        echo "== TZ=$zone ${moment:+at $moment UTC }$dir"
        env "${vars[@]}" .venv/bin/pytest -q -x -p no:cacheprovider "$dir" | tail -3 \
            || failed+=("TZ=$zone ${moment:+at $moment UTC }$dir")
    done
}

for zone in "${ZONES[@]}"; do
    run "$zone" "" "${DIRS[@]}"
done
if [ -z "$LIBFAKETIME" ]; then
    echo "libfaketime not installed: clock shifts skipped"
else
    i=0
    for moment in "${MOMENTS[@]}"; do
        run "${ZONES[$(( i++ % ${#ZONES[@]} ))]}" "$moment" "${DIRS[@]}"
    done
fi

if [ ${#failed[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "all shifts passed"
