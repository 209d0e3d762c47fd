/**
 * `node dist/llama-quantize.js IN.gguf OUT.gguf TYPE`: llama.cpp's own quantizer (the libllama that
 * node-llama-cpp ships), for fixtures and comparisons — e.g. the end-to-end suite's llama.cpp Q4_0.
 * TYPE: q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k_m, q4_k_m, q5_k_m, q6_k, f16, bf16.
 */
import { llamaQuantize } from '../src/node/llama-quantize';

const FTYPES: Record<string, number> = {
  q4_0: 2,
  q4_1: 3,
  q8_0: 7,
  q5_0: 8,
  q5_1: 9,
  q2_k: 10,
  q3_k_m: 12,
  q4_k_m: 15,
  q5_k_m: 17,
  q6_k: 18,
  f16: 1,
  bf16: 32,
};
const [input, output, type] = process.argv.slice(2);
if (!input || !output || !(type in FTYPES)) {
  console.error(`usage: node dist/llama-quantize.js IN.gguf OUT.gguf (${Object.keys(FTYPES).join('|')})`);
  process.exit(1);
}
llamaQuantize(input, output, FTYPES[type]);
console.log(`wrote ${output} (llama.cpp ${type})`);
