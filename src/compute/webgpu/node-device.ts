/**
 * A GPUDevice in Node through the `webgpu` package (Dawn). On machines without a GPU, Dawn can run
 * on SwiftShader, a CPU Vulkan (VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json; see
 * DEVELOPERS.md) — slow, for correctness only: `auto` never picks such a fallback adapter.
 */
import { readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openDevice } from './device';
import { WebGpuSearch } from './search';

/**
 * On Linux Dawn needs a Vulkan driver; without one it prints warnings straight to stderr (from
 * native code) before failing. Looking for a driver manifest first keeps a machine without a GPU
 * quiet, and fast: the CLI then simply runs on the CPU.
 */
export function hasVulkanDriver(env: NodeJS.ProcessEnv = process.env): boolean {
  if (process.platform !== 'linux' || vulkanDriverNamed(env)) return true;
  const dataDirs = (env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').split(':');
  const dirs = [
    '/etc/vulkan/icd.d',
    ...dataDirs.map((d) => path.join(d, 'vulkan', 'icd.d')),
    path.join(env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share'), 'vulkan', 'icd.d'),
  ];
  return dirs.some((d) => listDir(d).some((f) => f.endsWith('.json')));
}

/** A Vulkan driver chosen in the environment: the loader then looks nowhere else. */
function vulkanDriverNamed(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES || env.VK_ADD_DRIVER_FILES);
}

/** A folder's entries, none where it is missing or unreadable. */
function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Whether a hardware GPU can be behind a Vulkan adapter here: a DRM render node (Mesa's and the
 * vendors' drivers), an NVIDIA device or WSL's /dev/dxg — or a driver named in the environment.
 * Without one the only adapters are software ones (SwiftShader, Mesa's lavapipe), which `auto`
 * never takes; opening them costs time, and Mesa's print native warnings on stderr (a Debian
 * server gets lavapipe with libvulkan1's recommends), around what should be a one-line error.
 */
export function hasGpuDevice(env: NodeJS.ProcessEnv = process.env, devDir = '/dev'): boolean {
  if (process.platform !== 'linux' || vulkanDriverNamed(env)) return true;
  return (
    listDir(path.join(devDir, 'dri')).some((f) => f.startsWith('renderD')) ||
    listDir(devDir).some((f) => /^nvidia\d+$/.test(f) || f === 'dxg')
  );
}

export interface NodeGpu {
  /** Dawn's instance: it must outlive the device (if it is garbage-collected, Dawn aborts). */
  instance: GPU;
  device: GPUDevice;
  search: WebGpuSearch;
  isFallback: boolean;
  description: string;
}

const keepAlive = new Set<GPU>();

export async function openNodeGpu(): Promise<NodeGpu | undefined> {
  if (!hasVulkanDriver()) return undefined;
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch {
    return undefined;
  }
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create([]);
  const opened = await openDevice(gpu);
  if (typeof opened === 'string') return undefined;
  keepAlive.add(gpu);
  return {
    instance: gpu,
    device: opened.device,
    search: new WebGpuSearch(opened.device, opened.description),
    isFallback: opened.isFallback,
    description: opened.description,
  };
}
