/**
 * JSON laid out as the repository's formatter (Biome, line width 140) lays it out, so a results file can be
 * committed as written: objects one member a line, arrays of plain values on one line when they fit.
 */
const LINE_WIDTH = 140;

export function formatJson(value: unknown, indent = '', prefix = 0): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const plain = value.every((item) => item === null || typeof item !== 'object');
    const oneLine = `[${value.map((item) => JSON.stringify(item)).join(', ')}]`;
    if (plain && indent.length + prefix + oneLine.length + 1 <= LINE_WIDTH) return oneLine;
    return `[\n${value.map((item) => `${inner}${formatJson(item, inner)}`).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value).filter(([, member]) => member !== undefined);
  if (entries.length === 0) return '{}';
  return `{\n${entries
    .map(([key, member]) => {
      const head = `${JSON.stringify(key)}: `;
      return `${inner}${head}${formatJson(member, inner, head.length)}`;
    })
    .join(',\n')}\n${indent}}`;
}
