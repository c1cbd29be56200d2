#!/usr/bin/env bash
# Peak RSS of vlproxy, with its default limits, under a stream of hostile requests (gzip bombs of
# HOSTILE_BOMB_MIB decompressed, 16-bit PNGs of 2000x2000 (decoded: within the limits) and
# 6000x6000 (refused from the header), bodies of 1000 multimodal clauses) sent by HOSTILE_WORKERS
# senders per kind, while HOSTILE_NORMAL senders make normal searches that must all succeed.
# Everything on loopback: vlbench fake-es as the cluster, the model simulator as the model.
# Usage: bash bench/scripts/hostile.sh   (env: HOSTILE_DURATION 20s, HOSTILE_WORKERS 4,
#        HOSTILE_NORMAL 2, HOSTILE_BOMB_MIB 200, HOSTILE_BOUND_MIB 300, MODEL_LATENCY 30ms)
BENCH_NAME=hostile
source "$(dirname "$0")/lib.sh"

start_fake_es ES -hits 10 -source-bytes 200
start_model MODEL -latency "${MODEL_LATENCY:-30ms}"
GOMEMLIMIT=${HOSTILE_GOMEMLIMIT:-} start_vlproxy VP -upstream "http://$ES" -model-url "$MODEL"

echo "$(machine_line)"
echo "vlproxy defaults: $("$TMP/vlproxy" -help 2>&1 | grep -A1 -E '^  -(max-body-size|max-decoded-body-size|max-clauses|max-images|image-max-decoded-bytes|image-decodes|image-decode-queue)$' | grep -o 'default [^)]*' | tr '\n' ' ')"
set +e
"$VB" hostile -target "$VP" -pid "$VP_PID" -duration "${HOSTILE_DURATION:-20s}" \
  -workers "${HOSTILE_WORKERS:-4}" -normal-workers "${HOSTILE_NORMAL:-2}" -bomb-mib "${HOSTILE_BOMB_MIB:-200}" -kinds "${HOSTILE_KINDS:-gzip-bomb,png16,clauses}" | tee "$TMP/hostile.out"
rc=${PIPESTATUS[0]}
set -e
hwm=$(grep -o 'VmHWM): [0-9.]*' "$TMP/hostile.out" | grep -o '[0-9.]*$')
bound=${HOSTILE_BOUND_MIB:-300}
if [ "$rc" != 0 ]; then echo "FAIL: normal searches failed" >&2; exit 1; fi
if awk -v h="$hwm" -v b="$bound" 'BEGIN{exit !(h >= b)}'; then
  echo "FAIL: peak RSS ${hwm} MiB is not under ${bound} MiB" >&2; exit 1
fi
echo "OK: peak RSS ${hwm} MiB < ${bound} MiB, every normal search answered 200"
