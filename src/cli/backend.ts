/**
 * `--backend auto|cpu|webgpu`, shared by quantize and plan: the Node GPU to use, or undefined for
 * the CPU. `auto` takes a hardware adapter only — a software one (SwiftShader) is slower than the
 * CPU path — and looks for none on a machine with no GPU device; `webgpu` takes any adapter and is
 * an error where there is none.
 */
import { WeightlensError } from '../core/errors';
import { hasGpuDevice, openNodeGpu, type NodeGpu } from '../compute/webgpu/node-device';
import { parseChoice } from './args';

/** `needed` false (RTN, FastEWQ: nothing for a GPU to do) skips opening one at all. */
export async function gpuForBackend(value: string | undefined, needed: boolean): Promise<NodeGpu | undefined> {
  const backend = parseChoice('backend', value, ['auto', 'cpu', 'webgpu'] as const) ?? 'auto';
  if (backend === 'cpu' || !needed || (backend === 'auto' && !hasGpuDevice())) return undefined;
  const gpu = await openNodeGpu().catch(() => undefined);
  if (backend === 'webgpu' && !gpu) {
    throw new WeightlensError(
      '--backend webgpu: no WebGPU adapter found (install a GPU driver with Vulkan, or see DEVELOPERS.md for SwiftShader); use --backend cpu',
    );
  }
  if (gpu && backend === 'auto' && gpu.isFallback) {
    gpu.search.dispose();
    gpu.device.destroy();
    return undefined;
  }
  return gpu;
}
