/**
 * A web worker of the panel's scales pool (scales-pool.ts): scalesFromChoices on its share of a
 * block's rows — the float64 scoring of the near-tie groups' contenders the WebGPU search left.
 */
import { scalesFromChoices } from '../../src/core/quant/scales';
import { Channel, Transfer } from '../../src/shared/channel';
import type { NoMessages, ScalesWorkerProtocol } from './scales-pool';

const scope = self as unknown as Worker;
const channel = new Channel<NoMessages, ScalesWorkerProtocol>(
  { post: (m, transfer) => scope.postMessage(m, transfer) },
  {
    events: {},
    requests: {
      scales: (r) => {
        const scales = scalesFromChoices(r.values, r.rows, r.cols, r.settings, r.dtype, r.absmax, r.found);
        return new Transfer(scales, [scales.buffer]);
      },
    },
  },
);
scope.onmessage = (e: MessageEvent) => channel.receive(e.data);
