/**
 * The bundled sample as a Hugging Face conversion would store it: q/k rows permuted for rotate-half
 * RoPE (HF's `convert_llama_weights_to_hf` permute, written out here as the reference) and no
 * `rope_style` in config.json. What the GGUF and compare tests check the un-permutation against.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { buildSafetensors } from './safetensors';

const SAMPLE_DIR = path.resolve(__dirname, '../../../samples/stories260K');

/** HF's convert_llama_weights_to_hf permute: (n_head, hd/2, 2, cols) -> (n_head, 2, hd/2, cols). */
export function hfPermute(src: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const hd = rows / heads;
  const out = new Float32Array(src.length);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < hd / 2; i++)
      for (let j = 0; j < 2; j++)
        out.set(src.subarray((h * hd + 2 * i + j) * cols, (h * hd + 2 * i + j + 1) * cols), (h * hd + j * (hd / 2) + i) * cols);
  return out;
}

/** The sample with q/k rows in HF's rotate-half order and a config without rope_style. */
export async function hfLayoutSample(dir: string): Promise<string> {
  const bytes = readFileSync(path.join(SAMPLE_DIR, 'model.safetensors'));
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: 'F32'; shape: number[]; data_offsets: [number, number] }
  >;
  const config = JSON.parse(readFileSync(path.join(SAMPLE_DIR, 'config.json'), 'utf8'));
  const tensors = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])
    .map(([name, t]) => {
      const raw = bytes.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
      let values: Float32Array = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      const heads = /q_proj/.test(name) ? config.num_attention_heads : /k_proj/.test(name) ? config.num_key_value_heads : 0;
      if (heads) values = hfPermute(values, t.shape[0], t.shape[1], heads);
      return { name, dtype: 'F32' as const, shape: t.shape, values };
    });
  await fsp.writeFile(path.join(dir, 'model.safetensors'), buildSafetensors(tensors));
  delete config.rope_style;
  await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await fsp.copyFile(path.join(SAMPLE_DIR, 'tok512.bin'), path.join(dir, 'tok512.bin'));
  return path.join(dir, 'model.safetensors');
}
