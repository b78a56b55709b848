#!/usr/bin/env bash
# npsp-monitor vs blackbox_exporter, CPU per probe and the daemon's quality bars (bench/README.md).
#
#   make bench                      # = bash bench/run.sh: 3 interleaved repetitions, ~17 min
#   REPS=1 WINDOW=10 bash bench/run.sh          # a quick look
#   PROFILE=1 bash bench/run.sh                 # + a py-spy profile of the 10,000-check daemon
#   DAEMON=tcp BB= REPS=1 bash bench/run.sh     # only some scenarios (space-separated lists)
#   RELOAD=1 DAEMON=mixed BB= bash bench/run.sh # + a second window with a SIGHUP reload (mixed)
#
# Everything runs on loopback: nginx (1 worker, CPU 1) is the target; the daemon and
# blackbox_exporter run, one at a time, pinned to CPU 0; the measuring scripts run on CPU 1.
# Results: bench/results/<UTC time>/ (one small JSON per run, summary.md). Every run is bounded;
# nginx and whatever the bench started are stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
W=/tmp/npsp-bench                 # work dir: certs, configs, nginx prefix (blackbox.yml names it)
REPS=${REPS:-3}
WINDOW=${WINDOW:-20}              # measured seconds per run (daemon: 2 intervals)
INTERVAL=10
DAEMON=${DAEMON-tcp http https tls mixed}
BB=${BB-tcp http https tls}
SCRAPES=${SCRAPES:-10}
PROFILE=${PROFILE:-0}
RELOAD=${RELOAD:-0}                # 1: the mixed runs add a window with a SIGHUP reload in it
RELOAD_AT=${RELOAD_AT:-5}          # seconds into that window
OUT=${OUT:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
EXPORTER=${EXPORTER:-/usr/bin/prometheus-blackbox-exporter}
HTTP_PORT=18080 HTTPS_PORT=18443 DAEMON_LISTEN=127.0.0.1:19477 BB_LISTEN=127.0.0.1:19115

die() { echo "bench: $*" >&2; exit 1; }

[ -x "$PY" ] || die "no virtualenv at .venv (run make bench)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (target on CPU 1, prober on CPU 0)"
for tool in taskset nginx curl; do
  command -v "$tool" >/dev/null || die "missing $tool"
done
[ -z "${BB// }" ] || command -v "$EXPORTER" >/dev/null || die "missing $EXPORTER (or run with BB=)"

exec 9>/tmp/npsp-bench.lock
flock -n 9 || die "another bench is running"
if ss -Htln | awk '{print $4}' | grep -qE ":(18080|18443|19477|19115)$"; then
  die "a bench port (18080 18443 19477 19115) is in use"
fi

NGINX_PID=
cleanup() {
  if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
    kill -QUIT "$NGINX_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NGINX_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ----- targets -------------------------------------------------------------------------------
rm -rf "$W"
mkdir -p "$W/www" "$W/tmp" "$W/logs" "$OUT"
printf 'ok\n' >"$W/www/index.html"            # the 3-byte static body
"$PY" bench/gen_certs.py "$W"
cp bench/nginx.conf "$W/nginx.conf"
taskset -c 1 nginx -p "$W/" -c "$W/nginx.conf" >"$W/logs/nginx.out" 2>&1 &
NGINX_PID=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$HTTP_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$HTTP_PORT/" >/dev/null || die "nginx did not start ($W/logs/nginx.out)"
curl -fs --cacert "$W/ca.pem" --resolve "localhost:$HTTPS_PORT:127.0.0.1" \
  "https://localhost:$HTTPS_PORT/" >/dev/null || die "nginx HTTPS does not verify"

# ----- the machine ---------------------------------------------------------------------------
"$PY" - "$OUT/machine.json" "$EXPORTER" <<'EOF'
import json, platform, re, ssl, subprocess, sys
def out(*cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except Exception as exc:
        return f"? ({exc})"
cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
import aiohttp, uvloop
info = {
    "nproc": out("nproc"),
    "cpu_model": cpu.group(1) if cpu else "?",
    "kernel": platform.release(),
    "python": platform.python_version(),
    "openssl_python": ssl.OPENSSL_VERSION,
    "openssl_cli": out("openssl", "version"),
    "uvloop": uvloop.__version__,
    "aiohttp": aiohttp.__version__,
    "nginx": out("nginx", "-v"),
    "blackbox_exporter": out(sys.argv[2], "--version"),
    "os": out("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"),
}
open(sys.argv[1], "w").write(json.dumps(info, indent=1) + "\n")
print(" | ".join(f"{k}: {v}" for k, v in info.items()))
EOF

code_digest() {  # what daemon code was measured: HEAD plus a digest of the working tree's sources
  printf '%s %s' "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "$(cat $(git ls-files -co --exclude-standard -- monitor probes notifiers | grep '\.py$' | sort) \
       2>/dev/null | sha256sum | cut -c1-12)"
}
echo "$(code_digest)" >"$OUT/code-before.txt"

# ----- configs -------------------------------------------------------------------------------
gen() {  # name kinds checks
  "$PY" bench/gen_config.py "$W/$1.yaml" --kinds "$2" --checks "$3" --ca "$W/ca.pem" \
    --http-port $HTTP_PORT --https-port $HTTPS_PORT --listen $DAEMON_LISTEN --db "$W/state.db" >/dev/null
  "$ROOT/.venv/bin/npsp-monitor" check-config -c "$W/$1.yaml" 2>&1 | tail -3
}
gen tcp tcp 3334
gen http http 3333
gen https https 3333
gen tls tls 3333
gen mixed tcp,http,https 10000

declare -A CHECKS=([tcp]=3334 [http]=3333 [https]=3333 [tls]=3333 [mixed]=10000)
declare -A MODULE=([tcp]=tcp_connect [http]=http_2xx [https]=https [tls]=tls_connect)
declare -A TARGET=([tcp]=127.0.0.1:$HTTP_PORT [http]=http://127.0.0.1:$HTTP_PORT/
                   [https]=https://127.0.0.1:$HTTPS_PORT/ [tls]=127.0.0.1:$HTTPS_PORT)

NOISY=${NOISY:-1.0}   # CPU-s others may use on core 0 during a window before the run is redone
REDO_UNTIL=${REDO_UNTIL:-1200}  # no more redos after this many seconds (keeps the bench < ~25 min)

noisy() {  # result.json -> true when others used more than $NOISY CPU-s on the measured core
  "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("cpu_other_on_core_s",0)>float(sys.argv[2]) else 1)' "$1" "$NOISY"
}

measured() {  # out.json command...: run; redo once if the run was noisy (the noisy one is kept)
  local out=$1; shift
  if ! "$@"; then
    echo "bench: FAILED: ${out##*/} (see $W/logs); going on with the others" >&2
    FAILED+=("${out##*/}")
    return 0
  fi
  if noisy "$out" && [ "$SECONDS" -lt "$REDO_UNTIL" ]; then
    mv "$out" "${out%.json}.noisy.json"
    echo "bench: ${out##*/} was noisy (others on core 0); running it again" >&2
    "$@" || { FAILED+=("${out##*/}"); echo "bench: FAILED: ${out##*/}" >&2; }
  fi
}
FAILED=()

run_daemon() {  # name rep [extra args]
  local name=$1 rep=$2; shift 2
  local rate; rate=$(awk "BEGIN{print ${CHECKS[$name]}/$INTERVAL}")
  local extra=()
  [ "$name" = mixed ] && extra+=(--scrapes "$SCRAPES")
  [ "$name" = mixed ] && [ "$RELOAD" = 1 ] && extra+=(--reload-at "$RELOAD_AT")
  measured "$OUT/daemon-$name-r$rep.json" \
  taskset -c 1 "$PY" bench/measure.py daemon --name "$name" --rep "$rep" --config "$W/$name.yaml" \
    --fresh-db "$W/state.db" --listen $DAEMON_LISTEN --interval $INTERVAL --window "$WINDOW" --rate "$rate" \
    --log "$W/logs/daemon-$name-$rep.log" --out "$OUT/daemon-$name-r$rep.json" "${extra[@]}" "$@"
}

run_bb() {  # name rep
  local name=$1 rep=$2
  local rate; rate=$(awk "BEGIN{print ${CHECKS[$name]}/$INTERVAL}")
  measured "$OUT/blackbox-$name-r$rep.json" \
  taskset -c 1 "$PY" bench/measure.py blackbox --name "$name" --rep "$rep" \
    --module "${MODULE[$name]}" --target "${TARGET[$name]}" --rate "$rate" --window "$WINDOW" \
    --listen $BB_LISTEN --exporter "$EXPORTER" --log "$W/logs/bb-$name-$rep.log" \
    --out "$OUT/blackbox-$name-r$rep.json"
}

# ----- scenarios, interleaved: each repetition runs every scenario once ----------------------
start=$(date +%s)
for rep in $(seq 1 "$REPS"); do
  for name in tcp http https tls mixed; do
    case " $DAEMON " in *" $name "*) run_daemon "$name" "$rep" ;; esac
    case " $BB " in *" $name "*) run_bb "$name" "$rep" ;; esac
  done
  echo "bench: repetition $rep done after $(( $(date +%s) - start )) s" >&2
done

# ----- /metrics stall, in process --------------------------------------------------------------
taskset -c 0 "$PY" bench/metrics_stall.py "$W/mixed.yaml" --reps 10 --out "$OUT/metrics-stall.json"

# ----- memory, stage by stage, in process -----------------------------------------------------
"$PY" bench/memory_breakdown.py "$W/mixed.yaml" | tee "$OUT/memory-breakdown.txt"

# ----- optional: where the daemon's time and memory go (diagnosis, not measurements) ----------
if [ "$PROFILE" = 1 ]; then
  [ -x "$ROOT/.venv/bin/py-spy" ] || "$ROOT/.venv/bin/pip" install -q py-spy
  for name in tcp tls mixed; do
    run_daemon "$name" 0 --window 10 --profile "$OUT/profile-$name.txt" --profile-seconds 20
    mv "$OUT/daemon-$name-r0.json" "$OUT/profiled-daemon-$name.json"
    gzip -9 "$OUT/profile-$name.txt"     # raw native stacks: ~2 MB, ~70 KB gzipped
    "$PY" bench/profile_summary.py "$OUT/profile-$name.txt.gz" --top 30 >"$OUT/profile-$name.summary.txt"
  done
  NPSP_BENCH_GC_OUT="$OUT/gc-mixed.json" run_daemon mixed 0 --wrapper bench/daemon_gc.py
  mv "$OUT/daemon-mixed-r0.json" "$OUT/gc-daemon-mixed.json"
  "$PY" bench/memory_breakdown.py "$W/mixed.yaml" --tracemalloc >"$OUT/memory-tracemalloc.txt"
fi

echo "$(code_digest)" >"$OUT/code-after.txt"
if ! cmp -s "$OUT/code-before.txt" "$OUT/code-after.txt"; then
  echo "bench: WARNING: monitor/ probes/ notifiers/ changed during the bench" >&2
fi
[ ${#FAILED[@]} -eq 0 ] || echo "bench: failed runs: ${FAILED[*]}" >&2
"$PY" bench/summarize.py "$OUT" | tee "$OUT/summary.md"
echo "bench: results in ${OUT#"$ROOT"/}, total $(( $(date +%s) - start )) s" >&2
