#!/usr/bin/env bash
# One command for the GPU machine: install, prove the GPU is used, test, benchmark -- in one
# 10-minute call. Prepare here first (internet): bash benchmarks/gpu/fetch_wheels.sh
# Then, with the device tool: run(command="bash benchmarks/gpu/run.sh", carry=[".gpu-carry"]).
#
# Writes to $OUT (at most 8 files come back): env.txt (nvidia-smi, versions, hml info),
# tests.log, bench.log, gpu-results.json, gpu-results.md, asv.log, summary.txt.
# STAGES (default "tests bench asv") picks stages; each has its own time limit, so a slow
# stage cannot eat the others' time. BENCH_SCALE (1.0) scales the benchmarks' row counts;
# BENCH_ONLY (all) picks side_by_side's workloads, e.g. "kmeans,linear", so that two calls can share
# the figures; BENCH_VARIANTS (all) likewise picks the sides, e.g. "hml-cupy,hml-torch,torch-eager";
# TESTS_TIMEOUT (240) and BENCH_TIMEOUT (300) bound those stages in seconds.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/hml-gpu-out}"
mkdir -p "$OUT"
STAGES="${STAGES-tests bench asv}"
carry=.gpu-carry
summary="$OUT/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
export PYTHONUNBUFFERED=1 CUPY_TF32=0

# -- install: the carried wheels, then hml itself with the carried build backend ---------------
if ! ls "$carry"/wheels/*.whl >/dev/null 2>&1; then
  note "no wheels in $carry/wheels: run benchmarks/gpu/fetch_wheels.sh here and carry .gpu-carry"; exit 3
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  "$carry"/wheels/*.whl || { note "installing the carried wheels failed"; exit 3; }
export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
export PATH="/tmp/site/bin:$PATH"
if python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target /tmp/hml-site . \
    >"$OUT/install.txt" 2>&1; then
  note "install: hml built with the carried hatchling and installed (tests import the checkout, the same code)"
else
  note "install: building hml failed (see env.txt); running from the checkout"
fi
export PYTHONPATH="$PWD:$PYTHONPATH"
if [ -d "$carry/data" ]; then
  export HML_DATA_MIRROR="file://$PWD/$carry/data"
fi
export HML_DATA_HOME=/tmp/hml-data

{
  echo "== nvidia-smi"; nvidia-smi
  echo "== versions"
  python3 - <<'PY'
import platform, numpy, torch
print("python", platform.python_version(), "numpy", numpy.__version__, "torch", torch.__version__,
      "torch CUDA", torch.version.cuda, "cuda available", torch.cuda.is_available())
try:
    import cupy
    print("cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "driver", cupy.cuda.runtime.driverGetVersion())
except Exception as exc:
    print("cupy unusable:", exc)
PY
  echo "== hml info"; python3 -c "from hml.cli import main; main(['info'])"
  echo "== install"; cat "$OUT/install.txt"
} >"$OUT/env.txt" 2>&1
head -n 20 "$OUT/env.txt"

stage() { case " $STAGES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# -- tests: the suite on CuPy, then the torch-on-cuda cases ----------------------------------------
if stage tests; then
  start=$SECONDS
  # One hung test must not take the stage's counts with it: pytest-timeout, where installed.
  per_test_limit=""
  python3 -c "import pytest_timeout" 2>/dev/null && per_test_limit="--timeout=90"
  # The suite's CPU-side tests dominate its time: spread them over TESTS_WORKERS (4) processes
  # with pytest-xdist where installed (the per-case counts are kept by the controller).
  workers=""
  python3 -c "import xdist" 2>/dev/null && workers="-n ${TESTS_WORKERS:-4}"
  {
    echo "== HML_BACKEND=cupy pytest (the suite; backend-parametrised tests on the cupy case)"
    HML_BACKEND=cupy timeout "${TESTS_TIMEOUT:-240}" python3 -m pytest -q -p no:cacheprovider \
      -o addopts="-rfE --strict-markers" $workers $per_test_limit --durations=10 2>&1
    echo "exit: $?"
    echo "== pytest -m gpu -k torch-cuda (the torch-on-cuda cases)"
    timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu -k torch-cuda $per_test_limit --durations=10 2>&1
    echo "exit: $?"
  } >"$OUT/tests.log" 2>&1
  note "tests: $((SECONDS - start)) s"
  # The per-backend counts conftest prints: proof the cases ran on the GPU.
  grep -E "^(cupy|torch-cuda) +[0-9]+ passed|^exit:|passed|failed" "$OUT/tests.log" | grep -vE "^\.|PASSED" \
    | tail -n 12 | tee -a "$summary"
  for gpu_case in cupy torch-cuda; do
    passed=$(grep -E "^$gpu_case +[0-9]+ passed" "$OUT/tests.log" | awk '{print $2}' | tail -n 1)
    [ "${passed:-0}" -gt 0 ] || note "WARNING: no test passed on the $gpu_case case: nothing was verified on it"
  done
fi

# -- the side-by-side benchmarks --------------------------------------------------------------
if stage bench; then
  start=$SECONDS
  bench_timeout="${BENCH_TIMEOUT:-300}"
  timeout "$bench_timeout" python3 benchmarks/gpu/side_by_side.py --scale "${BENCH_SCALE:-1.0}" --repeats 5 \
    --budget $((bench_timeout - 60)) ${BENCH_ONLY:+--only "$BENCH_ONLY"} ${BENCH_VARIANTS:+--variants "$BENCH_VARIANTS"} \
    --json "$OUT/gpu-results.json" --markdown "$OUT/gpu-results.md" >"$OUT/bench.log" 2>&1
  note "bench: exit $?, $((SECONDS - start)) s"
  tail -n 25 "$OUT/bench.log" >>"$summary"
fi

# -- asv: the GPU benchmarks once each (a smoke run; the timings that count are above) --------------
if stage asv; then
  start=$SECONDS
  # asv drops PYTHONPATH from its benchmark processes and passes ASV_PYTHONPATH in its place
  # (asv/environment.py); without it they could not import hml or the carried packages.
  export ASV_PYTHONPATH="$PYTHONPATH"
  {
    asv machine --yes --machine gpu-device >/dev/null
    HML_BENCH_SMOKE=1 timeout 90 asv run --python=same --quick --show-stderr --machine gpu-device -b bench_gpu 2>&1
    echo "exit: $?"
  } >"$OUT/asv.log" 2>&1
  note "asv: $((SECONDS - start)) s; $(grep '^exit:' "$OUT/asv.log"); $(grep -c 'failed' "$OUT/asv.log") lines saying failed"
fi
note "total: $SECONDS s"
