/**
 * Fault injection: a file-system error at every write step of a run — each mkdir, each open for
 * writing, the header write, each data write, the config/index/report writes, each rename of the
 * commit — for a single file replacing a previous output, a compressed-tensors folder replacing a
 * previous one, and a sharded model written into folders that do not exist yet. Whatever fails, the
 * folder afterwards holds exactly what it held before (the previous output intact), and the error
 * is one line naming the output.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { resolveSettings } from '../../src/core/quant/settings';
import type { OutputFormat } from '../../src/core/plan';
import { generateModel } from '../../src/node/generate-model';
import { quantize } from '../../src/node/quantize';
import { tempDir } from '../helpers/safetensors';

type Op = 'mkdir' | 'open' | 'header' | 'data' | 'writeFile' | 'copyFile' | 'rename';

/** Counts the write steps under `root`, and makes the `failAt`-th of kind `op` fail with `code`. */
class Injector {
  counts = new Map<Op, number>();
  fail: { op: Op; n: number; code: string } | undefined;
  private readonly restore: (() => void)[] = [];
  private readonly firstWrite = new WeakSet<object>();

  constructor(private readonly root: string) {}

  private hit(op: Op, p: unknown): void {
    if (typeof p !== 'string' || !p.startsWith(this.root)) return;
    const n = (this.counts.get(op) ?? 0) + 1;
    this.counts.set(op, n);
    if (this.fail && this.fail.op === op && this.fail.n === n) {
      const e = new Error(`${this.fail.code}: injected fault, ${op} '${p}'`) as NodeJS.ErrnoException;
      e.code = this.fail.code;
      e.syscall = op === 'header' || op === 'data' ? 'write' : op;
      throw e;
    }
  }

  async install(): Promise<void> {
    const patch = <K extends keyof typeof fsp>(name: K, op: Op, when: (args: unknown[]) => boolean = () => true) => {
      const orig = fsp[name] as unknown as (...a: unknown[]) => Promise<unknown>;
      (fsp as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
        if (when(args)) this.hit(op, op === 'rename' || op === 'copyFile' ? args[1] : args[0]);
        return orig.apply(fsp, args);
      };
      this.restore.push(() => ((fsp as unknown as Record<string, unknown>)[name] = orig));
    };
    patch('mkdir', 'mkdir');
    patch('open', 'open', (a) => a[1] === 'w');
    patch('writeFile', 'writeFile');
    patch('copyFile', 'copyFile');
    patch('rename', 'rename');
    // FileHandle.write: the first write of a handle is the safetensors header, the rest data.
    const probe = await fsp.open(__filename, 'r');
    const proto = Object.getPrototypeOf(probe) as { write: (...a: unknown[]) => Promise<unknown> };
    await probe.close();
    const origWrite = proto.write;
    const self = this; // eslint-disable-line @typescript-eslint/no-this-alias -- the patched write's `this` is the file handle
    const paths = new WeakMap<object, string>();
    const origOpen = fsp.open;
    (fsp as unknown as Record<string, unknown>).open = async (...args: unknown[]) => {
      const fh = (await (origOpen as (...a: unknown[]) => Promise<object>).apply(fsp, args)) as object;
      if (typeof args[0] === 'string') paths.set(fh, args[0]);
      return fh;
    };
    this.restore.push(() => ((fsp as unknown as Record<string, unknown>).open = origOpen));
    proto.write = async function (this: object, ...args: unknown[]) {
      const first = !self.firstWrite.has(this);
      self.firstWrite.add(this);
      self.hit(first ? 'header' : 'data', paths.get(this));
      return origWrite.apply(this, args);
    };
    this.restore.push(() => (proto.write = origWrite));
  }

  uninstall(): void {
    for (const r of this.restore.reverse()) r();
    this.restore.length = 0;
  }
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        out[path.relative(dir, p) + '/'] = 'dir';
        await walk(p);
      } else
        out[path.relative(dir, p)] = createHash('sha256')
          .update(await fsp.readFile(p))
          .digest('hex');
    }
  };
  await walk(dir);
  return out;
}

interface Scenario {
  name: string;
  format: OutputFormat;
  shards: number;
  /** Relative to the test folder; a previous output is written there first when `previous`. */
  out: string;
  previous: boolean;
}

const SCENARIOS: Scenario[] = [
  { name: 'fake-quant file replacing a previous output', format: 'fake', shards: 1, out: 'q.safetensors', previous: true },
  { name: 'compressed-tensors folder replacing a previous output', format: 'compressed-tensors', shards: 1, out: 'q-ct', previous: true },
  { name: 'sharded model into folders that do not exist yet', format: 'fake', shards: 2, out: 'new/deeper/q', previous: false },
];

for (const sc of SCENARIOS) {
  test(`fault injection, ${sc.name}: a failure at any write step changes nothing`, async (t) => {
    const root = await tempDir('wl-faults-');
    const build = async () => {
      await generateModel(path.join(root, 'model'), { layers: 2, hidden: 64, intermediate: 128, vocab: 64, shards: sc.shards });
      if (sc.previous) await run(8);
    };
    const input = path.join(root, 'model', sc.shards > 1 ? 'model.safetensors.index.json' : 'model.safetensors');
    const out = path.join(root, sc.out);
    const run = (bits: number) =>
      quantize({
        input,
        settings: resolveSettings({ method: 'rtn', bits }),
        format: sc.format,
        out,
        report: path.join(root, 'q.report.json'),
        force: true,
        version: 'test',
      });
    await build();
    const inj = new Injector(root);
    await inj.install();
    try {
      // A clean run counts the steps; then the folder is built again from scratch.
      await run(4);
      const steps = [...inj.counts.entries()];
      assert.ok(steps.length >= 4, `steps seen: ${JSON.stringify(steps)}`);
      inj.uninstall();
      await fsp.rm(root, { recursive: true, force: true });
      await fsp.mkdir(root);
      await build();
      const before = await snapshot(root);
      await inj.install();
      let injected = 0;
      for (const [op, count] of steps) {
        for (let n = 1; n <= count; n++) {
          inj.counts.clear();
          inj.fail = { op, n, code: op === 'rename' ? 'EXDEV' : n % 2 ? 'ENOSPC' : 'EIO' };
          await assert.rejects(run(4), (e: Error) => {
            assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
            assert.match(e.message, /writing the output failed: .* \((ENOSPC|EIO|EXDEV)\); nothing was left behind/, `${op} #${n}`);
            return true;
          });
          inj.fail = undefined;
          assert.deepEqual(await snapshot(root), before, `${op} #${n} failed: everything as before`);
          injected++;
        }
      }
      t.diagnostic(`${injected} injected faults (${steps.map(([op, c]) => `${op} ${c}`).join(', ')}); each left the folder as it was`);
    } finally {
      inj.uninstall();
    }
  });
}
