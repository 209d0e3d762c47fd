/** Worker-thread entry: runs quantization jobs off the main thread (the CLI's, or the extension host's). */
import { parentPort } from 'node:worker_threads';
import { serveJobs } from './pool';

if (!parentPort) throw new Error('worker.js must run as a worker thread');
serveJobs(parentPort as never);
