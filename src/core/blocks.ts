/**
 * Transformer blocks from tensor names, architecture-agnostically: `model.layers.12.`,
 * `transformer.h.12.`, `model.decoder.layers.12.`, `gpt_neox.layers.12.`, `blocks.12.`,
 * `encoder.layer.12.`, GGUF's `blk.12.` ... Tensors outside any block (embeddings, final norm, lm_head) are reported
 * separately. `execIndex` counts from the model's input: the token embedding is 1, the first block
 * is 2 (the EWQ paper's convention).
 */
const LAYER_RE = /^(.*?(?:^|\.)(?:layers|layer|h|blocks|block|blk))\.(\d+)(?:\.|$)/;

export interface BlockRef {
  /** The stack the block belongs to, e.g. "model.layers" or "model.decoder.layers". */
  readonly stack: string;
  /** The number in the name. */
  readonly layer: number;
  /** What follows the block prefix, e.g. "self_attn.q_proj.weight". */
  readonly rest: string;
}

export function blockOf(name: string): BlockRef | undefined {
  const m = LAYER_RE.exec(name);
  if (!m) return undefined;
  return { stack: m[1], layer: Number(m[2]), rest: name.slice(m[0].length) };
}

export interface Block {
  readonly index: number;
  readonly execIndex: number;
  readonly stack: string;
  readonly layer: number;
  readonly tensors: string[];
  params: number;
}

export interface BlockGrouping {
  readonly blocks: Block[];
  /** Tensors in no block (embeddings, final norm, lm_head, ...). */
  readonly other: string[];
}

/** Blocks in execution order: stacks in order of first appearance, layers ascending. */
export function groupBlocks(tensors: readonly { name: string; numel: number }[]): BlockGrouping {
  const stacks: string[] = [];
  const byKey = new Map<string, { stack: string; layer: number; tensors: string[]; params: number }>();
  const other: string[] = [];
  for (const t of tensors) {
    const ref = blockOf(t.name);
    if (!ref) {
      other.push(t.name);
      continue;
    }
    if (!stacks.includes(ref.stack)) stacks.push(ref.stack);
    const key = `${ref.stack}\u0000${ref.layer}`;
    let b = byKey.get(key);
    if (!b) byKey.set(key, (b = { stack: ref.stack, layer: ref.layer, tensors: [], params: 0 }));
    b.tensors.push(t.name);
    b.params += t.numel;
  }
  const ordered = [...byKey.values()].sort((a, b) => stacks.indexOf(a.stack) - stacks.indexOf(b.stack) || a.layer - b.layer);
  const blocks = ordered.map((b, i) => ({ ...b, index: i, execIndex: i + 2 }));
  return { blocks, other };
}
