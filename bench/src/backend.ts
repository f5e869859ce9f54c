/** What every backend of the bench provides: its contenders, loaded with the same tokens. */
import type { Operation } from './measure.js';

export const OPERATIONS = ['findToken (user name)', 'findTokenById', 'saveToken (update)', 'saveToken (insert)'] as const;
export type OperationName = (typeof OPERATIONS)[number];

/** ours: the @crm store; floor: the raw driver's single statement; keyv: Keyv 5 on the same backend; zoho: Zoho's own store. */
export const CONTENDER_KINDS = ['ours', 'floor', 'keyv', 'zoho'] as const;
export type ContenderKind = (typeof CONTENDER_KINDS)[number];

export interface Contender {
  kind: ContenderKind;
  /** What it is, for the notes under the table: `SQLiteTokenStore`, `better-sqlite3 prepared`... */
  label: string;
  operations: Record<OperationName, Operation>;
  /**
   * How many calls to measure of an operation at this size, when fewer than the run's count: for
   * contenders that read or rewrite a whole file per call.
   */
  fewer?: (operation: OperationName, size: number) => number | undefined;
}

export interface LoadedBackend {
  contenders: Contender[];
  /** Drops what the load made: tables, keys, files. */
  close(): Promise<void>;
}

export interface Settings {
  /** Distinguishes this run's new users and tables from any other run's. */
  tag: string;
  /** A fresh temporary folder for files of this run. */
  folder: string;
}

export interface Backend {
  name: string;
  /** Server (or library) version, for results.json. */
  version: string;
  load(size: number): Promise<LoadedBackend>;
  /** Stops a server this run started. */
  close(): Promise<void>;
}

/** Fails loudly when a contender cannot find what was just loaded into it: a broken load must not be timed. */
export async function checkLoaded(contender: Contender, size: number): Promise<void> {
  for (const operation of ['findToken (user name)', 'findTokenById'] as const) {
    for (const round of [0, size - 1]) {
      const found = await contender.operations[operation](round);
      if (found === null || found === undefined) {
        throw new Error(`${contender.label}: ${operation} found nothing for a loaded token (round ${round})`);
      }
    }
  }
}
