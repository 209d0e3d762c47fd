#!/usr/bin/env bash
# Packs what `npm run bench` needs on the GPU machine the device tool lends (a bare image: no Node,
# no npm registry, no Vulkan loader; only the NVIDIA driver) into .device/, which git ignores:
# this Node (xz, ~24 MB), Dawn's linux-x64 binary with the `webgpu` package's loader (~5 MB) and
# the Vulkan loader with the GL dispatch libraries the NVIDIA Vulkan driver links (Debian .debs).
# With dist/ it stays well inside the 64 MiB the tool carries. Then, with the device tool:
#   run  command "bash scripts/device/bench.sh"  carry [".device", "dist"]  timeout_s 540
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run build
rm -rf .device
mkdir -p .device/webgpu/dist/linux-x64 .device/debs
xz -T0 -6 -c "$(command -v node)" > .device/node.xz
cp node_modules/webgpu/package.json node_modules/webgpu/index.js .device/webgpu/
xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > .device/webgpu/dist/linux-x64/dawn.node.xz
# The device README's recipe: amd64 packages whatever this machine is, with their own lists.
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
mkdir -p /tmp/amd64/partial
apt-get "${o[@]}" update -qq
(cd .device/debs && apt-get "${o[@]}" download libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libopengl0 libgles2)
du -sh .device dist
