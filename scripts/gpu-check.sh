#!/usr/bin/env bash
# The GPU check (examples/gpu_check.rs) in two halves, for a GPU machine without network that
# takes at most 64 MiB of carried build outputs:
#
#   scripts/gpu-check.sh build          here: one stripped, thin-LTO binary, gpu-bin/gpu_check
#                                       (--features cuda,wgpu; cargo profile `gpu`)
#   scripts/gpu-check.sh run [OUT] ...  there: the machine's description in OUT/environment.txt,
#                                       the report in OUT/gpu-check.md (written as it goes),
#                                       the log in OUT/gpu-check.log; stops after
#                                       $GPU_CHECK_TIMEOUT seconds (default 480). Arguments
#                                       after OUT go to gpu_check (e.g. --reps 5).
#
# Without a GPU, `run` still runs the CPU parts and exits with code 2, saying why no GPU
# backend could run.
set -uo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
build)
  set -e
  cargo build --profile gpu --features cuda,wgpu --example gpu_check --locked
  mkdir -p gpu-bin
  cp "${CARGO_TARGET_DIR:-target}/gpu/examples/gpu_check" gpu-bin/gpu_check
  size=$(stat -c %s gpu-bin/gpu_check)
  echo "gpu-bin/gpu_check: $((size / 1024 / 1024)) MiB"
  if [ "$size" -ge $((64 * 1024 * 1024)) ]; then
    echo "error: the binary is over the 64 MiB a GPU machine accepts" >&2
    exit 1
  fi
  ;;
run)
  out=${2:-gpu-check-out}
  shift $(( $# >= 2 ? 2 : 1 ))
  mkdir -p "$out"
  bin=${GPU_CHECK_BIN:-gpu-bin/gpu_check}
  if [ ! -x "$bin" ]; then
    echo "error: $bin is missing: run \`scripts/gpu-check.sh build\` first (or set GPU_CHECK_BIN)" >&2
    exit 2
  fi
  {
    echo "date: $(date -u +%FT%TZ)"
    echo "cpus: $(nproc)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "nvidia-smi: not found"
    echo "libraries:"
    ldconfig -p 2>/dev/null | grep -E "libcuda\.so|libnvrtc|libvulkan" || echo "  (none of libcuda, libnvrtc, libvulkan in the linker cache)"
    echo "Vulkan ICDs: $(ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null | tr '\n' ' ')"
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' 2>&1 | tail -1
  } > "$out/environment.txt" 2>&1
  cat "$out/environment.txt"
  timeout -k 10 "${GPU_CHECK_TIMEOUT:-480}" "$bin" --out "$out/gpu-check.md" "$@" 2>&1 | tee "$out/gpu-check.log"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 124 ] && echo "error: stopped after ${GPU_CHECK_TIMEOUT:-480} s; the report so far is in $out/gpu-check.md" >&2
  exit "$rc"
  ;;
*)
  echo "usage: scripts/gpu-check.sh build | run [OUT] [gpu_check arguments]" >&2
  exit 2
  ;;
esac
