/**
 * llama.cpp's own quantizer (`llama_model_quantize` of the libllama that node-llama-cpp ships),
 * called through koffi: the peer every Weightlens GGUF is measured against in the benchmark and the
 * tests. Development only (koffi is a devDependency); the CLI never loads it.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { GgmlType, LlamaFileType } from '../core/formats/gguf';

/** The folder of node-llama-cpp's prebuilt CPU binaries for this platform. */
export function llamaBinDir(): string {
  // The package's exports hide its files from require.resolve: look for it in node_modules upwards.
  const name = path.join('node_modules', '@node-llama-cpp', `${process.platform}-${process.arch}`, 'bins');
  for (let d = __dirname; ; d = path.dirname(d)) {
    const bins = path.join(d, name);
    if (existsSync(bins)) return path.join(bins, readdirSync(bins)[0]);
    if (path.dirname(d) === d) throw new Error(`no ${name} above ${__dirname}: install node-llama-cpp`);
  }
}

let quantizeFn: ((input: string, output: string, ftype: LlamaFileType, threads: number) => number) | undefined;

function bind(): NonNullable<typeof quantizeFn> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const koffi = require('koffi') as typeof import('koffi');
  const dir = llamaBinDir();
  const libName = readdirSync(dir).find((f) => /^libllama(\.v[\d.]+)?\.so$/.test(f) || /^libllama.*\.dylib$/.test(f) || f === 'llama.dll');
  if (!libName) throw new Error(`no libllama in ${dir}`);
  const lib = koffi.load(path.join(dir, libName));
  // include/llama.h, struct llama_model_quantize_params (the llama.cpp node-llama-cpp 3.21 ships).
  const Params = koffi.struct('llama_model_quantize_params', {
    nthread: 'int32_t',
    ftype: 'int',
    output_tensor_type: 'int',
    token_embedding_type: 'int',
    allow_requantize: 'bool',
    quantize_output_tensor: 'bool',
    only_copy: 'bool',
    pure: 'bool',
    keep_split: 'bool',
    dry_run: 'bool',
    imatrix: 'void *',
    kv_overrides: 'void *',
    tt_overrides: 'void *',
    prune_layers: 'void *',
    max_buf_size: 'size_t',
  });
  const defaults = lib.func('llama_model_quantize_default_params', Params, []);
  const quantize = lib.func('llama_model_quantize', 'uint32_t', ['const char *', 'const char *', koffi.pointer(Params)]);
  lib.func('llama_backend_init', 'void', [])();
  // Its per-tensor log goes nowhere: the caller reports what matters.
  const LogCallback = koffi.proto('void weightlens_llama_log(int level, const char *text, void *user)');
  const silent = koffi.register(() => {}, koffi.pointer(LogCallback));
  lib.func('llama_log_set', 'void', [koffi.pointer(LogCallback), 'void *'])(silent, null);
  return (input, output, ftype, threads) => {
    const p = defaults() as Record<string, unknown>;
    p.ftype = ftype;
    p.nthread = threads;
    return quantize(input, output, p) as number;
  };
}

/** Quantize an F32/F16 GGUF with llama.cpp's default rules for `ftype`; throws on failure. */
export function llamaQuantize(input: string, output: string, ftype: LlamaFileType, threads = 1): void {
  quantizeFn ??= bind();
  const rc = quantizeFn(input, output, ftype, threads);
  if (rc !== 0) throw new Error(`llama_model_quantize(${input} -> ${output}, ftype ${ftype}) returned ${rc}`);
}

let dequantFns: Map<string, (x: Uint8Array, y: Float32Array, k: number) => void> | undefined;

/**
 * ggml's own conversion of `count` weights of a ggml type to float32 (libggml-base's
 * `dequantize_row_*`, `ggml_fp16_to_fp32_row`, `ggml_bf16_to_fp32_row`): the reference our port is
 * tested against.
 */
export function ggmlDequantize(type: GgmlType, bytes: Uint8Array, count: number): Float32Array {
  if (type === GgmlType.F32) return new Float32Array(bytes.slice().buffer, 0, count);
  const symbol =
    type === GgmlType.F16
      ? 'ggml_fp16_to_fp32_row'
      : type === GgmlType.BF16
        ? 'ggml_bf16_to_fp32_row'
        : `dequantize_row_${GgmlType[type][0].toLowerCase()}${GgmlType[type].slice(1)}`;
  if (!dequantFns) dequantFns = new Map();
  let f = dequantFns.get(symbol);
  if (!f) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const koffi = require('koffi') as typeof import('koffi');
    const dir = llamaBinDir();
    const base = readdirSync(dir).find((n) => /^libggml-base.*\.(so|dylib|dll)$/.test(n));
    if (!base) throw new Error(`no libggml-base in ${dir}`);
    const fn = koffi.load(path.join(dir, base)).func(symbol, 'void', ['void *', 'float *', 'int64_t']);
    f = (x, y, k) => fn(x, y, k);
    dequantFns.set(symbol, f);
  }
  const y = new Float32Array(count);
  f(bytes, y, count);
  return y;
}
