/**
 * A write in one round trip. pg sends a query and waits for its answer before it sends the next, so a
 * statement in a transaction of its own costs three round trips (BEGIN, the statement, COMMIT). Here all
 * of them go out at once over the extended protocol, with a single Sync at the end: the server runs them in
 * order and answers once. An error makes it skip the rest up to the Sync, so nothing after a failed step runs.
 */
import type pg from 'pg';
import type { Statement } from './sql.js';

/** One statement of the pipeline with its parameters (text or null, as TOKEN_COLUMNS values are). */
export interface PipelineStep {
  statement: Statement;
  values: ReadonlyArray<string | null>;
}

/** pg's connection, as far as the pipeline uses it: the protocol messages pg-cursor sends too. */
interface Protocol {
  stream: { cork?(): void; uncork?(): void };
  /** pg's record of the named statements prepared on this connection: name to text. */
  parsedStatements?: Record<string, string>;
  close(message: { type: 'S'; name: string }): void;
  parse(message: { name: string; text: string }): void;
  bind(message: { statement: string; values: ReadonlyArray<string | null> }): void;
  execute(): void;
  sync(): void;
}

/** Where pg keeps no record of prepared statements (another version): one of the store's own, per connection. */
const ownRecords = new WeakMap<Protocol, Record<string, string>>();

/**
 * The named statements prepared on `connection`, name to text: pg's own record, which its queries consult
 * too, so a statement is prepared once whichever of them sends it first.
 */
function preparedOn(connection: Protocol): Record<string, string> {
  if (connection.parsedStatements !== undefined) return connection.parsedStatements;
  let record = ownRecords.get(connection);
  if (record === undefined) {
    record = {};
    ownRecords.set(connection, record);
  }
  return record;
}

/**
 * Runs `steps` on `client` in one round trip and resolves with the rows of step `rowsOf`, each the list of
 * its column values as text, in the order of its select list. Rejects with the first error, then the
 * transaction a step opened is still open (and failed): the caller rolls it back or drops the connection.
 */
export function runPipeline(client: pg.PoolClient, steps: PipelineStep[], rowsOf: number): Promise<Array<Array<string | null>>> {
  if ((client as { pipeline?: unknown }).pipeline === true) return runQueued(client, steps, rowsOf);
  return new Promise((resolve, reject) => {
    client.query(new Pipeline(steps, rowsOf, (error, rows) => (error === null ? resolve(rows) : reject(error))));
  });
}

/**
 * A client in pg's own pipeline mode (`pipeline: true`) sends each query without waiting for the one before,
 * but refuses a custom query such as `Pipeline`: the steps go as queries of their own, still in one round
 * trip. Each has its own Sync, so a failed step does not skip the ones after it; they fail in the aborted
 * transaction instead, and its COMMIT rolls it back.
 */
async function runQueued(client: pg.PoolClient, steps: PipelineStep[], rowsOf: number): Promise<Array<Array<string | null>>> {
  const results = await Promise.allSettled(
    steps.map(({ statement, values }) =>
      client.query<Array<string | null>>({ name: statement.name, text: statement.text, values: [...values], rowMode: 'array' }),
    ),
  );
  for (const result of results) if (result.status === 'rejected') throw result.reason; // the first failure is the cause
  const answer = results[rowsOf];
  return answer?.status === 'fulfilled' ? answer.value.rows : [];
}

class Pipeline implements pg.Submittable {
  private readonly rows: Array<Array<string | null>> = [];
  /** CommandComplete messages so far: the index of the step whose rows are arriving. */
  private completed = 0;
  private connection: Protocol | null = null;
  private settled = false;

  constructor(
    private readonly steps: PipelineStep[],
    private readonly rowsOf: number,
    private readonly done: (error: Error | null, rows: Array<Array<string | null>>) => void,
  ) {}

  submit(pgConnection: pg.Connection): void {
    const connection = pgConnection as unknown as Protocol;
    this.connection = connection;
    const prepared = preparedOn(connection);
    connection.stream.cork?.(); // one write for all messages
    try {
      for (const { statement, values } of this.steps) {
        if (prepared[statement.name] !== statement.text) {
          // An earlier pipeline that failed may or may not have prepared it; closing a missing statement is no error.
          connection.close({ type: 'S', name: statement.name });
          connection.parse({ name: statement.name, text: statement.text });
        }
        connection.bind({ statement: statement.name, values });
        connection.execute();
      }
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
  }

  handleDataRow(message: { fields: Array<string | null> }): void {
    if (this.completed === this.rowsOf) this.rows.push(message.fields);
  }

  handleCommandComplete(): void {
    this.completed++;
  }

  /** pg calls this for an ErrorResponse (the server skips to the Sync) and when the connection fails. */
  handleError(error: Error): void {
    this.settle(error);
  }

  handleReadyForQuery(): void {
    if (this.connection !== null && this.completed === this.steps.length) {
      const prepared = preparedOn(this.connection);
      for (const { statement } of this.steps) prepared[statement.name] = statement.text;
    }
    this.settle(null);
  }

  // Messages these steps never cause (no Describe, no COPY, no row limit).
  handleRowDescription(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
  handleCopyInResponse(connection: { sendCopyFail(message: string): void }): void {
    connection.sendCopyFail('the store sends no COPY');
  }

  private settle(error: Error | null): void {
    if (this.settled) return;
    this.settled = true;
    this.done(error, this.rows);
  }
}
