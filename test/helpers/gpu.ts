/**
 * The WebGPU device of the gpu suites: Dawn on the machine's Vulkan driver, or on SwiftShader (a CPU
 * Vulkan that comes with Debian's chromium) where there is no GPU — set here so `npm run test:gpu`
 * needs no environment. Undefined only where no adapter exists at all (the suites then skip, visibly).
 */
import { existsSync } from 'node:fs';
import { openNodeGpu, type NodeGpu } from '../../src/compute/webgpu/node-device';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

export function openTestGpu(): Promise<NodeGpu | undefined> {
  if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;
  return openNodeGpu();
}

/** The suite's device, or undefined after marking the test skipped (visibly: no adapter here). */
export async function gpuOrSkip(ready: Promise<NodeGpu | undefined>, t: { skip: (message: string) => void }): Promise<NodeGpu | undefined> {
  const gpu = await ready;
  if (!gpu) t.skip('skipped: no WebGPU adapter');
  return gpu;
}
