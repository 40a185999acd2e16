#!/usr/bin/env bash
# Install time and size of each facecli variant, each in a fresh venv from a clean clone of HEAD, without
# pip's cache; then the README's quick-start command on generated photos. Usage:
#   bash scripts/measure_install.sh [inference] [train] [test] [gpu]      (default: inference train)
# Prints one line per variant: seconds to install, venv size, and whether the command after it worked.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/facecli-install.XXXXXX)"
git clone -q "$repo" "$work/src"
python3 - "$work/photos" <<'PY'
import sys, pathlib, numpy as np
from PIL import Image
out = pathlib.Path(sys.argv[1]); out.mkdir()
rng = np.random.default_rng(0)
for i in range(20):
    Image.fromarray(rng.integers(0, 255, (250, 250, 3), dtype=np.uint8)).save(out / f"p{i:02d}.jpg")
PY

variants=("$@")
[ $# -eq 0 ] && variants=(inference train)
for v in "${variants[@]}"; do
  venv="$work/venv-$v"
  python3 -m venv "$venv"
  "$venv/bin/pip" -q install --upgrade pip >/dev/null 2>&1
  case "$v" in
    inference) spec="."; after=("$venv/bin/facecli" classify "$work/photos" --out "$work/results.csv") ;;
    train) spec=".[train]"; after=("$venv/bin/facecli" train gender --help) ;;
    test) spec=".[test]"; after=(bash -c "cd '$work/src' && '$venv/bin/python' -m pytest -p no:cacheprovider") ;;
    gpu) spec=".[gpu]"; after=("$venv/bin/python" -c "import onnxruntime as o; print(o.get_available_providers())") ;;
    *) echo "unknown variant $v"; continue ;;
  esac
  start=$(date +%s.%N)
  (cd "$work/src" && "$venv/bin/pip" install -q --no-cache-dir "$spec" >"$work/pip-$v.log" 2>&1)
  rc=$?
  secs=$(python3 -c "import time; print(f'{time.time() - $start:.0f}')")
  size=$(du -sm "$venv" | cut -f1)
  torch=$("$venv/bin/python" -c "import importlib.util as u; print('torch' if u.find_spec('torch') else 'no torch')")
  if [ $rc -eq 0 ] && "${after[@]}" >"$work/after-$v.log" 2>&1; then ok=ok; else ok="FAILED (see $work)"; fi
  echo "$v: pip install '$spec' rc=$rc in ${secs} s, venv ${size} MB ($torch); then: ${after[*]##*/} -> $ok"
done
echo "logs in $work"
