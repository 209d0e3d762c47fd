/**
 * Whether a panel's WebGPU adapter takes a piece of work, from the compute backend setting: one
 * rule for the panel's detail and for a quantize run borrowing the panel's GPU. `auto` takes a
 * hardware adapter only (on a software one such as SwiftShader a large tensor takes far longer
 * than on the CPU workers); `webgpu` takes any; `cpu` none.
 */
import * as l10n from '@vscode/l10n';
import type { ComputeBackend } from '../config';

/** What a panel said about its WebGPU (the `gpu` event); undefined until it has looked. */
export interface PanelGpuInfo {
  available: boolean;
  adapter: string;
  fallback: boolean;
}

export function gpuRoute(backend: ComputeBackend, gpu: PanelGpuInfo | undefined): { use: true } | { use: false; why: string } {
  if (backend === 'cpu') return { use: false, why: l10n.t('weightlens.compute.backend is cpu') };
  if (!gpu?.available)
    return {
      use: false,
      why: gpu ? l10n.t('no WebGPU adapter in this panel ({0})', gpu.adapter) : l10n.t('no WebGPU adapter in this panel yet'),
    };
  if (backend === 'auto' && gpu.fallback)
    return {
      use: false,
      why: l10n.t(
        "the panel's adapter ({0}) is a software one, slower than the CPU; set weightlens.compute.backend to webgpu to use it anyway",
        gpu.adapter,
      ),
    };
  return { use: true };
}
