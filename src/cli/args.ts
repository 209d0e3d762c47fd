/** Flags -> values, numbers and choices, with one-line errors that name the flag. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { WeightlensError } from '../core/errors';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * util.parseArgs, strict, plus what it lets through: a flag given twice is refused (it would
 * silently take the last value), and a negative number is taken as a flag's value (`--bits -1`
 * reaches the range check instead of reading as an unknown flag `-1`).
 */
export function parseFlags<O extends Options>(args: readonly string[], options: O, allowNegative = false) {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && i + 1 < args.length && /^-(\d|\.\d)/.test(args[i + 1])) {
      joined.push(`${a}=${args[++i]}`);
      continue;
    }
    if (a === '--') {
      joined.push(...args.slice(i));
      break;
    }
    joined.push(a);
  }
  const parsed = parseArgs({ args: joined, options, allowPositionals: true, strict: true, tokens: true, allowNegative });
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name)) throw new WeightlensError(`--${t.name} is given more than once; give it once`);
    seen.add(t.name);
  }
  return { values: parsed.values, positionals: parsed.positionals };
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A plain decimal number (no hex, no Infinity, no blanks); integers also without an exponent. */
export function parseNumber(
  flag: string,
  v: string | undefined,
  opts: { integer: boolean; min?: number; max?: number },
): number | undefined {
  if (v === undefined) return undefined;
  const kind = opts.integer ? 'an integer' : 'a number';
  const n = Number(v);
  const ok = opts.integer ? INTEGER.test(v) && Number.isSafeInteger(n) : DECIMAL.test(v) && Number.isFinite(n);
  if (!ok) throw new WeightlensError(`--${flag} must be ${kind} written in decimal (got "${v}")`);
  if (opts.min !== undefined && n < opts.min) throw new WeightlensError(`--${flag} must be ${kind} >= ${opts.min} (got "${v}")`);
  if (opts.max !== undefined && n > opts.max) throw new WeightlensError(`--${flag} must be ${kind} <= ${opts.max} (got "${v}")`);
  return n;
}

export function parseChoice<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new WeightlensError(`--${flag} must be one of ${allowed.join(', ')} (got "${v}")`);
  return v as T;
}
