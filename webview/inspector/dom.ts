/**
 * The one DOM helper of the webview: `el(tag, props, ...children)`. `class`, `data-*`, `aria-*`,
 * `role`, `title`, `slot` and `scope` become attributes, anything else a property (`id`, `value`,
 * `hidden`, `selected`…).
 */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Record<string, unknown>,
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K];
export function el(tag: string, props?: Record<string, unknown>, ...children: (Node | string)[]): HTMLElement;
export function el(tag: string, props: Record<string, unknown> = {}, ...children: (Node | string)[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = String(v);
    else if (/^(data-|aria-)/.test(k) || k === 'role' || k === 'title' || k === 'slot' || k === 'scope') e.setAttribute(k, String(v));
    else (e as unknown as Record<string, unknown>)[k] = v;
  }
  e.append(...children);
  return e;
}

/** The same for custom elements (vscode-elements), which HTMLElementTagNameMap does not list here. */
export const custom = (tag: string, props: Record<string, unknown> = {}, ...children: (Node | string)[]): HTMLElement =>
  el(tag, props, ...children);

/** The element with this id, when the current page has it. */
export const byId = <T extends HTMLElement = HTMLElement>(id: string): T | undefined =>
  (document.getElementById(id) as T | null) ?? undefined;
