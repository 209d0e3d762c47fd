/** Help texts: the CLI contract, as users read it. */
export const MAIN_HELP = `weightlens — look inside safetensors weight files and quantize them without calibration data

Usage:
  weightlens inspect PATH [--json]
  weightlens quantize PATH [options]
  weightlens plan PATH [--budget SIZE] [--threshold-factor K] [--variant 8-4|4-3] [--fast] [--json] [--out PLAN.json]
  weightlens eval MODEL [--text FILE] [--ctx N] [--compare OTHER] [--json]
  weightlens compare A B [--json]
  weightlens fastewq train|evaluate DATA.csv
  weightlens help [COMMAND]
  weightlens --version

PATH is a .safetensors file, a sharded model's *.safetensors.index.json, or a folder holding one;
inspect and eval also take .gguf.
Run "weightlens help quantize" for the quantization options.
`;

export const INSPECT_HELP = `Usage: weightlens inspect PATH [--json]

Reads only the header(s): metadata, tensors (name, dtype, shape, bytes, file), totals with bits per
weight and the transformer blocks found from the tensor names. PATH may also be a .gguf (tensors
with their ggml types, shapes outermost first).

  --json     print one JSON object: {files, metadata, tensors, totalParams, totalBytes, blocks, ...}
`;

export const QUANTIZE_HELP = `Usage: weightlens quantize PATH [options]

Writes a quantized copy of the model (never over the input) and a JSON report of error statistics.

Method
  --method dareq|rtn|hqq       DARE-Q scale search (default), plain round-to-nearest (absmax scale, or
                               min-max with --asymmetric), or HQQ's zero-point solver (--asymmetric)
  --preset clip|paper|reference  DARE-Q preset (default clip; see README "Methods")
  --bits N                     2..8 (default 4; not with --plan, which sets each block's bits)
  --group-size N               weights per scale along a row; 0 = one scale per output channel (default 128)
  --asymmetric                 a zero point per group too: codes span [min, max] (compressed-tensors
                               symmetric: false; GGUF Q4_K / Q4_1)
  --sign-aware | --no-sign-aware
                               symmetric: the scale's sign follows the largest weight, which takes code
                               -2^(b-1), so all 2^b codes are used (llama.cpp's Q4_0 rule; default on)
  --refine N                   least-squares steps after the search (codes fixed -> best scale and zero
                               -> recode; a step is kept only if it lowers the loss)
  --weighting uniform|magnitude
                               weights of the L2 term: uniform (default) or rms + |w| (llama.cpp's
                               error weights without an importance matrix)

DARE-Q knobs (override the preset; refused with --method rtn, which has no search)
  --lambda-weight X            weight of the L2 term (default 1)
  --lambda-entropy X           weight of the residual-entropy term (default 0 = pure MSE search, the
                               measured best; 0.01 light)
  --normalize | --no-normalize divide L2 by mean(w^2) and H by ln(B) so lambdas are scale-free (clip: on)
  --bins N                     histogram bins B (default 256)
  --grid N                     candidate scales K (default 100)
  --clip-alpha-min X           low end of the clip range, as a fraction of the absmax scale (default 0.5)
  --search exhaustive|coarse-to-fine
                               score all K candidates (default, exact), or about 3 sqrt(K) of them:
                               ~3x faster with --lambda-entropy > 0, approximate (loss gap:
                               docs/benchmarks.md); at 0 it returns the exact result

Output
  --plan PLAN.json             mixed precision: each block at the bit width of an EWQ plan
                               ("weightlens plan PATH --out PLAN.json"); raw blocks are copied
  --format fake|compressed-tensors|gguf
                               fake-quant in the input dtype (default); pack-quantized int4/int8 with
                               config.json for vLLM / transformers (a folder); or GGUF for llama.cpp:
                               --bits 4 = Q4_0 (with --asymmetric: Q4_K where rows are multiples of
                               256, Q4_1 elsewhere), 8 = Q8_0 (groups of 32),
                               16/32 = plain F16/F32.
                               Llama-family models with config.json and tokenizer.model or llama2.c's
                               tokenizer.bin beside them
  --include RE                 quantize tensors whose names match RE (replaces the default rule:
                               2-D linear weights, no embeddings, lm_head or norms)
  --exclude RE                 do not quantize tensors whose names match RE
  --out PATH                   output file or folder (default: beside the input, named by method and
                               bits); an existing folder that is not a Weightlens output gets the
                               output inside it, under the default name
  --report PATH                JSON report (default: beside the output, *.report.json)
  --force                      replace a previous output (a file, or a folder Weightlens wrote);
                               never the input, a folder holding it, or a folder of other files

Compute
  --backend auto|cpu|webgpu    where the math runs (default auto)
  --threads N                  worker threads for the CPU backend (default: all cores)
  --quiet                      no progress on stderr
`;

export const EVAL_HELP = `Usage: weightlens eval MODEL [options]

Perplexity in llama.cpp itself (node-llama-cpp, CPU): the text is tokenized by the model's own
tokenizer, cut into non-overlapping windows that each start from BOS, and every token is scored
given the ones before it in its window. MODEL is a .gguf, or a safetensors model (converted to a
temporary F32 GGUF first).

  --text FILE        the text (default: short stories bundled for the sample model)
  --ctx N            tokens per window, BOS included (default 512)
  --max-tokens N     score only the first N tokens of the text
  --compare OTHER    evaluate OTHER on the same tokens and print the ratio OTHER / MODEL
  --threads N        llama.cpp threads (default 1)
  --json             print {text, results: [{model, perplexity, nll, tokens, windows, ctx, ...}], ratio}
  --quiet            no progress on stderr
`;

export const COMPARE_HELP = `Usage: weightlens compare A B [--json]

How far B's weights are from A's, tensor by tensor: MSE, SQNR, the largest |A - B|, the relative
error ||A - B|| / ||A|| and the cosine, with the worst tensors and the bits per weight of each side.
A and B are any of: a .safetensors file, a *.safetensors.index.json, a compressed-tensors
pack-quantized folder (dequantized: (q - zero point) x scale), a .gguf (F32, F16, BF16, Q8_0, Q4_0,
Q4_1, Q5_0, Q5_1, Q2_K to Q6_K, dequantized as ggml does), or a folder holding one of them. Tensors
are matched by name (GGUF names mapped to Hugging Face's); q/k rows in llama.cpp's order are put back
in HF's when the other side uses it. Tensors only one side has are listed.

  --json     print {a, b, tensors: [{name, mse, sqnrDb, maxAbs, relative, cosine, typeA, typeB, ...}],
             onlyInA, onlyInB, shapeMismatch, summary}
  --quiet    no progress on stderr
`;
