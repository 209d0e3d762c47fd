#!/usr/bin/env bash
# Runs on the device tool's GPU machine, in a copy of this repository with .device/ (see pack.sh)
# and dist/ carried: unpacks Node, Dawn and the Vulkan loader, points the loader at the NVIDIA
# driver, then `node dist/bench.js` (what `npm run bench` runs after building) with its log and
# results written to $OUT as they come, so a run stopped at its limit still returns what it measured.
#   E2E (default 4GB): the generated checkpoint the CLI quantizes end to end;
#   LAYERS (default 32): blocks of the 7B-shaped model (13.5 GB at 32) whose overview is timed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/wl-device-out}
mkdir -p "$OUT"
unxz() {
  # xz where the image has it, else Python's lzma (the GPU image always has python3).
  if command -v xz > /dev/null; then xz -dc "$1" > "$2"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
{
  for f in .device/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
  mkdir -p /tmp/wl-node/bin node_modules/webgpu/dist/linux-x64
  unxz .device/node.xz /tmp/wl-node/bin/node && chmod +x /tmp/wl-node/bin/node
  cp .device/webgpu/package.json .device/webgpu/index.js node_modules/webgpu/
  unxz .device/webgpu/dist/linux-x64/dawn.node.xz node_modules/webgpu/dist/linux-x64/dawn.node
  # The driver's own manifests (a read-only mount on these machines), where the loader does not look.
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$f" ]; then export VK_DRIVER_FILES=$f; fi
  done
  [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] && export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  echo "vulkan driver: ${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-none found}}"
  nvidia-smi -L 2> /dev/null || echo 'nvidia-smi: none'
  nproc
  /tmp/wl-node/bin/node --version
} > "$OUT/setup.log" 2>&1
cat "$OUT/setup.log"
/tmp/wl-node/bin/node dist/bench.js --e2e-size "${E2E:-4GB}" --overview-layers "${LAYERS:-32}" --out "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"
