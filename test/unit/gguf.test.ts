/**
 * GGUF out: block packing against ggml's reference dequantizers (re-written here from
 * ggml-quants.c), the file's structure read back by node-llama-cpp's GGUF reader, and the real
 * test — llama.cpp (node-llama-cpp) loads the sample's F32, Q8_0 and Q4_0 exports, and the F32 one
 * generates the model's published story token for token, from the llama2.c layout and from an
 * HF-layout copy whose q/k rows are permuted as HF's converter does.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { f16Table } from '../../src/core/dtypes';
import { GgmlType, packQ4_0, packQ8_0 } from '../../src/core/formats/gguf';
import { permuteRows } from '../../src/core/formats/gguf-llama';
import { buildSafetensors, tempDir } from '../helpers/safetensors';
import { hfLayoutSample, hfPermute } from '../helpers/hf-layout';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/weightlens.js');
const SAMPLE_DIR = path.join(ROOT, 'samples/stories260K');
const PUBLISHED =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She said, \"I want to play with your ball, but I can't find it.\"\nLily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\nLily didn't want to help her mom, so she said, \"I'm sorry, mom. I didn't know what to do.\" Her mom said, \"Don't worry, Lily. We can help you.";

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** ggml-quants.c dequantize_row_q8_0: y = d * q. */
function dequantQ8_0(bytes: Uint8Array, n: number): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const y = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const d = f16Table[dv.getUint16(b * 34, true)];
    for (let j = 0; j < 32; j++) y[b * 32 + j] = d * dv.getInt8(b * 34 + 2 + j);
  }
  return y;
}

/** ggml-quants.c dequantize_row_q4_0: x0 = (qs[j] & 0x0F) - 8, x1 = (qs[j] >> 4) - 8; y[j] = x0 d, y[j+16] = x1 d. */
function dequantQ4_0(bytes: Uint8Array, n: number): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const y = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const d = f16Table[dv.getUint16(b * 18, true)];
    for (let j = 0; j < 16; j++) {
      const q = bytes[b * 18 + 2 + j];
      y[b * 32 + j] = ((q & 0x0f) - 8) * d;
      y[b * 32 + j + 16] = ((q >> 4) - 8) * d;
    }
  }
  return y;
}

test('Q8_0 and Q4_0 blocks dequantize (as ggml does) to exactly code x stored f16 scale', () => {
  const rows = 3;
  const cols = 64;
  const codes4 = Int8Array.from({ length: rows * cols }, (_, i) => ((i * 7) % 16) - 8);
  const codes8 = Int8Array.from({ length: rows * cols }, (_, i) => ((i * 37) % 255) - 127);
  const scales = Float64Array.from({ length: (rows * cols) / 32 }, (_, i) => f16Table[0x2000 + i * 37]);
  const y4 = dequantQ4_0(packQ4_0(codes4, scales, rows, cols), rows * cols);
  const y8 = dequantQ8_0(packQ8_0(codes8, scales, rows, cols), rows * cols);
  for (let i = 0; i < rows * cols; i++) {
    assert.equal(y4[i], Math.fround(codes4[i] * scales[Math.floor(i / 32)]), `q4 ${i}`);
    assert.equal(y8[i], Math.fround(codes8[i] * scales[Math.floor(i / 32)]), `q8 ${i}`);
  }
});

test('q/k rows: llama.cpp permute undoes HF permute, head by head', () => {
  const heads = 2;
  const hd = 8;
  const rows = heads * hd;
  const src = Float32Array.from({ length: rows * 3 }, (_, i) => i);
  const hf = hfPermute(src, rows, 3, heads);
  assert.deepEqual([...permuteRows(hf, (n) => new Float32Array(n), rows, 3, heads)], [...src]);
  // And it is not the identity: row 1 of a head (pair 0, second) comes from row hd/2.
  assert.equal(permuteRows(src, (n) => new Float32Array(n), rows, 3, heads)[3], src[(hd / 2) * 3]);
});

async function llamaOrSkip(t: { skip: (m: string) => void }) {
  try {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    return await getLlama({
      gpu: false,
      build: 'never',
      skipDownload: true,
      usePrebuiltBinaries: true,
      progressLogs: false,
      logLevel: LlamaLogLevel.error,
    });
  } catch (e) {
    t.skip(`skipped: node-llama-cpp has no binary here (${(e as Error).message.split('\n')[0]})`);
    return undefined;
  }
}

async function greedy(llama: NonNullable<Awaited<ReturnType<typeof llamaOrSkip>>>, file: string, n: number): Promise<string> {
  const model = await llama.loadModel({ modelPath: file });
  const ctx = await model.createContext({ contextSize: 512, threads: 1 });
  try {
    const seq = ctx.getSequence();
    const out: number[] = [];
    let tok = model.tokens.bos!;
    for (let i = 0; i < n; i++) {
      const r = await seq.controlledEvaluate([[tok, { generateNext: { token: true, options: { temperature: 0 } } }]]);
      tok = r[0]!.next.token!;
      out.push(tok);
    }
    return model.detokenize(out as unknown as Parameters<typeof model.detokenize>[0]);
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

test('llama.cpp loads the GGUF exports of the sample; the F32 one tells the published story, from both q/k layouts', async (t) => {
  const llama = await llamaOrSkip(t);
  if (!llama) return;
  const dir = await tempDir();
  const hf = await hfLayoutSample(await fsp.mkdtemp(path.join(dir, 'hf-')));
  try {
    for (const [what, input] of [
      ['llama2.c layout (rope_style interleaved)', path.join(SAMPLE_DIR, 'model.safetensors')],
      ['HF layout (q/k permuted, no rope_style)', hf],
    ]) {
      const out = path.join(dir, `${what.slice(0, 2)}-f32.gguf`);
      const r = cli('quantize', input, '--format', 'gguf', '--bits', '32', '--out', out, '--quiet');
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(readFileSync(out.replace(/\.gguf$/, '.report.json'), 'utf8'));
      assert.equal(report.settings.gguf.qkRowsPermuted, input === hf, what);
      assert.equal(await greedy(llama, out, 256), PUBLISHED, what);
    }
    for (const [bits, type] of [
      ['8', GgmlType.Q8_0],
      ['4', GgmlType.Q4_0],
    ] as const) {
      const out = path.join(dir, `q${bits}.gguf`);
      const r = cli(
        'quantize',
        path.join(SAMPLE_DIR, 'model.safetensors'),
        '--format',
        'gguf',
        '--bits',
        bits,
        '--out',
        out,
        '--quiet',
        '--threads',
        '1',
      );
      assert.equal(r.code, 0, r.stderr);
      const { readGgufFileInfo } = await import('node-llama-cpp');
      const info = await readGgufFileInfo(out);
      const types = new Map(info.fullTensorInfo!.map((x) => [x.name, Number(x.ggmlType)]));
      assert.equal(types.get('blk.0.attn_q.weight'), type, `${bits}-bit: attn_q is ${GgmlType[type]}`);
      assert.equal(types.get('blk.0.ffn_down.weight'), GgmlType.F16, 'rows of 172: F16 as llama.cpp falls back');
      assert.equal(types.get('token_embd.weight'), GgmlType.Q8_0, 'the tied embedding in 8 bits');
      assert.equal(types.get('blk.0.attn_norm.weight'), GgmlType.F32);
      const story = await greedy(llama, out, 32);
      assert.match(story, /^Once upon a time/, `${bits}-bit GGUF generates: ${story}`);
    }
  } finally {
    await llama.dispose();
  }
});

test('eval: perplexity of the sample in llama.cpp, compared with its Q4_0 on the same tokens', async (t) => {
  if (!(await llamaOrSkip(t))) return;
  const dir = await tempDir();
  const q4 = path.join(dir, 'q4.gguf');
  assert.equal(
    cli('quantize', path.join(SAMPLE_DIR, 'model.safetensors'), '--format', 'gguf', '--bits', '4', '--out', q4, '--quiet').code,
    0,
  );
  const r = cli('eval', path.join(SAMPLE_DIR, 'model.safetensors'), '--compare', q4, '--json', '--quiet');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const [f32, q] = j.results;
  assert.equal(f32.tokens, q.tokens);
  assert.ok(f32.perplexity > 1 && f32.perplexity < 20, `F32 perplexity ${f32.perplexity}`);
  assert.ok(q.perplexity > f32.perplexity && q.perplexity < f32.perplexity * 1.2, `Q4_0 ${q.perplexity} vs F32 ${f32.perplexity}`);
  assert.ok(Math.abs(j.ratio - q.perplexity / f32.perplexity) < 1e-12);
  // --max-tokens scores fewer tokens; a missing text is one line naming it.
  const short = JSON.parse(cli('eval', q4, '--max-tokens', '100', '--json', '--quiet').stdout);
  assert.equal(short.results[0].tokens, 100, 'each token scored, the first given BOS');
  const bad = cli('eval', q4, '--text', path.join(dir, 'missing.txt'));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: .*missing\.txt: no such file\n$/);
});

test('eval checks every model before llama.cpp scores any: a missing, broken or unconvertible second model fails at once', async () => {
  const { evaluateModels } = await import('../../src/node/evaluate');
  const dir = await tempDir();
  const sample = path.join(SAMPLE_DIR, 'model.safetensors');
  const broken = path.join(dir, 'broken.gguf');
  await fsp.writeFile(broken, 'GGUF but not really');
  const bare = path.join(dir, 'bare');
  await fsp.mkdir(bare);
  await fsp.copyFile(sample, path.join(bare, 'model.safetensors'));
  const cases: [string, RegExp][] = [
    [path.join(dir, 'missing.gguf'), /missing\.gguf: no such file/],
    [broken, /broken\.gguf: GGUF: /],
    [path.join(bare, 'model.safetensors'), /bare[/\\]config\.json: GGUF output needs the model's config\.json/],
  ];
  for (const [second, why] of cases) {
    let scored = 0;
    await assert.rejects(evaluateModels({ models: [sample, second], version: 'test', onProgress: () => scored++ }), (e: Error) =>
      why.test(e.message),
    );
    assert.equal(scored, 0, `no token of ${path.basename(sample)} scored before ${path.basename(second)} was refused`);
  }
});

test('GGUF refusals: group size, bits, architecture, tokenizer, one line each', async () => {
  const dir = await tempDir();
  const s = path.join(SAMPLE_DIR, 'model.safetensors');
  const g = (...a: string[]) => cli('quantize', s, '--format', 'gguf', '--out', path.join(dir, 'x.gguf'), ...a);
  assert.match(g('--group-size', '128').stderr, /GGUF blocks hold 32 weights: --group-size must be 32/);
  assert.match(g('--bits', '3').stderr, /GGUF output stores 4-bit \(Q4_0, Q4_1\) or 8-bit \(Q8_0\) weights/);
  const other = path.join(dir, 'gpt');
  await fsp.mkdir(other);
  await fsp.copyFile(s, path.join(other, 'model.safetensors'));
  await fsp.writeFile(path.join(other, 'config.json'), JSON.stringify({ model_type: 'gpt2' }));
  assert.match(
    cli('quantize', path.join(other, 'model.safetensors'), '--format', 'gguf').stderr,
    /config\.json: model_type "gpt2" cannot be written as GGUF yet \(supported: llama, mistral, qwen2/,
  );
  await fsp.writeFile(path.join(other, 'config.json'), readFileSync(path.join(SAMPLE_DIR, 'config.json')));
  assert.match(
    cli('quantize', path.join(other, 'model.safetensors'), '--format', 'gguf').stderr,
    /needs the model's tokenizer beside the weights/,
  );
  assert.deepEqual((await fsp.readdir(other)).sort(), ['config.json', 'model.safetensors'], 'nothing written');
});

test("quality in llama.cpp: in every 4-bit format the default beats llama.cpp's own quantizer, HQQ-style and RTN", async (t) => {
  if (!(await llamaOrSkip(t))) return;
  const { qualityTable } = await import('../../src/node/quality-table');
  const rows = await qualityTable(path.join(SAMPLE_DIR, 'model.safetensors'), await tempDir(), {
    version: 'test',
    formats: ['Q4_0', 'Q4_1', 'ct sym g32', 'ct asym g32', 'ct sym g128', 'ct asym g128'],
  });
  const row = (format: string, name: string) => rows.find((r) => r.format === format && r.name.trim() === name)!;
  for (const r of rows)
    t.diagnostic(
      `${r.format} ${r.name}: perplexity ${r.perplexity.toFixed(4)} (${(100 * r.increase).toFixed(2)}%), KL ${r.kl.toExponential(3)}, ${r.bytes} bytes`,
    );
  const { readGgufFileInfo } = await import('node-llama-cpp');
  const typesOf = async (file: string) =>
    Object.fromEntries((await readGgufFileInfo(file)).fullTensorInfo!.map((x) => [x.name, Number(x.ggmlType)]));
  for (const f of ['Q4_0', 'Q4_1'])
    assert.deepEqual(
      await typesOf(row(f, 'Weightlens default').file),
      await typesOf(row(f, `llama.cpp ${f}`).file),
      `${f}: the same type for every tensor`,
    );
  // Q4_1 blocks are right: min-max RTN is llama.cpp's own Q4_1 rule, so the two land within 1%.
  assert.ok(Math.abs(row('Q4_1', 'RTN (min-max)').perplexity / row('Q4_1', 'llama.cpp Q4_1').perplexity - 1) < 0.01);
  // In every 4-bit format the default beats every peer row (llama.cpp's own quantizer, HQQ-style,
  // RTN) on both measures, at the same bits per weight.
  const { peersOf } = await import('../../src/node/quality-table');
  for (const f of ['Q4_0', 'Q4_1', 'ct sym g32', 'ct asym g32', 'ct sym g128', 'ct asym g128'] as const) {
    const ours = row(f, 'Weightlens default');
    const peers = peersOf(rows, f);
    assert.ok(peers.length >= (f.startsWith('ct') ? (f.includes('asym') ? 2 : 1) : 2), `${f}: its peers are in the table`);
    for (const theirs of peers) {
      assert.equal(ours.bitsPerWeight, theirs.bitsPerWeight, `${f}: equal bits per weight`);
      assert.ok(ours.perplexity < theirs.perplexity && ours.kl < theirs.kl, `${f} default against ${theirs.name}`);
    }
  }
  assert.ok(row('Q4_0', 'llama.cpp Q4_0').perplexity > rows[0].perplexity, 'quantization costs something');
});

test("the GGUF header reader: our file and llama.cpp's, tensor by tensor, and one-line errors for broken files", async () => {
  const { readGgufHeader, inspectGguf } = await import('../../src/core/formats/gguf-read');
  const { MemoryByteSource } = await import('../../src/core/bytesource');
  const dir = await tempDir();
  const q4 = path.join(dir, 'q4.gguf');
  assert.equal(
    cli('quantize', path.join(SAMPLE_DIR, 'model.safetensors'), '--format', 'gguf', '--bits', '4', '--out', q4, '--quiet').code,
    0,
  );
  const bytes = new Uint8Array(readFileSync(q4));
  const h = await readGgufHeader(new MemoryByteSource(q4, bytes));
  assert.equal(h.version, 3);
  assert.equal(h.metadata.get('general.architecture'), 'llama');
  assert.equal(h.metadata.get('llama.block_count'), 5);
  const tokens = h.metadata.get('tokenizer.ggml.tokens') as { length: number; head: string[] };
  assert.equal(tokens.length, 512);
  assert.deepEqual(tokens.head.slice(0, 3), ['<unk>', '<s>', '</s>']);
  const q = h.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
  assert.deepEqual(q.ne, [64, 64]);
  assert.equal(q.type, GgmlType.Q4_0);
  assert.equal(q.bytes, (64 * 64 * 18) / 32);
  const s = inspectGguf(h, 'q4.gguf');
  assert.equal(s.blocks.length, 5);
  assert.deepEqual(Object.keys(s.byDtype).sort(), ['F16', 'F32', 'Q4_0', 'Q8_0']);
  assert.equal(s.tensors.find((t) => t.name === 'blk.0.ffn_down.weight')!.shape.join('x'), '64x172');
  // The CLI's inspect reads the same header.
  const r = cli('inspect', q4);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /q4\.gguf: 1 file\(s\), [\d.]+ KB, 260\.0K parameters, 47 tensors/);
  assert.match(r.stdout, /Q4_0 +[\d.]+K +params +[\d.]+ KB +4\.50 bits\/weight/);
  assert.match(r.stdout, /llama\.attention\.layer_norm_rms_epsilon=0\.00001,/);
  // A header cut short, a wrong magic: one line naming the file.
  await assert.rejects(
    readGgufHeader(new MemoryByteSource('cut.gguf', bytes.subarray(0, 5000))),
    /^WeightlensError: cut\.gguf: GGUF: the header runs past the end of the file/,
  );
  const bad = bytes.slice(0, 64);
  bad[0] = 0;
  await assert.rejects(readGgufHeader(new MemoryByteSource('bad.gguf', bad)), /bad\.gguf: GGUF: does not start with the GGUF magic/);
});

/** GPT-2's byte-level alphabet (bytes_to_unicode): every byte as a printable character. */
function byteLevelAlphabet(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => (keep(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++)));
}

test("a BPE tokenizer.json (Llama 3 pre-tokenizer) becomes llama.cpp's gpt2 vocabulary: llama.cpp tokenizes with our merges", async (t) => {
  const llama = await llamaOrSkip(t);
  if (!llama) return;
  const dir = await tempDir();
  const alphabet = byteLevelAlphabet();
  const merges = ['h e', 'l l', 'he ll', 'hell o', '\u0120 w', '\u0120w o'];
  const vocab: Record<string, number> = {};
  alphabet.forEach((c, i) => (vocab[c] = i));
  merges.forEach((m, i) => (vocab[m.replace(' ', '')] = 256 + i));
  const tokenizer = {
    model: { type: 'BPE', vocab, merges },
    added_tokens: [
      { id: 262, content: '<|begin_of_text|>', special: true },
      { id: 263, content: '<|end_of_text|>', special: true },
    ],
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: {
            Regex:
              "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
          },
          behavior: 'Isolated',
          invert: false,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    },
  };
  const { generateModel } = await import('../../src/node/generate-model');
  const model = await generateModel(dir, { layers: 1, hidden: 64, intermediate: 128, vocab: 264 });
  await fsp.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  await fsp.writeFile(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify({ bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' }),
  );
  const out = path.join(dir, 'bpe.gguf');
  const r = cli('quantize', model, '--format', 'gguf', '--bits', '32', '--out', out, '--quiet');
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(readFileSync(out.replace(/\.gguf$/, '.report.json'), 'utf8'));
  assert.match(report.settings.gguf.vocabulary, /264 tokens from the BPE tokenizer\.json \(pre-tokenizer llama-bpe\)/);
  const m = await llama.loadModel({ modelPath: out });
  try {
    assert.equal(m.tokens.bos, 262);
    assert.equal(m.tokens.eos, 263);
    const ids = [...m.tokenize('hello world')].map(Number);
    assert.deepEqual(ids, [vocab.hello, vocab['\u0120wo'], vocab.r, vocab.l, vocab.d], 'merges applied in rank order, the space as Ġ');
    assert.equal(m.detokenize(m.tokenize('hello world')), 'hello world');
  } finally {
    await m.dispose();
    await llama.dispose();
  }
});

test("a sharded input gives one GGUF, identical in its tensors to the single file's; an EWQ plan maps onto GGUF types", async (t) => {
  const llama = await llamaOrSkip(t);
  if (!llama) return;
  await llama.dispose();
  const { readGgufHeader } = await import('../../src/core/formats/gguf-read');
  const { MemoryByteSource } = await import('../../src/core/bytesource');
  const root = await tempDir();
  // The sample split in two shards with an index, config and tokenizer beside them.
  const dir = path.join(root, 'stories260K');
  await fsp.mkdir(dir);
  const bytes = readFileSync(path.join(SAMPLE_DIR, 'model.safetensors'));
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: 'F32'; shape: number[]; data_offsets: [number, number] }
  >;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const weightMap: Record<string, string> = {};
  for (const [i, part] of [names.slice(0, 20), names.slice(20)].entries()) {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    await fsp.writeFile(
      path.join(dir, file),
      buildSafetensors(
        part.map((name) => ({
          name,
          dtype: 'F32',
          shape: header[name].shape,
          raw: new Uint8Array(bytes.subarray(8 + n + header[name].data_offsets[0], 8 + n + header[name].data_offsets[1])),
        })),
      ),
    );
    for (const name of part) weightMap[name] = file;
  }
  await fsp.writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  for (const f of ['config.json', 'tok512.bin']) await fsp.copyFile(path.join(SAMPLE_DIR, f), path.join(dir, f));
  const sharded = path.join(root, 'sharded.gguf');
  const single = path.join(root, 'single.gguf');
  assert.equal(
    cli(
      'quantize',
      path.join(dir, 'model.safetensors.index.json'),
      '--format',
      'gguf',
      '--bits',
      '4',
      '--out',
      sharded,
      '--quiet',
      '--threads',
      '1',
    ).code,
    0,
  );
  assert.equal(
    cli(
      'quantize',
      path.join(SAMPLE_DIR, 'model.safetensors'),
      '--format',
      'gguf',
      '--bits',
      '4',
      '--out',
      single,
      '--quiet',
      '--threads',
      '1',
    ).code,
    0,
  );
  const read = async (f: string) => {
    const b = new Uint8Array(readFileSync(f));
    const h = await readGgufHeader(new MemoryByteSource(f, b));
    return new Map(
      h.tensors.map((x) => [x.name, Buffer.from(b.subarray(h.dataStart + x.offset, h.dataStart + x.offset + x.bytes)).toString('base64')]),
    );
  };
  assert.deepEqual(await read(sharded), await read(single), 'every tensor, byte for byte');
  // EWQ: raw blocks F16, int8 Q8_0, int4 Q4_0.
  const plan = path.join(root, 'plan.json');
  assert.equal(cli('plan', path.join(SAMPLE_DIR, 'model.safetensors'), '--backend', 'cpu', '--out', plan).code, 0);
  const blocks = JSON.parse(readFileSync(plan, 'utf8')).blocks as { index: number; precision: string }[];
  const mixed = path.join(root, 'mixed.gguf');
  const r = cli(
    'quantize',
    path.join(SAMPLE_DIR, 'model.safetensors'),
    '--format',
    'gguf',
    '--plan',
    plan,
    '--out',
    mixed,
    '--quiet',
    '--threads',
    '1',
  );
  assert.equal(r.code, 0, r.stderr);
  const h = await readGgufHeader(new MemoryByteSource(mixed, new Uint8Array(readFileSync(mixed))));
  const expected: Record<string, GgmlType> = { raw: GgmlType.F16, int8: GgmlType.Q8_0, int4: GgmlType.Q4_0 };
  for (const b of blocks)
    assert.equal(
      h.tensors.find((x) => x.name === `blk.${b.index}.attn_q.weight`)!.type,
      expected[b.precision],
      `block ${b.index} (${b.precision})`,
    );
});

test("dequantization of every GGUF type llama.cpp's quantizer writes equals ggml's own dequantize_row_*, bit for bit", async (t) => {
  if (!(await llamaOrSkip(t))) return;
  const { dequantize } = await import('../../src/core/formats/ggml-dequant');
  const { readGgufHeader } = await import('../../src/core/formats/gguf-read');
  const { MemoryByteSource } = await import('../../src/core/bytesource');
  const { llamaQuantize, ggmlDequantize } = await import('../../src/node/llama-quantize');
  const { generateModel } = await import('../../src/node/generate-model');
  const { LlamaFileType } = await import('../../src/core/formats/gguf');
  // Rows of 256: K-quant super-blocks fit (the sample's rows of 64 would fall back).
  const dir = await tempDir();
  const model = await generateModel(dir, { layers: 1, hidden: 256, intermediate: 512, vocab: 512 });
  await fsp.copyFile(path.join(SAMPLE_DIR, 'tok512.bin'), path.join(dir, 'tok512.bin'));
  const f32 = path.join(dir, 'f32.gguf');
  assert.equal(cli('quantize', model, '--format', 'gguf', '--bits', '32', '--out', f32, '--quiet').code, 0);
  const ftypes: [string, number][] = [
    ['F16', LlamaFileType.MOSTLY_F16],
    ['BF16', LlamaFileType.MOSTLY_BF16],
    ['Q8_0', LlamaFileType.MOSTLY_Q8_0],
    ['Q4_0', LlamaFileType.MOSTLY_Q4_0],
    ['Q4_1', LlamaFileType.MOSTLY_Q4_1],
    ['Q5_0', 8],
    ['Q5_1', 9],
    ['Q2_K', 10],
    ['Q3_K_M', 12],
    ['Q4_K_M', 15],
    ['Q5_K_M', 17],
    ['Q6_K', 18],
  ];
  const seen = new Set<string>();
  for (const [name, ftype] of ftypes) {
    const out = path.join(dir, `${name}.gguf`);
    llamaQuantize(f32, out, ftype);
    const bytes = new Uint8Array(readFileSync(out));
    const h = await readGgufHeader(new MemoryByteSource(out, bytes));
    for (const x of h.tensors) {
      const type = GgmlType[x.type];
      const count = x.ne.reduce((a, b) => a * b, 1);
      const data = bytes.subarray(h.dataStart + x.offset, h.dataStart + x.offset + x.bytes);
      const ours = dequantize(x.type, data, count);
      const ref = ggmlDequantize(x.type, data, count);
      assert.ok(Buffer.from(ours.buffer).equals(Buffer.from(ref.buffer)), `${name}: ${x.name} (${type}) equals ggml's dequantization`);
      seen.add(type);
    }
  }
  for (const type of ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'])
    assert.ok(seen.has(type), `a fixture of ${type}`);
  t.diagnostic(`types checked: ${[...seen].sort().join(', ')}`);
});

test('Qwen2 (q/k/v biases, NEOX RoPE, BPE with single digits): llama.cpp loads and runs the export; compare keeps its rows', async (t) => {
  const llama = await llamaOrSkip(t);
  if (!llama) return;
  const dir = await tempDir();
  const { generateModel } = await import('../../src/node/generate-model');
  const { compareCheckpoints } = await import('../../src/node/compare');
  const alphabet = byteLevelAlphabet();
  const vocab: Record<string, number> = {};
  alphabet.forEach((c, i) => (vocab[c] = i));
  const model = await generateModel(dir, { layers: 1, hidden: 64, intermediate: 128, vocab: 258 });
  // Add the q/k/v biases Qwen2 has, and Qwen2's config and tokenizer.
  const bytes = readFileSync(model);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const tensors = Object.keys(header)
    .filter((k) => k !== '__metadata__')
    .map((name) => ({
      name,
      dtype: header[name].dtype,
      shape: header[name].shape,
      raw: new Uint8Array(bytes.subarray(8 + n + header[name].data_offsets[0], 8 + n + header[name].data_offsets[1])),
    }));
  const kvDim = (config.hidden_size / config.num_attention_heads) * config.num_key_value_heads;
  for (const [p, rows] of [
    ['q', config.hidden_size],
    ['k', kvDim],
    ['v', kvDim],
  ] as const) {
    tensors.push({
      name: `model.layers.0.self_attn.${p}_proj.bias`,
      dtype: 'F32',
      shape: [rows],
      raw: new Uint8Array(Float32Array.from({ length: rows }, (_, i) => Math.sin(i) * 0.01).buffer),
    });
  }
  await fsp.writeFile(model, buildSafetensors(tensors));
  await fsp.writeFile(
    path.join(dir, 'config.json'),
    JSON.stringify({ ...config, model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], rope_theta: 1000000, rms_norm_eps: 1e-6 }),
  );
  await fsp.writeFile(
    path.join(dir, 'tokenizer.json'),
    JSON.stringify({
      model: { type: 'BPE', vocab, merges: [] },
      added_tokens: [
        { id: 256, content: '<|endoftext|>', special: true },
        { id: 257, content: '<|im_start|>', special: true },
      ],
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          {
            type: 'Split',
            pattern: {
              Regex:
                "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            },
          },
          { type: 'ByteLevel', use_regex: false },
        ],
      },
    }),
  );
  await fsp.writeFile(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify({ bos_token: null, eos_token: '<|endoftext|>', add_bos_token: false }),
  );
  const out = path.join(dir, 'qwen2.gguf');
  const r = cli('quantize', model, '--format', 'gguf', '--bits', '32', '--out', out, '--quiet');
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(readFileSync(out.replace(/\.gguf$/, '.report.json'), 'utf8'));
  assert.equal(report.settings.gguf.architecture, 'qwen2');
  assert.equal(report.settings.gguf.qkRowsPermuted, false);
  assert.match(report.settings.gguf.vocabulary, /pre-tokenizer qwen2/);
  assert.equal(report.settings.gguf.tensorTypes['blk.0.attn_q.bias'], 'F32');
  const m = await llama.loadModel({ modelPath: out });
  try {
    const ctx = await m.createContext({ contextSize: 64, threads: 1 });
    const seq = ctx.getSequence();
    const res = await seq.controlledEvaluate([[m.tokenize('hi')[0], { generateNext: { probabilities: true } }]]);
    const probs = res[0]!.next.probabilities!;
    assert.equal(probs.size, 258, 'a distribution over the whole vocabulary');
    await ctx.dispose();
  } finally {
    await m.dispose();
    await llama.dispose();
  }
  const c = await compareCheckpoints(model, out);
  assert.equal(c.qkReordered, null, 'Qwen2 rows are stored as HF stores them');
  for (const x of c.tensors) assert.equal(x.sqnrDb, null, x.name);
  assert.equal(c.summary.tensors, tensors.length);
});

test('Q4_K (--asymmetric where rows are multiples of 256): the bytes decode to what the report measured, llama.cpp runs the file, and the error is at most llama.cpp Q4_K quantizer’s', async (t) => {
  const { generateModel } = await import('../../src/node/generate-model');
  const { compareCheckpoints } = await import('../../src/node/compare');
  const dir = await tempDir();
  const model = await generateModel(path.join(dir, 'm'), {
    layers: 1,
    hidden: 256,
    intermediate: 512,
    vocab: 512,
    heads: 4,
    kvHeads: 4,
    dtype: 'F32',
  });
  await fsp.copyFile(path.join(SAMPLE_DIR, 'tok512.bin'), path.join(dir, 'm', 'tok512.bin'));
  const run = async (name: string, ...extra: string[]) => {
    const out = path.join(dir, `${name}.gguf`);
    const r = cli(
      'quantize',
      model,
      '--format',
      'gguf',
      '--bits',
      '4',
      '--asymmetric',
      ...extra,
      '--out',
      out,
      '--report',
      `${out}.json`,
      '--quiet',
    );
    assert.equal(r.code, 0, r.stderr);
    return { out, report: JSON.parse(readFileSync(`${out}.json`, 'utf8')) as { tensors: { name: string; mse: number }[] } };
  };
  const ours = await run('ours');
  const c = await compareCheckpoints(model, ours.out);
  for (const r of ours.report.tensors) {
    const x = c.tensors.find((y) => y.name === r.name)!;
    // q/k rows are permuted for llama.cpp; compare puts them back.
    assert.equal(x.typeB, r.name === 'lm_head.weight' ? 'Q8_0' : 'Q4_K', r.name);
    assert.ok(Math.abs(x.mse - r.mse) <= 1e-9 * r.mse, `${r.name}: decoded MSE ${x.mse} vs reported ${r.mse}`);
  }
  if (!(await llamaOrSkip(t))) return;
  const { llamaQuantize } = await import('../../src/node/llama-quantize');
  const { LlamaFileType } = await import('../../src/core/formats/gguf');
  const f32 = path.join(dir, 'f32.gguf');
  assert.equal(cli('quantize', model, '--format', 'gguf', '--bits', '32', '--out', f32, '--quiet').code, 0);
  const theirs = path.join(dir, 'llamacpp-q4_k_m.gguf');
  llamaQuantize(f32, theirs, LlamaFileType.MOSTLY_Q4_K_M);
  const l = await compareCheckpoints(model, theirs);
  // Summed MSE over the tensors both files store as Q4_K (llama.cpp's Q4_K_M puts some in Q6_K).
  const ratio = (cc: typeof c) => {
    let a = 0;
    let b = 0;
    for (const x of cc.tensors) {
      const y = l.tensors.find((z) => z.name === x.name)!;
      if (x.typeB === 'Q4_K' && y.typeB === 'Q4_K') {
        a += x.mse;
        b += y.mse;
      }
    }
    return a / b;
  };
  const refined = await run('refined', '--refine', '3');
  const r0 = ratio(c);
  const r3 = ratio(await compareCheckpoints(model, refined.out));
  t.diagnostic(`Q4_K squared error against llama.cpp's Q4_K quantizer: default ${r0.toFixed(4)}, --refine 3 ${r3.toFixed(4)}`);
  assert.ok(r0 < 1.01 && r3 < 1, `default ${r0}, refined ${r3}`);
  const { evaluateModels } = await import('../../src/node/evaluate');
  const e = await evaluateModels({ models: [ours.out], version: 'test', maxTokens: 200 });
  assert.ok(Number.isFinite(e.results[0].perplexity) && e.results[0].perplexity > 1, 'llama.cpp runs the Q4_K file');
});
