#!/usr/bin/env bash
# make docker-smoke: build the image, run it read-only as compose does, and check from inside the
# container /healthz, /readyz, one order-sign hook call and one /demo page load; validate the compose
# file's profiles with docker-compose; then stop. Needs a Docker engine (on this project's dev machines:
# ../shared/tools/docker-here.sh, as root). Not part of `make test`: CI has no engine.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-lbp-imaging-cds:smoke}
PORT=${SMOKE_PORT:-18099}
NAME=lbp-imaging-cds-smoke

docker build --network host -t "$IMAGE" . >/tmp/lbp-docker-smoke-build.log 2>&1 \
    || { tail -30 /tmp/lbp-docker-smoke-build.log; exit 1; }
echo "built $IMAGE ($(docker image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}'))"

docker rm -f "$NAME" >/dev/null 2>&1 || true
trap 'docker rm -f "$NAME" >/dev/null 2>&1 || true' EXIT
docker run -d --name "$NAME" --network host --read-only --tmpfs /tmp --tmpfs /data:uid=10001 \
    --cap-drop ALL --security-opt no-new-privileges:true \
    -e PORT="$PORT" -e CDS_AUTH=disabled -e CDS_DEMO=true -e DATABASE_URL=sqlite:////data/smoke.db \
    -e CDS_PUBLIC_BASE_URL="http://127.0.0.1:$PORT" -e GUNICORN_WORKERS=2 "$IMAGE" >/dev/null

docker exec -i -e PORT="$PORT" "$NAME" python - <<'PY'
import json, os, time, urllib.request

base = f"http://127.0.0.1:{os.environ['PORT']}"
for _ in range(60):
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
            if answer.status == 200:
                break
    except OSError:
        time.sleep(0.5)
else:
    raise SystemExit("healthz never answered")
print("healthz:", urllib.request.urlopen(base + "/healthz").read().decode())
print("readyz:", urllib.request.urlopen(base + "/readyz").read().decode())
body = open("examples/order-sign-lumbar-mri.json", "rb").read()
request = urllib.request.Request(
    base + "/cds-services/lbp-imaging-order-sign", data=body, headers={"Content-Type": "application/json"}
)
started = time.perf_counter()
with urllib.request.urlopen(request) as answer:
    cards = json.load(answer)["cards"]
elapsed = (time.perf_counter() - started) * 1000
assert cards, "the hook call got no card"
print(f"order-sign: HTTP 200, {len(cards)} card, {elapsed:.0f} ms: [{cards[0]['indicator']}] {cards[0]['summary']}")
with urllib.request.urlopen(base + "/demo") as answer:
    page = answer.read().decode()
    assert answer.status == 200 and "Order entry" in page, "the demo page did not load"
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
with urllib.request.urlopen(base + "/demo/api/patients") as answer:
    patients = json.load(answer)["patients"]
print(f"demo: /demo HTTP 200 ({len(page)} bytes), {len(patients)} sample patients")
PY

if docker run --rm --network host --read-only "$IMAGE" sh -c 'touch /app/x' 2>/dev/null; then
    echo "the image's files are writable"; exit 1
fi
echo "read-only: the app's files cannot be changed"

# docker-compose v1 (Debian's) does not know the top-level `name`; validate every profile without it.
if command -v docker-compose >/dev/null; then
    sed '/^name:/d' docker-compose.yml > /tmp/lbp-compose-v1.yml
    for profile in "" postgres proxy monitoring demo; do
        CDS_CLIENTS_FILE_ON_HOST=./examples/demo/clients.demo.yaml POSTGRES_PASSWORD=smoke \
            docker-compose -f /tmp/lbp-compose-v1.yml --project-directory . ${profile:+--profile "$profile"} config -q
        echo "docker-compose config${profile:+ --profile $profile}: valid"
    done
fi
echo "docker-smoke: passed"
