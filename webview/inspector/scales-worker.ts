/**
 * A web worker of the panel's scales pool (scales-pool.ts): scalesFromChoices on its share of a
 * block's rows — the float64 scoring of the near-tie groups' contenders the WebGPU search left.
 */
import { scalesFromChoices } from '../../src/core/quant/scales';
import type { ScalesRequest } from './scales-pool';

self.onmessage = (e: MessageEvent<ScalesRequest>) => {
  const r = e.data;
  try {
    const scales = scalesFromChoices(r.values, r.rows, r.cols, r.settings, r.dtype, r.absmax, r.found);
    (self as unknown as Worker).postMessage({ id: r.id, scales }, [scales.buffer]);
  } catch (err) {
    (self as unknown as Worker).postMessage({ id: r.id, error: err instanceof Error ? err.message : String(err) });
  }
};
