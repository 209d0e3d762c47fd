/** Worker-thread entry: runs quantization jobs off the main thread (the CLI's, or the extension host's). */
import { parentPort } from 'node:worker_threads';
import { runQuantJob, type QuantJob } from '../core/quant/job';
import { serializeError } from './pool-protocol';

if (!parentPort) throw new Error('worker.js must run as a worker thread');
const port = parentPort;
port.on('message', (msg: { id: number; job: QuantJob }) => {
  try {
    const result = runQuantJob(msg.job);
    port.postMessage({ id: msg.id, ok: true, result }, [result.data.buffer as ArrayBuffer, result.scales.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ id: msg.id, ok: false, error: serializeError(e) });
  }
});
