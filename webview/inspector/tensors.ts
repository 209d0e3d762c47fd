/**
 * The tensor list: tensors grouped by transformer block, filtered by name, each block's table
 * built only when it is opened (a model with thousands of tensors renders at once), and a peek at
 * a tensor's first values (rows read from the host on demand).
 */
import * as l10n from '@vscode/l10n';
import { decodeFloats, isDecodableFloat, type DType, type DecodableFloat } from '../../src/core/dtypes';
import type { InspectSummary } from '../../src/core/inspect';
import { formatBytes, formatCount } from '../../src/shared/format';
import { byId, custom, el } from './dom';
import { host } from './host';

type Tensor = InspectSummary['tensors'][number];

function groups(s: InspectSummary): { heading: string; description: string; tensors: Tensor[]; key: string }[] {
  const byName = new Map(s.tensors.map((t) => [t.name, t]));
  const out = s.blocks.map((b) => ({
    key: `block-${b.index}`,
    heading: l10n.t('Block {0}', b.index),
    description: l10n.t('exec {0} · {1} tensors · {2} params', b.execIndex, b.tensors.length, formatCount(b.params)),
    tensors: b.tensors.map((n) => byName.get(n)!),
  }));
  if (s.other.length) {
    const tensors = s.other.map((n) => byName.get(n)!);
    out.push({
      key: 'other',
      heading: l10n.t('Outside blocks'),
      description: l10n.t('{0} tensors (embeddings, norms, head)', tensors.length),
      tensors,
    });
  }
  return out;
}

function matcher(q: string): (name: string) => boolean {
  if (!q) return () => true;
  const lower = q.toLowerCase();
  return (name) => name.toLowerCase().includes(lower);
}

function tensorTable(tensors: Tensor[]): HTMLTableElement {
  const body = el('tbody');
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    body.append(
      el(
        'tr',
        { 'data-tensor': t.name },
        el(
          'td',
          { class: 'name', title: l10n.t('{0} — click for its first values', t.name) },
          el('button', { class: 'peek', 'data-peek': t.name, 'aria-label': l10n.t('Show the first values of {0}', t.name) }, t.name),
        ),
        el('td', { class: 'dtype' }, t.dtype),
        el('td', { class: 'shape' }, `[${t.shape.join(', ')}]`),
        el('td', { class: 'num' }, formatCount(numel)),
        el('td', { class: 'num' }, formatBytes(t.bytes)),
      ),
    );
  }
  const head = [l10n.t('name'), 'dtype', l10n.t('shape'), l10n.t('params'), l10n.t('size')].map((h, i) =>
    el('th', i >= 3 ? { class: 'num' } : {}, h),
  );
  return el('table', { class: 'tensors' }, el('thead', {}, el('tr', {}, ...head)), body);
}

/** Fills #groups with the blocks whose tensors match `query`. */
export function renderGroups(summary: InspectSummary, query: string): void {
  const box = byId('groups');
  if (!box) return;
  const match = matcher(query);
  let shown = 0;
  const nodes: HTMLElement[] = [];
  for (const g of groups(summary)) {
    const tensors = g.tensors.filter((t) => match(t.name));
    if (!tensors.length) continue;
    shown += tensors.length;
    const open = query.length > 0;
    const c = custom('vscode-collapsible', {
      heading: g.heading,
      description: query ? l10n.t('{0} of {1} match · {2}', tensors.length, g.tensors.length, g.description) : g.description,
      open,
      'data-group': g.key,
    });
    // Build the table the first time the block is opened: cheap even with thousands of tensors.
    const fill = () => {
      if (!c.querySelector('table')) c.append(tensorTable(tensors));
    };
    if (open) fill();
    c.addEventListener('vsc-collapsible-toggle', fill);
    nodes.push(c);
  }
  box.replaceChildren(...nodes);
  byId('match-count')!.textContent = query ? l10n.t('{0} of {1} tensors match', shown, summary.tensors.length) : '';
}

/** Shows (or hides again) the first values of a tensor under its row. */
export async function peek(summary: InspectSummary, name: string, row: HTMLElement): Promise<void> {
  const t = summary.tensors.find((x) => x.name === name);
  if (!t) return;
  const next = row.nextElementSibling;
  if (next?.classList.contains('peek-row')) {
    next.remove();
    return;
  }
  const rows = t.shape.length === 0 ? 1 : t.shape[0];
  const cols = rows ? t.shape.slice(1).reduce((a, b) => a * b, 1) : 0;
  const shown = Math.min(4, rows);
  let text: string;
  try {
    const { bytes } = await host().request('readRows', { tensor: name, start: 0, count: shown });
    if (isDecodableFloat(t.dtype as DType)) {
      const v = decodeFloats(t.dtype as DecodableFloat, new Uint8Array(bytes));
      const line = (r: number) =>
        Array.from(v.subarray(r * cols, r * cols + Math.min(8, cols)), (x) => x.toPrecision(4)).join('  ') + (cols > 8 ? '  …' : '');
      text = Array.from({ length: shown }, (_, r) => line(r)).join('\n');
    } else text = l10n.t('{0} bytes of {1} (not a float dtype)', bytes.byteLength, t.dtype);
  } catch (e) {
    text = (e as Error).message;
  }
  row.after(el('tr', { class: 'peek-row', 'data-peek-of': name }, el('td', { colSpan: 5 }, el('pre', { class: 'peek-values' }, text))));
}
