import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryByteSource } from '../../src/core/bytesource';
import { WeightlensError } from '../../src/core/errors';
import { loadSharded } from '../../src/core/model';
import { readHeader } from '../../src/core/safetensors/header';
import { buildSafetensors, rawSafetensors } from '../helpers/safetensors';

const F = 'bad.safetensors';

async function headerError(bytes: Uint8Array): Promise<string> {
  try {
    await readHeader(new MemoryByteSource(F, bytes));
  } catch (e) {
    assert.ok(e instanceof WeightlensError, `expected a WeightlensError, got ${e}`);
    assert.ok(!e.message.includes('\n'), 'one line');
    assert.ok(e.message.startsWith(F), `names the file: ${e.message}`);
    return e.message;
  }
  assert.fail('expected an error');
}

test('a valid file parses: metadata, dtypes, shapes, offsets in data order', async () => {
  const bytes = buildSafetensors(
    [
      { name: 'b', dtype: 'F32', shape: [2, 3], values: [1, 2, 3, 4, 5, 6] },
      { name: 'a', dtype: 'BF16', shape: [4], values: [1, 2, 3, 4] },
      { name: 'empty', dtype: 'F16', shape: [0, 5] },
      { name: 'flag', dtype: 'BOOL', shape: [3], values: [1, 0, 1] },
    ],
    { format: 'pt', note: 'x' },
  );
  const h = await readHeader(new MemoryByteSource(F, bytes));
  assert.deepEqual({ ...h.metadata }, { format: 'pt', note: 'x' });
  assert.deepEqual(
    h.tensors.map((t) => [t.name, t.dtype, t.shape, t.begin, t.end]),
    [
      ['b', 'F32', [2, 3], 0, 24],
      ['a', 'BF16', [4], 24, 32],
      ['empty', 'F16', [0, 5], 32, 32],
      ['flag', 'BOOL', [3], 32, 35],
    ],
  );
  assert.equal((h.dataStart - 8) % 8, 0, 'header padded to a multiple of 8');
  const text = new TextDecoder().decode(bytes.subarray(8, h.dataStart));
  assert.match(text, / *$/);
  assert.equal(text.trimEnd().length + (text.length - text.trimEnd().length), text.length);
});

test('a file shorter than 8 bytes', async () => {
  assert.match(await headerError(new Uint8Array(5)), /too small/);
});

test('header length beyond the file', async () => {
  const b = rawSafetensors('{}');
  new DataView(b.buffer).setBigUint64(0, 1000n, true);
  assert.match(await headerError(b), /header length 1000 is beyond the end of the file/);
});

test('header length over 100 MB is refused before any allocation', async () => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, 2n ** 63n, true);
  assert.match(await headerError(b), /exceeds the 100 MB limit/);
});

test('invalid UTF-8 in the header', async () => {
  const b = rawSafetensors('{"a":1}');
  b[10] = 0xff;
  assert.match(await headerError(b), /not valid UTF-8/);
});

test('invalid JSON, and JSON that is not an object', async () => {
  assert.match(await headerError(rawSafetensors('{"a": ')), /not valid JSON/);
  assert.match(await headerError(rawSafetensors('[1,2]')), /not a JSON object/);
});

test('duplicate tensor name', async () => {
  const h = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
  const msg = await headerError(rawSafetensors(h, new Uint8Array(8)));
  assert.match(msg, /tensor "w": duplicate tensor name/);
});

test('a key inside a nested object is not a duplicate tensor name', async () => {
  const h = '{"__metadata__":{"w":"1"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
  const parsed = await readHeader(new MemoryByteSource(F, rawSafetensors(h, new Uint8Array(4))));
  assert.equal(parsed.tensors.length, 1);
});

test('unknown dtype', async () => {
  const msg = await headerError(rawSafetensors('{"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(4)));
  assert.match(msg, /tensor "w": unknown dtype "F12"/);
});

test('negative and non-integer dims', async () => {
  assert.match(
    await headerError(rawSafetensors('{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', new Uint8Array(4))),
    /tensor "w": shape \[-1\] has a dimension that is not a non-negative integer/,
  );
  assert.match(
    await headerError(rawSafetensors('{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', new Uint8Array(4))),
    /not a non-negative integer/,
  );
  assert.match(
    await headerError(rawSafetensors('{"w":{"dtype":"F32","shape":"2","data_offsets":[0,4]}}', new Uint8Array(4))),
    /shape is not an array/,
  );
});

test('data_offsets out of bounds', async () => {
  const msg = await headerError(rawSafetensors('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', new Uint8Array(8)));
  assert.match(msg, /tensor "w": data_offsets \[0, 16\] are out of bounds/);
});

test('overlapping data_offsets', async () => {
  const h = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
  assert.match(await headerError(rawSafetensors(h, new Uint8Array(12))), /tensor "b": data_offsets \[4, 12\] overlap tensor "a"/);
});

test('data_offsets leaving a hole, and trailing bytes no tensor covers', async () => {
  const hole = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}';
  assert.match(await headerError(rawSafetensors(hole, new Uint8Array(12))), /tensor "b": .*leave a hole of 4 bytes/);
  const trailing = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
  assert.match(await headerError(rawSafetensors(trailing, new Uint8Array(12))), /8 bytes after the last tensor/);
});

test('byte length not equal to shape x item size', async () => {
  const msg = await headerError(rawSafetensors('{"w":{"dtype":"F16","shape":[3],"data_offsets":[0,4]}}', new Uint8Array(4)));
  assert.match(msg, /tensor "w": byte length 4 does not equal shape \[3\] x 2 bytes \(6\)/);
});

test('__metadata__ must map strings to strings', async () => {
  assert.match(await headerError(rawSafetensors('{"__metadata__":{"a":1}}')), /__metadata__ value of "a" is not a string/);
});

const shardA = buildSafetensors([{ name: 'x', dtype: 'F32', shape: [2], values: [1, 2] }]);
const open = (files: Record<string, Uint8Array>) => async (name: string) =>
  files[name] ? new MemoryByteSource(name, files[name]) : undefined;

test('index: a missing shard, a missing tensor, a shard outside the folder', async () => {
  await assert.rejects(
    loadSharded(
      'm.index.json',
      JSON.stringify({ weight_map: { x: 'a.safetensors', y: 'b.safetensors' } }),
      open({ 'a.safetensors': shardA }),
    ),
    /m\.index\.json: index names shard "b\.safetensors", which does not exist/,
  );
  await assert.rejects(
    loadSharded(
      'm.index.json',
      JSON.stringify({ weight_map: { x: 'a.safetensors', y: 'a.safetensors' } }),
      open({ 'a.safetensors': shardA }),
    ),
    /m\.index\.json: tensor "y": index names tensor in shard "a\.safetensors", which does not hold it/,
  );
  for (const evil of ['../a.safetensors', '/etc/passwd', 'sub/../../a.safetensors', 'C:\\x.safetensors']) {
    await assert.rejects(
      loadSharded('m.index.json', JSON.stringify({ weight_map: { x: evil } }), open({ 'a.safetensors': shardA })),
      /leaves the model's folder/,
    );
  }
  await assert.rejects(loadSharded('m.index.json', '{"weight_map": 3}', open({})), /no "weight_map" object/);
});

test('index: a valid sharded model lists every tensor with its file', async () => {
  const shardB = buildSafetensors([{ name: 'y', dtype: 'BF16', shape: [3], values: [1, 2, 3] }]);
  const m = await loadSharded(
    'm.index.json',
    JSON.stringify({ weight_map: { x: 'a.safetensors', y: 'b.safetensors' } }),
    open({ 'a.safetensors': shardA, 'b.safetensors': shardB }),
  );
  assert.deepEqual(
    m.tensors.map((t) => [t.name, t.file]),
    [
      ['x', 'a.safetensors'],
      ['y', 'b.safetensors'],
    ],
  );
});

test('every dtype round-trips through the writer and the parser; rows are read by random access', async () => {
  const { loadSingleFile, readRows, readTensor } = await import('../../src/core/model');
  const raw = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff);
  const tensors = [
    { name: 'f64', dtype: 'F64' as const, shape: [3, 2], raw: raw(48) },
    { name: 'f32', dtype: 'F32' as const, shape: [2, 3], raw: raw(24) },
    { name: 'f16', dtype: 'F16' as const, shape: [5], raw: raw(10) },
    { name: 'bf16', dtype: 'BF16' as const, shape: [4, 1], raw: raw(8) },
    { name: 'e4m3', dtype: 'F8_E4M3' as const, shape: [3], raw: raw(3) },
    { name: 'e5m2', dtype: 'F8_E5M2' as const, shape: [3], raw: raw(3) },
    { name: 'i8', dtype: 'I8' as const, shape: [2], raw: raw(2) },
    { name: 'u8', dtype: 'U8' as const, shape: [2], raw: raw(2) },
    { name: 'i16', dtype: 'I16' as const, shape: [2], raw: raw(4) },
    { name: 'u16', dtype: 'U16' as const, shape: [2], raw: raw(4) },
    { name: 'i32', dtype: 'I32' as const, shape: [2], raw: raw(8) },
    { name: 'u32', dtype: 'U32' as const, shape: [2], raw: raw(8) },
    { name: 'i64', dtype: 'I64' as const, shape: [2], raw: raw(16) },
    { name: 'u64', dtype: 'U64' as const, shape: [2], raw: raw(16) },
    { name: 'bool', dtype: 'BOOL' as const, shape: [3], raw: Uint8Array.from([1, 0, 1]) },
    { name: 'scalar', dtype: 'F32' as const, shape: [], raw: raw(4) },
  ];
  const bytes = buildSafetensors(tensors);
  const src = new MemoryByteSource(F, bytes);
  const m = await loadSingleFile(F, F, src);
  for (const t of tensors) {
    const got = m.tensors.find((x) => x.name === t.name)!;
    assert.equal(got.dtype, t.dtype);
    assert.deepEqual(got.shape, t.shape);
    assert.deepEqual(Array.from(await readTensor(src, got)), Array.from(t.raw));
  }
  const f64 = m.tensors.find((x) => x.name === 'f64')!;
  assert.deepEqual(Array.from(await readRows(src, f64, 1, 2)), Array.from(tensors[0].raw.subarray(16, 48)));
  assert.throws(() => readRows(src, f64, 2, 2), /outside tensor f64/);
});

test('a 100 GB sharded model opens from its headers in well under a second', async () => {
  const { promises: fsp } = await import('node:fs');
  const pathMod = await import('node:path');
  const { tempDir } = await import('../helpers/safetensors');
  const { openModel } = await import('../../src/node/open-model');
  const { inspectModel } = await import('../../src/core/inspect');
  const { layoutFile } = await import('../../src/core/safetensors/layout');
  const dir = await tempDir();
  // 20 sparse shards of 5 GB each: headers are real, the data is holes on disk.
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < 20; s++) {
    const name = `model-${String(s + 1).padStart(5, '0')}-of-00020.safetensors`;
    const tensors = Array.from({ length: 40 }, (_, i) => ({
      name: `model.layers.${s * 2 + (i >> 5)}.t${i}.weight`,
      dtype: 'BF16' as const,
      shape: [8192, 7629],
    }));
    const layout = layoutFile(tensors, { format: 'pt' });
    const fh = await fsp.open(pathMod.join(dir, name), 'w');
    await fh.write(layout.headerBytes, 0, layout.headerBytes.length, 0);
    await fh.truncate(layout.totalBytes);
    await fh.close();
    for (const t of tensors) weightMap[t.name] = name;
  }
  const index = pathMod.join(dir, 'model.safetensors.index.json');
  await fsp.writeFile(index, JSON.stringify({ metadata: {}, weight_map: weightMap }));
  const t0 = performance.now();
  const opened = await openModel(index);
  const summary = inspectModel(opened.model);
  const ms = performance.now() - t0;
  await opened.close();
  assert.ok(summary.totalBytes > 99e9, `about 100 GB (${summary.totalBytes})`);
  assert.equal(summary.tensors.length, 800);
  assert.equal(summary.blocks.length, 40);
  // Generous for a loaded CI machine; typically a few ms.
  assert.ok(ms < 500, `opened in ${ms.toFixed(1)} ms`);
});

test('names that are special in JavaScript ("__proto__", "constructor") are tensors and metadata keys like any other', async () => {
  const bytes = buildSafetensors(
    [
      { name: '__proto__', dtype: 'F32', shape: [1], values: [1] },
      { name: 'constructor', dtype: 'F32', shape: [1], values: [2] },
      { name: 'toString', dtype: 'F32', shape: [1], values: [3] },
    ],
    Object.fromEntries([
      ['__proto__', 'p'],
      ['hasOwnProperty', 'h'],
    ]),
  );
  const h = await readHeader(new MemoryByteSource(F, bytes));
  assert.deepEqual(
    h.tensors.map((t) => t.name),
    ['__proto__', 'constructor', 'toString'],
  );
  assert.deepEqual(Object.entries(h.metadata), [
    ['__proto__', 'p'],
    ['hasOwnProperty', 'h'],
  ]);
});
