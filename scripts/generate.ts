/**
 * Generate a Llama-shaped checkpoint for speed and memory work:
 *   node dist/generate.js OUT_DIR [--size 1GB | --layers N] [--hidden N] [--intermediate N]
 *        [--vocab N] [--heads N] [--kv-heads N] [--dtype BF16|F16|F32] [--shards N] [--seed N]
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { GENERATE_DEFAULTS, generateModel, layersForSize, type GenerateOptions } from '../src/node/generate-model';
import { isQuantizableFloat, type DType } from '../src/core/dtypes';

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)?$/i.exec(s.trim());
  if (!m) throw new Error(`--size must look like 500MB or 2GB (got "${s}")`);
  const mult: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };
  return Number(m[1]) * mult[(m[2] ?? 'B').toUpperCase()];
}

async function run(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      size: { type: 'string' },
      layers: { type: 'string' },
      hidden: { type: 'string' },
      intermediate: { type: 'string' },
      vocab: { type: 'string' },
      heads: { type: 'string' },
      'kv-heads': { type: 'string' },
      dtype: { type: 'string' },
      shards: { type: 'string' },
      seed: { type: 'string' },
    },
  });
  if (positionals.length !== 1)
    throw new Error('usage: generate OUT_DIR [--size 1GB] [--layers N] [--hidden N] [--dtype BF16] [--shards N]');
  const o: GenerateOptions = { ...GENERATE_DEFAULTS };
  if (values.hidden) o.hidden = Number(values.hidden);
  if (values.intermediate) o.intermediate = Number(values.intermediate);
  else if (values.hidden) o.intermediate = Math.round((o.hidden * 11) / 4 / 64) * 64;
  if (values.vocab) o.vocab = Number(values.vocab);
  if (values.heads) o.heads = Number(values.heads);
  if (values['kv-heads']) o.kvHeads = Number(values['kv-heads']);
  if (values.dtype) {
    const d = values.dtype.toUpperCase() as DType;
    if (!isQuantizableFloat(d)) throw new Error(`--dtype ${values.dtype}: one of F32, F16, BF16, F64`);
    o.dtype = d;
  }
  if (values.shards) o.shards = Number(values.shards);
  if (values.seed) o.seed = Number(values.seed);
  if (values.layers) o.layers = Number(values.layers);
  else if (values.size) o.layers = layersForSize(parseSize(values.size), o);
  const p = await generateModel(positionals[0], o, { workerScript: path.join(__dirname, 'generate-worker.js') });
  process.stdout.write(`${p}\n`);
}

run().catch((e: Error) => {
  process.stderr.write(`error: ${e.message}\n`);
  process.exitCode = 1;
});
