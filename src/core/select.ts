/**
 * Which tensors get quantized, and how each is seen as a matrix of output channels.
 *
 * Default: 2-D float `.weight` tensors of linear layers, not embeddings, lm_head or norms (the paper
 * quantizes linear layers only; biases and norms are 1-D). `include` replaces the default name rule
 * (and admits tensors of any rank >= 1); `exclude` removes names from whatever was selected.
 */
import { isQuantizableFloat, type DType } from './dtypes';
import { WeightlensError } from './errors';

const EMBEDDING_RE =
  /(^|\.)(embed_tokens|embed_positions|embeddings?|word_embeddings|position_embeddings|wte|wpe|shared|tok_embeddings)(\.|$)/i;
const HEAD_RE = /(^|\.)(lm_head|embed_out|output_layer)(\.|$)/i;
const NORM_RE = /(norm|(^|\.)ln_[a-z0-9]*(\.|$)|(^|\.)ln(\.|$))/i;
/** GPT-2's Conv1D weights are stored [in, out]: their output channels are columns. */
const CONV1D_RE = /(^|\.)h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

export interface TensorLike {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface MatrixView {
  /** Output channels. */
  readonly rows: number;
  /** Weights per output channel. */
  readonly cols: number;
  /** True when the stored layout is [in, out] (GPT-2 Conv1D). */
  readonly transposed: boolean;
}

export function isEmbedding(name: string): boolean {
  return EMBEDDING_RE.test(name);
}

export function isEmbeddingOrHead(name: string): boolean {
  return EMBEDDING_RE.test(name) || HEAD_RE.test(name);
}

export function isConv1dWeight(name: string): boolean {
  return CONV1D_RE.test(name);
}

/** The default rule: a 2-D float weight of a linear layer. */
export function isDefaultTarget(t: TensorLike): boolean {
  return (
    isQuantizableFloat(t.dtype) && t.shape.length === 2 && t.name.endsWith('.weight') && !isEmbeddingOrHead(t.name) && !NORM_RE.test(t.name)
  );
}

/** A tensor as [rows = output channels, cols]: 1-D is one row, N-D flattens all but the first axis. */
export function matrixView(t: TensorLike): MatrixView {
  const [first, ...rest] = t.shape;
  if (t.shape.length === 2 && isConv1dWeight(t.name)) return { rows: t.shape[1], cols: t.shape[0], transposed: true };
  if (t.shape.length <= 1) return { rows: 1, cols: first ?? 1, transposed: false };
  return { rows: first, cols: rest.reduce((a, b) => a * b, 1), transposed: false };
}

export function compilePattern(flag: string, source: string | undefined): RegExp | undefined {
  if (source === undefined || source === '') return undefined;
  try {
    return new RegExp(source);
  } catch (e) {
    throw new WeightlensError(`${flag} is not a valid regular expression: ${(e as Error).message}`);
  }
}

export interface Selection {
  readonly include?: string;
  readonly exclude?: string;
}

export function selectTargets<T extends TensorLike>(tensors: readonly T[], sel: Selection = {}): Map<string, MatrixView> {
  const include = compilePattern('--include', sel.include);
  const exclude = compilePattern('--exclude', sel.exclude);
  const out = new Map<string, MatrixView>();
  for (const t of tensors) {
    const candidate = include ? isQuantizableFloat(t.dtype) && t.shape.length >= 1 && include.test(t.name) : isDefaultTarget(t);
    if (!candidate || (exclude && exclude.test(t.name))) continue;
    const view = matrixView(t);
    if (view.rows * view.cols === 0) continue;
    out.set(t.name, view);
  }
  return out;
}
