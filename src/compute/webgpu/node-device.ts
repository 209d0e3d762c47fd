/**
 * A GPUDevice in Node through the `webgpu` package (Dawn). On machines without a GPU, Dawn can run
 * on SwiftShader, a CPU Vulkan (VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json; see
 * DEVELOPERS.md) — slow, for correctness only: `auto` never picks such a fallback adapter.
 */
import { WebGpuSearch } from './search';

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
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch {
    return undefined;
  }
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return undefined;
  const info = adapter.info;
  const isFallback = Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter) || /swiftshader|llvmpipe|lavapipe/i.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`);
  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
    },
  });
  const description = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'WebGPU adapter';
  keepAlive.add(gpu);
  return { instance: gpu, device, search: new WebGpuSearch(device, description), isFallback, description };
}
