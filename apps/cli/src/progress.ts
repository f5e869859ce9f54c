/** Progress of a long command: a bar (cli-progress) on a terminal, one plain line per step otherwise (logs, pipes, CI). */
import cliProgress from 'cli-progress';

export interface Progress {
  /** One step done; `line` says which (never a secret), shown as a plain line when there is no terminal. */
  step(line: string): void;
  /** Ends the bar; plain output needs nothing. */
  stop(): void;
}

export function startProgress(label: string, total: number, stream: NodeJS.WriteStream = process.stdout): Progress {
  let done = 0;
  if (!stream.isTTY) {
    return {
      step(line) {
        done++;
        stream.write(`${label} ${done}/${total}: ${line}\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total}`, stream, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return {
    step() {
      bar.increment();
    },
    stop() {
      bar.stop();
    },
  };
}
