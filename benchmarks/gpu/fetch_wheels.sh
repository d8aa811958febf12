#!/usr/bin/env bash
# Run HERE (a machine with internet), before benchmarks/gpu/run.sh goes to the device machine.
#
# The device machine has Python 3.12, CuPy (CUDA 13), PyTorch, NumPy, pytest, hypothesis,
# scikit-learn and threadpoolctl, but no package registry and no hatchling. This fills
# .gpu-carry/ (ignored by git, carried with the run) with what it lacks:
#   .gpu-carry/wheels/  array-api-compat, array-api-extra, array-api-strict, asv and its needs,
#                       and the build backend (hatchling, and its readme plugin), as Python 3.12 x86-64 wheels;
#   .gpu-carry/data/    the MNIST, homemade and Fashion-MNIST (labels) files of the data mirror (../shared/data does
#                       not travel), laid out as a mirror, for HML_DATA_MIRROR.
# Versions are pinned to what the test suite here runs with; one version of each.
# importlib-metadata is held at 8.7: its 10.x needs lazy_importer on Python 3.12, which broke
# asv on the first GPU run (2026-11-23).
set -euo pipefail
cd "$(dirname "$0")/../.."
carry=.gpu-carry
exclude="$(git rev-parse --git-dir)/info/exclude"
mkdir -p "$(dirname "$exclude")"
grep -qxF "/$carry/" "$exclude" 2>/dev/null || echo "/$carry/" >> "$exclude"
rm -rf "$carry/wheels" && mkdir -p "$carry/wheels" "$carry/data"

wheels=(
  array-api-compat==1.16.0 array-api-extra==0.11.5 array-api-strict==2.6.1
  asv==0.6.6 asv-runner==0.3.2 json5 pympler importlib-metadata==8.7.0 virtualenv distlib platformdirs
  hatchling trove-classifiers pathspec hatch-fancy-pypi-readme
)
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$carry/wheels" "${wheels[@]}"

mirror="${HML_DATA_MIRROR_DIR:-../shared/data}"
for set in mnist homemade fashion-mnist; do  # fashion-mnist: images and labels (about 30 MB of the 64 MiB carry)
  if [ -d "$mirror/$set" ]; then
    rm -rf "$carry/data/$set" && cp -r "$mirror/$set" "$carry/data/$set"
  else
    echo "warning: $mirror/$set not found; the MNIST benchmarks will use random pixels and the demo will stop" >&2
  fi
done
ls -l "$carry/wheels"
du -sh "$carry"
