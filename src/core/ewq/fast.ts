/**
 * FastEWQ (the paper's §4): a block's precision from header metadata alone — num_parameters,
 * exec_index, num_blocks — with a random forest (ml-random-forest) trained on EWQ analyses. The
 * trained forest is a JSON data file; the training rows use the paper's CSV columns.
 */
import { RandomForestClassifier } from 'ml-random-forest';
import type { Precision } from './decide';

export const CSV_HEADER = 'model_name,num_blocks,exec_index,num_parameters,quantization_type,quantized';

export interface TrainingRow {
  model: string;
  numBlocks: number;
  execIndex: number;
  params: number;
  /** 'raw', '8-bit', '4-bit', '3-bit' (the paper's spelling) */
  type: string;
}

const TYPES = ['raw', '8-bit', '4-bit', '3-bit'] as const;
const TYPE_OF: Record<string, Precision> = { raw: 'raw', '8-bit': 'int8', '4-bit': 'int4', '3-bit': 'int3' };

export function precisionType(p: Precision): string {
  return p === 'raw'
    ? 'raw'
    : p === 'int8'
      ? '8-bit'
      : p === 'int4'
        ? '4-bit'
        : p === 'int3'
          ? '3-bit'
          : p === 'int2'
            ? '2-bit'
            : 'ternary';
}

export function csvRow(r: TrainingRow): string {
  const name = /[",\n]/.test(r.model) ? `"${r.model.replace(/"/g, '""')}"` : r.model;
  return [name, r.numBlocks, r.execIndex, r.params, r.type, r.type === 'raw' ? 0 : 1].join(',');
}

export function parseCsv(text: string, file: string): TrainingRow[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (!lines.length || lines[0].replace(/\s/g, '') !== CSV_HEADER) throw new Error(`${file}: the first line must be "${CSV_HEADER}"`);
  return lines.slice(1).map((line, i) => {
    const m = /^(?:"((?:[^"]|"")*)"|([^,]*)),(.*)$/.exec(line);
    const rest = m ? m[3].split(',') : [];
    if (!m || rest.length !== 5) throw new Error(`${file}: line ${i + 2} does not have the 6 columns of the header`);
    const [numBlocks, execIndex, params] = rest.slice(0, 3).map(Number);
    const type = rest[3].trim();
    if (![numBlocks, execIndex, params].every((v) => Number.isSafeInteger(v) && v >= 0) || !(TYPES as readonly string[]).includes(type)) {
      throw new Error(`${file}: line ${i + 2} has a bad value (counts must be integers, quantization_type one of ${TYPES.join(', ')})`);
    }
    return { model: m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2], numBlocks, execIndex, params, type };
  });
}

export interface FastEwqModel {
  format: 'weightlens-fastewq-1';
  /** Models the rows came from, and how many rows. */
  trainedOn: { model: string; rows: number }[];
  classes: string[];
  /** Measured on held-out rows, never asserted. */
  evaluation: { heldOutRows: number; accuracy: number | null; method: string };
  forest: unknown;
}

function features(r: { numBlocks: number; execIndex: number; params: number }): number[] {
  // The paper's three features; exec_index also relative to depth, which is what generalizes.
  return [r.params, r.execIndex, r.numBlocks, r.execIndex / Math.max(1, r.numBlocks + 1)];
}

export function trainForest(rows: readonly TrainingRow[], seed = 42): RandomForestClassifier {
  const classes = rows.map((r) => TYPES.indexOf(r.type as (typeof TYPES)[number]));
  const rf = new RandomForestClassifier({
    nEstimators: 50,
    maxFeatures: 1.0,
    replacement: true,
    seed,
    useSampleBagging: true,
    noOOB: true,
  });
  rf.train(
    rows.map((r) => features(r)),
    classes,
  );
  return rf;
}

export function buildModelFile(rows: readonly TrainingRow[], heldOut: readonly TrainingRow[], method: string, seed = 42): FastEwqModel {
  if (rows.length < 2) throw new Error('FastEWQ needs at least 2 training rows');
  const rf = trainForest(rows, seed);
  const accuracy = heldOut.length ? evaluate(rf, heldOut) : null;
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.model, (counts.get(r.model) ?? 0) + 1);
  return {
    format: 'weightlens-fastewq-1',
    trainedOn: [...counts].map(([model, n]) => ({ model, rows: n })),
    classes: [...TYPES],
    evaluation: { heldOutRows: heldOut.length, accuracy, method },
    forest: rf.toJSON(),
  };
}

export function loadForest(m: FastEwqModel): RandomForestClassifier {
  if (m.format !== 'weightlens-fastewq-1') throw new Error('not a Weightlens FastEWQ model file');
  return RandomForestClassifier.load(m.forest as never);
}

/** Predicted precision per block. */
export function predict(
  rf: RandomForestClassifier,
  blocks: readonly { numBlocks: number; execIndex: number; params: number }[],
): Precision[] {
  if (!blocks.length) return [];
  const out = rf.predict(blocks.map((b) => features(b))) as number[];
  return out.map((c) => TYPE_OF[TYPES[c] ?? 'raw']);
}

/** Fraction of rows whose quantize/keep decision (the paper's `quantized`) the forest gets right. */
export function evaluate(rf: RandomForestClassifier, rows: readonly TrainingRow[]): number {
  const pred = predict(rf, rows);
  let ok = 0;
  rows.forEach((r, i) => (ok += (pred[i] === 'raw') === (r.type === 'raw') ? 1 : 0));
  return ok / rows.length;
}
