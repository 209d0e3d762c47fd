/**
 * JSON.parse keeps the last of two equal keys silently; a safetensors header with a duplicate
 * tensor name is corrupt, so the top-level keys are listed from the text itself. Only called on
 * text JSON.parse accepted, so the scanner can assume well-formed JSON.
 */
export function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let i = 0;
  const n = json.length;
  while (i < n) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      i++;
      while (i < n) {
        const d = json.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      const literal = json.slice(start, i + 1);
      i++;
      if (depth === 1) {
        let j = i;
        while (j < n && isSpace(json.charCodeAt(j))) j++;
        if (json.charCodeAt(j) === 0x3a /* : */) keys.push(JSON.parse(literal) as string);
      }
      continue;
    }
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    i++;
  }
  return keys;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
