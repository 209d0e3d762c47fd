/** Worker-thread entry of generateModel: makes a matrix's pieces (normals, outlier rows, encoding) off the writer's thread. */
import { parentPort } from 'node:worker_threads';
import { pieceBytes, type NormalsPiece } from './generate-model';

const port = parentPort;
if (!port) throw new Error('generate-worker.js must run as a worker thread');
let values = new Float32Array(0);
port.on('message', (m: { id: number; piece: NormalsPiece }) => {
  const n = m.piece.factors.length * m.piece.cols;
  if (values.length < n) values = new Float32Array(n);
  const bytes = pieceBytes(m.piece, values);
  port.postMessage({ id: m.id, bytes }, [bytes.buffer as ArrayBuffer]);
});
