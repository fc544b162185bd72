import type { CliStreams } from './output';

/** Progress of a long command, reported as it goes. */
export interface Progress {
  update(processed: number, total: number): void;
  /** Ends the report (the bar's line is finished); idempotent. */
  done(): void;
}

const silent: Progress = { update: () => undefined, done: () => undefined };

/** Plain lines at most this often, so a log is not flooded by a big table. */
const LINE_INTERVAL_MS = 1000;

function seconds(value: number): string {
  if (!Number.isFinite(value)) return '?';
  if (value < 60) return `${Math.ceil(value)}s`;
  const minutes = Math.floor(value / 60);
  return minutes < 60 ? `${minutes}m${Math.ceil(value % 60)}s` : `${Math.floor(minutes / 60)}h${minutes % 60}m`;
}

/**
 * A cli-progress bar (count, rate, ETA) when stderr is a terminal; otherwise plain lines on
 * stderr (`verify Order: 500/1200 (42%), 830/s, ETA 1s`), at most one a second plus the last.
 * stdout stays for the result, so `--json` output can be piped while progress shows.
 */
export function createProgress(streams: CliStreams, label: string, enabled: boolean): Progress {
  if (!enabled) return silent;
  return streams.stderr.isTTY ? barProgress(streams, label) : lineProgress(streams, label);
}

function lineProgress(streams: CliStreams, label: string): Progress {
  const started = Date.now();
  // A command done within the first interval prints its last line only.
  let lastLine = started;
  let last: { processed: number; total: number } | undefined;
  let printed: { processed: number; total: number } | undefined;
  const print = (processed: number, total: number) => {
    const elapsed = Math.max(Date.now() - started, 1) / 1000;
    const rate = processed / elapsed;
    const percent = total > 0 ? Math.floor((processed / total) * 100) : 100;
    const eta = rate > 0 ? seconds(Math.max(total - processed, 0) / rate) : '?';
    streams.stderr.write(`${label}: ${processed}/${total} (${percent}%), ${Math.round(rate)}/s, ETA ${eta}\n`);
    lastLine = Date.now();
    printed = { processed, total };
  };
  return {
    update(processed, total) {
      last = { processed, total };
      if (processed >= total || Date.now() - lastLine >= LINE_INTERVAL_MS) print(processed, total);
    },
    done() {
      if (last && (printed?.processed !== last.processed || printed.total !== last.total)) print(last.processed, last.total);
      last = undefined;
    },
  };
}

function barProgress(streams: CliStreams, label: string): Progress {
  // Loaded only for a terminal: scripts and in-process callers never pay for it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { SingleBar } = require('cli-progress') as typeof import('cli-progress');
  const bar = new SingleBar({
    stream: streams.stderr,
    format: `${label} [{bar}] {value}/{total} {percentage}% | {rate}/s | ETA {eta_formatted}`,
    barCompleteChar: '#',
    barIncompleteChar: '-',
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 20,
  });
  const started = Date.now();
  let running = false;
  return {
    update(processed, total) {
      const rate = Math.round(processed / (Math.max(Date.now() - started, 1) / 1000));
      if (!running) {
        bar.start(total, processed, { rate });
        running = true;
      } else {
        bar.setTotal(total);
        bar.update(processed, { rate });
      }
    },
    done() {
      if (running) bar.stop();
      running = false;
    },
  };
}
