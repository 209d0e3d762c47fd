/**
 * One way to open a GPUDevice for the kernels, on Dawn in Node and on navigator.gpu in the
 * webview: the adapter's limits checked against what the kernels need, the largest buffers it
 * allows requested, software adapters (SwiftShader and the like) recognized, and a description.
 */
import { GPU_MAX_BINS } from '../backend';

/** The largest workgroup any runner uses (the preamble's WG): its reduction scratch is WG vec4s. */
export const MAX_WORKGROUP_SIZE = 256;
/** Workgroup memory the kernels need: the largest histogram and the reduction scratch. */
export const NEEDED_WORKGROUP_STORAGE = GPU_MAX_BINS * 4 + MAX_WORKGROUP_SIZE * 16 + 16;

export interface OpenedDevice {
  device: GPUDevice;
  /** Vendor, architecture, device and description, as the adapter states them. */
  description: string;
  /** A software adapter: correct, but slower than the CPU. `auto` never picks one. */
  isFallback: boolean;
}

/** The device, or why there is none (one line). */
export async function openDevice(gpu: GPU): Promise<OpenedDevice | string> {
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return 'no WebGPU adapter';
  const l = adapter.limits;
  if (l.maxComputeWorkgroupStorageSize < NEEDED_WORKGROUP_STORAGE)
    return `the adapter has ${l.maxComputeWorkgroupStorageSize} bytes of workgroup memory; the kernels need ${NEEDED_WORKGROUP_STORAGE}`;
  if (l.maxComputeInvocationsPerWorkgroup < MAX_WORKGROUP_SIZE)
    return `the adapter runs ${l.maxComputeInvocationsPerWorkgroup} invocations per workgroup; the kernels need ${MAX_WORKGROUP_SIZE}`;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    },
  });
  const info = adapter.info;
  const description = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'WebGPU adapter';
  // `isFallbackAdapter` moved from the adapter to its info; older runtimes have neither.
  const flagged =
    (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const isFallback = Boolean(flagged) || /swiftshader|llvmpipe|lavapipe/i.test(description);
  return { device, description, isFallback };
}
