/**
 * The token file format in one place: Zoho's FileStore CSV in UTF-8, read in every dialect Zoho's SDKs
 * write, written as RFC 4180 CSV with `\n` line ends. Rows map to tokens through the kit's
 * `tokenToRow`/`tokenFromRow`, like every other store's.
 */
import { type OAuthToken, TokenStoreError, type TokenStoreOperation } from '@crm/core';
import { TOKEN_COLUMNS, type TokenColumn, tokenFromRow, tokenToRow } from '@crm/core/store-kit';

export const STORE_NAME = 'FileTokenStore';

/** The header this store writes: Zoho's column names in Zoho's order. */
export const HEADER_LINE = TOKEN_COLUMNS.join(',');

/** Names other SDKs write in a column's place: TypeScript's `user_mail`, Python's `redirect_uri`. */
const HEADER_ALIASES: Partial<Record<TokenColumn, string>> = { user_name: 'user_mail', redirect_url: 'redirect_uri' };

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;

/** Fields that would change meaning unquoted. Everything else is written bare, as Zoho's Node/TS SDKs read it. */
const NEEDS_QUOTES = /[",\r\n]/;

function formatField(value: string | null): string {
  if (value === null) return '';
  return NEEDS_QUOTES.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** One CSV line (without line end) for a token. Absent fields are empty: core reads an empty string as absent. */
export function formatTokenLine(token: OAuthToken): string {
  const row = tokenToRow(token);
  return TOKEN_COLUMNS.map((column) => formatField(row[column])).join(',');
}

/**
 * The whole file. `\n` line ends and no newline after the last row, like Zoho's Node/TS SDKs: they split on
 * `\n` only, so `\r\n` would leave a `\r` in their `api_domain`. Python's csv reader accepts both.
 */
export function formatTokenFile(lines: readonly string[]): string {
  return lines.length === 0 ? HEADER_LINE : `${HEADER_LINE}\n${lines.join('\n')}`;
}

function corruptLine(operation: TokenStoreOperation, line: number, problem: string): TokenStoreError {
  // The line number only: a row's content holds secrets.
  return TokenStoreError.corrupt({ store: STORE_NAME, operation }, `the token file is corrupt at line ${line}: ${problem}`);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The file's bytes as text. Bytes that are not UTF-8 (a row another tool wrote in cp1252) are CORRUPT_DATA
 * naming the line: decoding them to U+FFFD would rewrite that row on the next unrelated save.
 */
export function decodeTokenFile(bytes: Uint8Array, operation: TokenStoreOperation): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    // Find the line: LF (0x0A) never occurs inside a UTF-8 sequence, so lines can be checked one by one.
    let start = 0;
    for (let line = 1; ; line++) {
      const end = bytes.indexOf(LF, start);
      try {
        UTF8.decode(bytes.subarray(start, end === -1 ? bytes.length : end));
      } catch {
        throw corruptLine(operation, line, 'the line is not valid UTF-8');
      }
      if (end === -1) throw corruptLine(operation, line, 'the file is not valid UTF-8');
      start = end + 1;
    }
  }
}

/** A record's fields, the physical line it starts on (1-based), and its text if it is one plain line. */
interface CsvRecord {
  fields: string[];
  line: number;
  /** The line without quotes or CR, which is what this store would write for the same fields. */
  plainText: string | null;
}

/**
 * Splits CSV text into records. Accepts `\n` and `\r\n`, RFC 4180 quoted fields (which may hold commas,
 * quotes and line breaks), and bare quotes inside unquoted fields (Zoho's Node/TS SDKs never quote).
 */
function parseRecords(text: string, operation: TokenStoreOperation): CsvRecord[] {
  const records: CsvRecord[] = [];
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  while (pos < text.length) {
    const recordLine = line;
    let lineEnd = text.indexOf('\n', pos);
    if (lineEnd === -1) lineEnd = text.length;
    // Fast path: a line without quotes is a plain split, which is every line of a Node/TS SDK file.
    const end = lineEnd > pos && text.charCodeAt(lineEnd - 1) === CR ? lineEnd - 1 : lineEnd;
    const lineText = text.slice(pos, end);
    if (!lineText.includes('"')) {
      const plainText = end === lineEnd && !lineText.includes('\r') ? lineText : null;
      records.push({ fields: lineText.split(','), line: recordLine, plainText });
      pos = lineEnd + 1;
      line++;
      continue;
    }
    const fields: string[] = [];
    for (;;) {
      if (text.charCodeAt(pos) === QUOTE) {
        let value = '';
        pos++;
        for (;;) {
          const close = text.indexOf('"', pos);
          if (close === -1) throw corruptLine(operation, recordLine, 'a quoted field is never closed');
          const chunk = text.slice(pos, close);
          value += chunk;
          for (let at = chunk.indexOf('\n'); at !== -1; at = chunk.indexOf('\n', at + 1)) line++;
          if (text.charCodeAt(close + 1) === QUOTE) {
            value += '"';
            pos = close + 2;
          } else {
            pos = close + 1;
            break;
          }
        }
        fields.push(value);
        const next = text.charCodeAt(pos);
        if (next === COMMA) {
          pos++;
          continue;
        }
        if (pos >= text.length) break;
        if (next === LF || (next === CR && text.charCodeAt(pos + 1) === LF)) {
          pos += next === LF ? 1 : 2;
          line++;
          break;
        }
        throw corruptLine(operation, line, 'text follows a closing quote');
      }
      let stop = pos;
      while (stop < text.length) {
        const code = text.charCodeAt(stop);
        if (code === COMMA || code === LF) break;
        stop++;
      }
      const atLineEnd = stop >= text.length || text.charCodeAt(stop) === LF;
      const end = atLineEnd && stop > pos && text.charCodeAt(stop - 1) === CR ? stop - 1 : stop;
      fields.push(text.slice(pos, end));
      pos = stop + 1;
      if (atLineEnd) {
        line++;
        break;
      }
    }
    records.push({ fields, line: recordLine, plainText: null });
  }
  return records;
}

/** Column order of a file from its header: Zoho's 10 columns or the old 9, with the other SDKs' names accepted. */
function readHeader(fields: string[], operation: TokenStoreOperation): TokenColumn[] {
  const columns = TOKEN_COLUMNS.slice(0, fields.length);
  const known =
    (fields.length === 9 || fields.length === 10) &&
    columns.every((column, index) => fields[index] === column || fields[index] === HEADER_ALIASES[column]);
  if (!known) throw corruptLine(operation, 1, "the header is not Zoho's token file header");
  return columns;
}

/** A stored token and its line in this store's format, when the file already held it in that form. */
export interface TokenEntry {
  token: OAuthToken;
  line: string | null;
}

/**
 * The tokens of a file's text, in file order. An empty file holds none. Throws CORRUPT_DATA naming the
 * line for an unknown header, a row whose column count differs from the header's, broken quoting, a row
 * without id, or an expiry time that is not a number.
 */
export function readTokenEntries(text: string, operation: TokenStoreOperation): TokenEntry[] {
  const records = parseRecords(text, operation).filter((record) => !(record.fields.length === 1 && record.fields[0] === ''));
  const [header, ...rows] = records;
  if (header === undefined) return [];
  const columns = readHeader(header.fields, operation);
  // Lines of a file in this store's own format are kept, so the first write does not format every row again.
  const ownFormat = header.plainText === HEADER_LINE;
  return rows.map(({ fields, line, plainText }) => {
    if (fields.length !== columns.length) {
      throw corruptLine(operation, line, `the row has ${fields.length} columns, the header ${columns.length}`);
    }
    const row: Partial<Record<TokenColumn, string>> = {};
    columns.forEach((column, index) => {
      row[column] = fields[index];
    });
    let token: OAuthToken;
    try {
      token = tokenFromRow(row, STORE_NAME, operation);
    } catch (error) {
      // The kit's reason names the column or the rule, never the value: keep it, add the line.
      throw corruptLine(operation, line, TokenStoreError.is(error) ? error.message.replace(/^[^:]*: /, '') : 'unreadable row');
    }
    const sameExpiryText = (token.expiryTime === null ? '' : String(token.expiryTime)) === row.expiry_time;
    return { token, line: ownFormat && sameExpiryText ? plainText : null };
  });
}

/** The tokens of a token file's text, in file order (see `readTokenEntries` for the errors). */
export function parseTokenFile(text: string, operation: TokenStoreOperation): OAuthToken[] {
  return readTokenEntries(text, operation).map((entry) => entry.token);
}
