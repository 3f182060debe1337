/**
 * What `llm-trader backtest` shows while it runs: the preview before the first paid request, and the progress — a
 * bar on a terminal, one line every ~10 seconds in a log (stderr not a TTY). Text only; the figures come from the
 * run's {@link LlmRun}.
 */
import cliProgress from 'cli-progress';
import type { Config } from '../../core/config';
import type { BacktestProgress, RequestPreview } from '../../backtest/engine';
import { ASSUMED_OUTPUT_TOKENS, type LlmProgress, type LlmRun, type RunEstimate } from '../../backtest/llm-run';
import { isLocalEndpoint } from '../../llm/endpoint';
import { safeUrl } from '../../llm/errors';
import { describePrice } from '../../llm/pricing';
import { formatDuration } from './shared';

/** Seconds between two progress lines in a log. */
export const LOG_PROGRESS_SECONDS = 10;

const int = (n: number) => Math.round(n).toLocaleString('en-US');

/** `950`, `12.3k`, `6.02M` tokens. */
export function humanCount(n: number): string {
  if (n < 1_000) return String(Math.round(n));
  if (n < 1_000_000) return `${(n / 1_000).toFixed(n < 10_000 ? 2 : 1)}k`;
  return `${(n / 1_000_000).toFixed(n < 10_000_000 ? 2 : 1)}M`;
}

function usd(v: number): string {
  return v < 1 ? v.toFixed(4) : v.toFixed(2);
}

function isoMinute(t: number): string {
  return `${new Date(t).toISOString().slice(0, 16)}Z`;
}

/** The preview, one line per figure (see README "LLM backtests"). */
export function previewLines(preview: RequestPreview, estimate: RunEstimate, config: Config): string[] {
  const { llm } = config;
  const e = estimate;
  const lines = [
    `before the first request to ${llm.model} at ${safeUrl(llm.api_base)} (decision time ${isoMinute(preview.time)}, ` +
      `${preview.timeIndex + 1} of ${preview.times}):`,
    `  decisions      ${int(e.toAsk)} to ask` +
      `${e.cached > 0 ? `, ${int(e.cached)} answered from the decision cache` : ''} (the run has up to ${int(e.slots)})`,
  ];
  lines.push(
    e.inputTokens === null
      ? '  input tokens   unknown (the prompts were not counted)'
      : `  input tokens   ~${humanCount(e.inputTokens)} (${int(e.promptTokens!)} per prompt, the ${e.prompts} ` +
          `prompt(s) of this decision time; a position prompt has up to ${int(e.positionBudget)})`,
  );
  lines.push(
    `  output tokens  ~${humanCount(e.outputTokens)} (` +
      (e.outputMeasured
        ? `${int(e.outputPerAnswer)} per answer, as the cached answers`
        : `assumed ${ASSUMED_OUTPUT_TOKENS} per answer: none answered yet`) +
      `; at most ${humanCount(e.maxOutputTokens)} at llm.max_tokens ${llm.max_tokens})`,
  );
  if (e.price && e.costUsd !== null) {
    lines.push(
      `  cost           ~${usd(e.costUsd)} USD at ${describePrice(e.price.price)} (${
        e.price.source === 'config' ? `llm.pricing "${e.price.model}"` : `built-in price of ${e.price.model}`
      }; repair rounds of invalid answers come on top)`,
    );
  } else if (e.price === null) {
    lines.push(
      `  cost           no estimate: no price for model "${llm.model}" (set llm.pricing["${llm.model}"] = ` +
        '{"input": ..., "cached_input": ..., "output": ...} in USD per million tokens)',
    );
  } else {
    lines.push('  cost           no estimate: the prompts were not counted');
  }
  lines.push(
    `  wall time      ~${int(e.answerTimes)} answer times at concurrency ${e.concurrency} (${e.roundsPerTime} ` +
      `round(s) of requests for each of ${int(e.remainingTimes)} decision times): ` +
      `${formatDuration(e.answerTimes * 1000)} at 1 s per answer, ${formatDuration(e.answerTimes * 3000)} at 3 s` +
      (e.prefetch && e.prefetchAnswerTimes < e.answerTimes
        ? `; with --prefetch down to ~${int(e.prefetchAnswerTimes)} when its guesses hold`
        : ''),
  );
  lines.push(
    llm.max_cost_usd === null
      ? '  cost cap       none (--max-cost <usd> or llm.max_cost_usd sets one)'
      : `  cost cap       ${usd(llm.max_cost_usd)} USD: no request is sent that could pass it; rerun to continue ` +
          'from the decision cache',
  );
  if (llm.api_key === '' && !isLocalEndpoint(llm.api_base)) {
    lines.push(`  API key        none for ${safeUrl(llm.api_base)}: set OPENAI_API_KEY before the run`);
  }
  return lines;
}

/** One progress line: `412/2,448 decisions (16.8 %) ... | ETA 3m 12s`. */
export function progressLine(p: LlmProgress, time: number | null): string {
  const pct = p.slots > 0 ? ` (${((p.decisions / p.slots) * 100).toFixed(1)} %)` : '';
  const parts = [
    `${int(p.decisions)}/${int(p.slots)} decisions${pct}${time === null ? '' : ` up to ${isoMinute(time)}`}`,
    `${int(p.cacheHits)} from the cache`,
    `${int(p.requests)} requests${p.prefetchRequests > 0 ? ` (${int(p.prefetchRequests)} ahead)` : ''}${p.spentUsd === null ? ' (no price)' : `, ${usd(p.spentUsd)} USD`}`,
    `tokens ${humanCount(p.tokens.input)} in (${humanCount(p.tokens.cachedInput)} cached) / ${humanCount(p.tokens.output)} out`,
    `fallbacks ${p.fallbackPct === null ? '-' : `${p.fallbackPct.toFixed(1)} %`}`,
  ];
  const s = p.scheduler;
  const waiting = s.waitingUntil === null ? 0 : Math.max(0, s.waitingUntil - Date.now());
  parts.push(
    s.rateLimited > 0
      ? `concurrency ${s.limit} of ${s.concurrency} (${s.rateLimited} rate limited${waiting > 0 ? `, waiting ${formatDuration(waiting)}` : ''})`
      : `concurrency ${s.concurrency}`,
  );
  parts.push(`ETA ${p.etaSeconds === null ? '-' : formatDuration(p.etaSeconds * 1000)}`);
  return parts.join(' | ');
}

/**
 * The progress of one run on `stream`: a bar when it is a terminal; else, for a remote model, a line every
 * {@link LOG_PROGRESS_SECONDS} seconds and one at the end.
 */
export class ProgressReporter {
  private readonly bar: cliProgress.SingleBar | null;
  private readonly timer: NodeJS.Timeout | null;
  private last: BacktestProgress | null = null;
  private started = false;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly run: LlmRun | null,
    private readonly times: number,
  ) {
    const tty = stream.isTTY === true;
    this.bar = tty
      ? new cliProgress.SingleBar(
          {
            format: run
              ? 'backtest [{bar}] {percentage}% | {line}'
              : 'backtest [{bar}] {percentage}% | {value}/{total} decision times | ETA {eta_formatted}',
            stream,
            hideCursor: true,
            etaBuffer: 50,
            // the figures after the bar matter more than its length (a wider line is cut at the terminal's edge)
            barsize: run ? 16 : 40,
          },
          cliProgress.Presets.shades_classic,
        )
      : null;
    this.timer = !tty && run ? setInterval(() => this.printLine(), LOG_PROGRESS_SECONDS * 1000).unref() : null;
  }

  /** Starts the bar (after the preview, which must not be drawn over). */
  start(): void {
    if (this.started || !this.bar) return;
    this.started = true;
    const total = this.run ? Math.max(1, this.run.progress(0).slots) : this.times;
    this.bar.start(total, 0, { line: '' });
  }

  /** Stops the bar for a moment, e.g. to print the preview; `start` resumes it. */
  pause(): void {
    if (this.started) this.bar?.stop();
    this.started = false;
  }

  readonly update = (progress: BacktestProgress): void => {
    this.last = progress;
    if (!this.bar) return;
    if (!this.started) this.start();
    if (this.run) {
      const p = this.run.progress(progress.decisionSlots);
      this.bar.setTotal(Math.max(1, p.slots));
      this.bar.update(p.decisions, { line: progressLine(p, progress.time) });
    } else {
      this.bar.update(progress.done);
    }
  };

  /** Stops the bar or the timer; in a log, a remote model's run ends with one more line. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.started) this.bar?.stop();
    this.started = false;
    if (!this.bar && this.run && this.last) this.printLine();
  }

  private printLine(): void {
    if (!this.run || !this.last) return;
    const p = this.run.progress(this.last.decisionSlots);
    this.stream.write(`backtest: ${progressLine(p, this.last.time)}\n`);
  }
}
