/**
 * Parser fuzzing: valid files mutated (header bytes, the length prefix, offsets, dtypes, shapes,
 * truncation, appended bytes) must always give either a valid parse or a clean one-line
 * WeightlensError — never another exception, a hang, or an allocation sized by an untrusted number.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MemoryByteSource, type ByteSource } from '../../src/core/bytesource';
import { dtypeBits, type DType } from '../../src/core/dtypes';
import { WeightlensError } from '../../src/core/errors';
import { loadSharded } from '../../src/core/model';
import { MAX_HEADER_BYTES, readHeader, type SafetensorsHeader } from '../../src/core/safetensors/header';
import { parseShardIndex } from '../../src/core/safetensors/index-json';
import { buildSafetensors } from '../helpers/safetensors';

const DTYPES: DType[] = ['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2', 'I8', 'U8', 'I16', 'I32', 'I64', 'BOOL'];

const validFile = fc
  .array(
    fc.record({
      name: fc.string({ minLength: 1, maxLength: 12 }),
      dtype: fc.constantFrom(...DTYPES),
      shape: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 3 }),
    }),
    { minLength: 0, maxLength: 6 },
  )
  .map((ts) => {
    const seen = new Set<string>();
    const tensors = ts.filter((t) => t.name !== '__metadata__' && !seen.has(t.name) && seen.add(t.name));
    return buildSafetensors(
      tensors.map((t) => {
        const n = t.shape.reduce((a, b) => a * b, 1);
        return { ...t, raw: new Uint8Array((n * dtypeBits(t.dtype)) / 8).fill(7) };
      }),
      { format: 'pt' },
    );
  });

/** Counts every read and its size, so a test sees what an untrusted header made us allocate. */
class WatchedSource implements ByteSource {
  maxRead = 0;
  constructor(private readonly inner: MemoryByteSource) {}
  get name() {
    return this.inner.name;
  }
  size() {
    return this.inner.size();
  }
  read(offset: number, length: number) {
    this.maxRead = Math.max(this.maxRead, length);
    return this.inner.read(offset, length);
  }
}

async function outcome(bytes: Uint8Array): Promise<SafetensorsHeader | WeightlensError> {
  const src = new WatchedSource(new MemoryByteSource('fuzz.safetensors', bytes));
  try {
    const h = await readHeader(src);
    // A header we accept is internally consistent.
    let expected = 0;
    for (const t of h.tensors) {
      assert.equal(t.begin, expected);
      expected = t.end;
    }
    assert.equal(h.dataStart + expected, h.fileSize);
    assert.ok(src.maxRead <= Math.max(8, bytes.length));
    return h;
  } catch (e) {
    assert.ok(e instanceof WeightlensError, `not a clean error: ${(e as Error)?.stack ?? e}`);
    assert.ok(!e.message.includes('\n'));
    assert.ok(e.message.startsWith('fuzz.safetensors'));
    assert.ok(src.maxRead <= Math.max(8, Math.min(bytes.length, MAX_HEADER_BYTES)), 'reads bounded by the file, never by a claimed size');
    return e;
  }
}

test('fuzz: valid files parse', async () => {
  await fc.assert(
    fc.asyncProperty(validFile, async (bytes) => assert.ok(!((await outcome(bytes)) instanceof Error))),
    { numRuns: 200 },
  );
});

test('fuzz: random byte flips anywhere in the header', async () => {
  await fc.assert(
    fc.asyncProperty(
      validFile,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      async (bytes, flips) => {
        const b = bytes.slice();
        const headerEnd = 8 + Number(new DataView(b.buffer).getBigUint64(0, true));
        for (const [pos, v] of flips) b[pos % Math.max(1, Math.min(b.length, headerEnd))] = v;
        await outcome(b);
      },
    ),
    { numRuns: 400 },
  );
});

test('fuzz: the length prefix set to anything, up to 2^64 - 1', async () => {
  await fc.assert(
    fc.asyncProperty(validFile, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), async (bytes, n) => {
      const b = bytes.slice();
      new DataView(b.buffer).setBigUint64(0, n, true);
      await outcome(b);
    }),
    { numRuns: 300 },
  );
});

test('fuzz: truncation and appended bytes', async () => {
  await fc.assert(
    fc.asyncProperty(validFile, fc.nat(), fc.uint8Array({ maxLength: 40 }), async (bytes, cut, extra) => {
      await outcome(bytes.slice(0, cut % (bytes.length + 1)));
      const longer = new Uint8Array(bytes.length + extra.length);
      longer.set(bytes);
      longer.set(extra, bytes.length);
      const r = await outcome(longer);
      if (extra.length > 0) assert.ok(r instanceof WeightlensError, 'trailing bytes no tensor covers are an error');
    }),
    { numRuns: 300 },
  );
});

const jsonValue = fc.oneof(
  fc.integer({ min: -(2 ** 60), max: 2 ** 60 }),
  fc.double(),
  fc.string(),
  fc.constant(null),
  fc.boolean(),
  fc.array(fc.integer({ min: -3, max: 1e6 }), { maxLength: 4 }),
  fc.constant(2 ** 53),
  fc.constant(1e308),
);

test('fuzz: entries with arbitrary dtypes, shapes and offsets', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.dictionary(
        fc.string({ maxLength: 6 }),
        fc.record(
          {
            dtype: fc.oneof(fc.constantFrom(...DTYPES), fc.string({ maxLength: 5 }), jsonValue),
            shape: jsonValue,
            data_offsets: fc.oneof(jsonValue, fc.tuple(fc.integer({ min: -5, max: 200 }), fc.integer({ min: -5, max: 200 }))),
          },
          { requiredKeys: [] },
        ),
        { maxKeys: 5 },
      ),
      fc.nat({ max: 256 }),
      async (header, dataLength) => {
        const text = new TextEncoder().encode(JSON.stringify(header));
        const b = new Uint8Array(8 + text.length + dataLength);
        new DataView(b.buffer).setBigUint64(0, BigInt(text.length), true);
        b.set(text, 8);
        await outcome(b);
      },
    ),
    { numRuns: 500 },
  );
});

test('fuzz: index JSON with arbitrary shard names never escapes the folder', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.dictionary(
        fc.string({ maxLength: 5 }),
        fc.oneof(
          fc.string({ maxLength: 12 }),
          fc.constantFrom('../x', '/etc/passwd', 'a/../../b', 'C:\\\\w', './x', 'ok.safetensors'),
          jsonValue,
        ),
        { maxKeys: 5 },
      ),
      async (map) => {
        const text = JSON.stringify({ weight_map: map });
        const opened: string[] = [];
        try {
          parseShardIndex('m.index.json', text);
          await loadSharded('m.index.json', text, async (shard) => {
            opened.push(shard);
            return undefined;
          });
        } catch (e) {
          assert.ok(e instanceof WeightlensError, String(e));
        }
        for (const shard of opened) assert.ok(!shard.split('/').includes('..') && !shard.startsWith('/') && !shard.includes('\\\\'), shard);
      },
    ),
    { numRuns: 300 },
  );
});
