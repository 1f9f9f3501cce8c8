#!/usr/bin/env bash
# The GPU check (examples/gpu_check.rs) in two halves, for a GPU machine without network that
# takes at most 64 MiB of carried build outputs:
#
#   scripts/gpu-check.sh build [autotune] [fusion]
#                                       here: one stripped, thin-LTO binary, gpu-bin/gpu_check
#                                       (--features cuda,wgpu; cargo profile `gpu`), and gzipped
#                                       beside it (about 14 MiB, so that two builds fit the
#                                       carry limit). `autotune` adds CubeCL's autotuning and
#                                       `fusion` Burn's kernel fusion (gpu-bin/gpu_check-autotune,
#                                       -fusion, -autotune-fusion).
#   scripts/gpu-check.sh run [OUT] ...  there: the machine's description in OUT/environment.txt,
#                                       the report in OUT/gpu-check.md (written as it goes),
#                                       the log in OUT/gpu-check.log, CubeCL's compilation and
#                                       autotuning logs in OUT/cubecl-*.log; stops after
#                                       $GPU_CHECK_TIMEOUT seconds (default 480). Arguments
#                                       after OUT go to gpu_check (e.g. --reps 5). The binary is
#                                       $GPU_CHECK_BIN (default gpu-bin/gpu_check), unpacked
#                                       from $GPU_CHECK_BIN.gz when only that is there.
#                                       CubeCL's autotuning results and compiled kernels
#                                       (PTX) persist in a folder packed at the end into
#                                       OUT/cubecl-cache.tar.gz; give a previous run's pack as
#                                       $GPU_CHECK_CACHE_FROM to skip the tuning and compiling
#                                       it finished (first use of autotuning takes minutes).
#
# Without a GPU, `run` still runs the CPU parts and exits with code 2, saying why no GPU
# backend could run.
set -uo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
build)
  set -e
  features=cuda,wgpu
  name=gpu_check
  shift
  for variant in "$@"; do
    case "$variant" in
    autotune | fusion) features=$features,$variant; name=$name-$variant ;;
    *) echo "error: unknown build variant '$variant' (autotune, fusion)" >&2; exit 2 ;;
    esac
  done
  cargo build --profile gpu --features "$features" --example gpu_check --locked
  mkdir -p gpu-bin
  cp "${CARGO_TARGET_DIR:-target}/gpu/examples/gpu_check" "gpu-bin/$name"
  gzip -6 -c "gpu-bin/$name" > "gpu-bin/$name.gz"
  size=$(stat -c %s "gpu-bin/$name")
  zsize=$(stat -c %s "gpu-bin/$name.gz")
  echo "gpu-bin/$name: $((size / 1024 / 1024)) MiB, gzipped $((zsize / 1024 / 1024)) MiB"
  if [ "$zsize" -ge $((64 * 1024 * 1024)) ]; then
    echo "error: the binary is over the 64 MiB a GPU machine accepts, even gzipped" >&2
    exit 1
  fi
  ;;
run)
  out=${2:-gpu-check-out}
  shift $(( $# >= 2 ? 2 : 1 ))
  mkdir -p "$out"
  bin=${GPU_CHECK_BIN:-gpu-bin/gpu_check}
  if [ ! -x "$bin" ] && [ -f "$bin.gz" ]; then
    gzip -dc "$bin.gz" > "$bin" && chmod +x "$bin"
  fi
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
  # CubeCL reads cubecl.toml from the working directory: log each compiled kernel and each
  # autotuning result (CUBECL_AUTOTUNE_LEVEL still sets the level).
  out=$(cd "$out" && pwd)
  bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
  script=$(pwd)/benches/pytorch/nas_bench.py
  cache=$out/cubecl-cache
  mkdir -p "$cache"
  if [ -n "${GPU_CHECK_CACHE_FROM:-}" ]; then
    tar -C "$cache" -xzf "$GPU_CHECK_CACHE_FROM" || echo "warning: could not unpack $GPU_CHECK_CACHE_FROM; starting with no cache" >&2
  fi
  cat > "$out/cubecl.toml" <<EOF
[autotune]
cache = { file = "$cache/autotune" }
[compilation]
cache = { file = "$cache/compilation" }
[compilation.logger]
level = "basic"
file = "$out/cubecl-compilation.log"
[autotune.logger]
level = "minimal"
file = "$out/cubecl-autotune.log"
EOF
  (cd "$out" && timeout -k 10 "${GPU_CHECK_TIMEOUT:-480}" "$bin" --out "$out/gpu-check.md" \
    --torch-script "$script" "$@") 2>&1 | tee "$out/gpu-check.log"
  rc=${PIPESTATUS[0]}
  tar -C "$cache" -czf "$out/cubecl-cache.tar.gz" . && rm -rf "$cache"
  [ "$rc" = 124 ] && echo "error: stopped after ${GPU_CHECK_TIMEOUT:-480} s; the report so far is in $out/gpu-check.md" >&2
  exit "$rc"
  ;;
*)
  echo "usage: scripts/gpu-check.sh build [autotune] [fusion] | run [OUT] [gpu_check arguments]" >&2
  exit 2
  ;;
esac
