#!/usr/bin/env bash
# Build deploy/Containerfile and check the running container; exits non-zero on the first failure.
# Run from anywhere:  deploy/verify_image.sh
#
# Environment (all optional):
#   PYTHON_IMAGE  base image (default python:3.11-slim, the recipe's own default)
#   PIP_CERT      CA bundle pip must trust while building (passed as the pip_cert build secret)
#   PORT          port calgate listens on inside the container (default 8400)
#   NETWORK       network of the build and of the containers (default host: the build reaches
#                 PyPI the way the host does; the checks talk to calgate from inside, so any
#                 network works for them)
#   DOCKER        container CLI (default docker; BuildKit needed: docker 23+, or DOCKER_BUILDKIT=1)
#   IMAGE         tag to build (default calgate:verify)
#   KEEP=1        leave the containers and the data volume in place for a look afterwards
#
# Checks: runs as uid 10001, /readyz answers, the HEALTHCHECK turns healthy, the SQLite file is
# in the /var/lib/calgate volume owned by calgate, a booking goes through the API, `docker stop`
# exits 0 with "Application shutdown complete" and no error in the logs, and a new container on
# the same volume still has the booking.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON_IMAGE=${PYTHON_IMAGE:-python:3.11-slim}
PORT=${PORT:-8400}
NETWORK=${NETWORK:-host}
DOCKER=${DOCKER:-docker}
IMAGE=${IMAGE:-calgate:verify}
RUN_ID=calgate-verify-$$
VOLUME=$RUN_ID-data
CONTAINERS=()

say() { printf '== %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then
        say "kept: containers ${CONTAINERS[*]:-none}, volume $VOLUME"
        return
    fi
    for name in "${CONTAINERS[@]}"; do
        "$DOCKER" rm -f "$name" >/dev/null 2>&1 || true
    done
    "$DOCKER" volume rm "$VOLUME" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "build $IMAGE from $PYTHON_IMAGE"
build=("$DOCKER" build --network "$NETWORK" -f "$ROOT/deploy/Containerfile"
    --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" -t "$IMAGE")
if [[ -n ${PIP_CERT:-} ]]; then
    build+=(--secret "id=pip_cert,src=$PIP_CERT")
fi
"${build[@]}" "$ROOT"

[[ $("$DOCKER" image inspect --format '{{.Config.User}}' "$IMAGE") == calgate ]] ||
    fail "the image's USER is not calgate"

"$DOCKER" volume create "$VOLUME" >/dev/null

# Starts a container on the data volume and waits until /readyz answers 200.
start() {
    local name=$1
    CONTAINERS+=("$name")
    "$DOCKER" run -d --name "$name" --network "$NETWORK" -v "$VOLUME:/var/lib/calgate" \
        -e "CALGATE_SERVER_PORT=$PORT" -e "CALGATE_PUBLIC_URL=http://127.0.0.1:$PORT" \
        "$IMAGE" >/dev/null
    for _ in $(seq 60); do
        if "$DOCKER" exec "$name" python -c "import urllib.request
urllib.request.urlopen('http://127.0.0.1:$PORT/readyz', timeout=2)" >/dev/null 2>&1; then
            say "$name: /readyz answers 200"
            return
        fi
        [[ $("$DOCKER" inspect --format '{{.State.Running}}' "$name") == true ]] ||
            { "$DOCKER" logs "$name" >&2; fail "$name exited before /readyz answered"; }
        sleep 1
    done
    "$DOCKER" logs "$name" >&2
    fail "$name: /readyz did not answer within 60 s"
}

# docker stop, then: exit code 0, the shutdown line logged, nothing at ERROR or CRITICAL.
stop_cleanly() {
    local name=$1 logs
    "$DOCKER" stop "$name" >/dev/null
    [[ $("$DOCKER" inspect --format '{{.State.ExitCode}}' "$name") == 0 ]] ||
        fail "$name: exit code $("$DOCKER" inspect --format '{{.State.ExitCode}}' "$name")"
    logs=$("$DOCKER" logs "$name" 2>&1)
    grep -q 'Application shutdown complete' <<<"$logs" || fail "$name: no 'Application shutdown complete'"
    if grep -E '"level": "(ERROR|CRITICAL)"|Traceback' <<<"$logs" >&2; then
        fail "$name: errors in the logs (above)"
    fi
    say "$name: docker stop -> exit 0, clean shutdown, no errors logged"
}

# Runs a Python snippet inside the container: HTTP calls go to calgate on its own loopback.
in_container() {
    local name=$1
    shift
    "$DOCKER" exec -i "$name" python - "$@"
}

first=$RUN_ID-1
start "$first"

[[ $("$DOCKER" exec "$first" id -u) == 10001 ]] || fail "docker exec runs as $("$DOCKER" exec "$first" id -u)"
# shellcheck disable=SC2016  # awk program, not a shell expansion
pid1_uid=$("$DOCKER" exec "$first" awk '/^Uid:/ {print $2}' /proc/1/status)
[[ $pid1_uid == 10001 ]] || fail "calgate (PID 1) runs as uid $pid1_uid"
say "calgate runs as uid 10001"

for _ in $(seq 60); do
    health=$("$DOCKER" inspect --format '{{.State.Health.Status}}' "$first")
    [[ $health == healthy || $health == unhealthy ]] && break
    sleep 2
done
[[ $health == healthy ]] || fail "health status is '$health'"
say "HEALTHCHECK: healthy"

key=$("$DOCKER" exec "$first" calgate account create "Verify Clinic" --timezone Europe/London \
    --country GB | tail -n 1)
appointment=$(in_container "$first" "$key" <<'PY'
import json, os, sys, urllib.request

API = "http://127.0.0.1:" + os.environ["CALGATE_SERVER_PORT"]
HEADERS = {"Authorization": "Bearer " + sys.argv[1], "Content-Type": "application/json"}


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(API + path, data, HEADERS, method=method)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.load(answer)


status, user = call("POST", "/v1/users", {"name": "Dr Ada Lovelace", "email": "ada@example.com",
                                          "timezone": "Europe/London"})
assert status == 201, status
status, client = call("POST", "/v1/clients", {"name": "Charles Babbage",
                                              "email": "charles@example.com"})
assert status == 201, status
status, booked = call("POST", "/v1/appointments", {
    "user_id": user["id"], "client_id": client["id"], "title": "Consultation",
    "start": "2027-03-03T14:00:00Z", "end": "2027-03-03T15:00:00Z"})
assert status == 201 and booked["status"] == "confirmed", (status, booked)
status, listed = call("GET", "/v1/appointments?from=2027-03-01T00:00:00Z&to=2027-04-01T00:00:00Z")
assert [item["id"] for item in listed["data"]] == [booked["id"]], listed
print(booked["id"])
PY
)
say "booking through the API: $appointment"

owner=$("$DOCKER" exec "$first" stat -c '%u %a' /var/lib/calgate)
[[ $owner == "10001 700" ]] || fail "/var/lib/calgate is '$owner' (uid mode), not '10001 700'"
"$DOCKER" exec "$first" test -s /var/lib/calgate/calgate.db || fail "no calgate.db in /var/lib/calgate"
mounted=$("$DOCKER" inspect --format \
    '{{range .Mounts}}{{if eq .Destination "/var/lib/calgate"}}{{.Name}}{{end}}{{end}}' "$first")
[[ $mounted == "$VOLUME" ]] || fail "/var/lib/calgate is not the volume $VOLUME ($mounted)"
say "calgate.db is in the volume $VOLUME, directory owned by calgate, mode 0700"

stop_cleanly "$first"

second=$RUN_ID-2
start "$second"
in_container "$second" "$key" "$appointment" <<'PY'
import json, os, sys, urllib.request

request = urllib.request.Request(
    f"http://127.0.0.1:{os.environ['CALGATE_SERVER_PORT']}/v1/appointments/{sys.argv[2]}",
    headers={"Authorization": "Bearer " + sys.argv[1]})
with urllib.request.urlopen(request, timeout=10) as answer:
    assert json.load(answer)["title"] == "Consultation"
PY
say "$second (same volume, new container): the booking is still there"
stop_cleanly "$second"

say "all checks passed"
