/**
 * `llm-trader backtest`: runs the live decision cycle over recorded candles (src/backtest/engine.ts) and writes
 * `<out>/result.json` (documented in src/backtest/result.ts), `<out>/llm_decisions.jsonl` (every decision in the
 * journal's format, compact: src/store/compact-decision-line.ts; replayable with `--policy replay:<that file>`) and
 * the HTML report; prints the comparison table, the data quality of the series it read and the sizes it wrote.
 *
 * Data: the candle database (`<data_dir>/candles.sqlite`, or `--db`) filled by import-data / download-data, unless
 * `--data <csv folder>` (or config replay.data) names a CSV folder to read directly.
 *
 * Outputs are never half-written and never destroy earlier ones: the run writes into a staging folder beside `--out`
 * and puts it in place only when it has succeeded (src/store/run-folder.ts); an `--out` that already holds files is
 * refused unless `--force`. The decision log is written as it goes, whole lines only: a model's run record by record,
 * so a killed run loses at most the last one; a local policy's run (cheap to repeat) in blocks of 256 KiB (see
 * src/cli/commands/decision-log-writer.ts).
 *
 * A replay policy's decision log is checked before the run (src/backtest/replay-log.ts): corrupt lines, and decision
 * times it does not cover unless `--allow-missing`.
 *
 * Defaults (no --config: the documented defaults of config/paper.json): --pairs = pairs, --policy = llm.provider
 * (replay: llm.replay_file), --out = <data_dir>/backtests/<run id>, --report = <out>/report.html. Times are UTC: a
 * date (2025-06-01) is its midnight; a number is Unix ms.
 *
 * With `--policy openai` (see README "LLM backtests"): the model is asked for every pair of a decision time at once,
 * at most `--concurrency` (backtest.concurrency) requests in flight, adapting to the server's rate limits; before the
 * first paid request a preview (decisions, tokens, cost, wall time) is printed, and `--dry-run` stops there, writing
 * nothing; `--max-cost` (llm.max_cost_usd) stops the run before its spend would pass the cap, resumable from the
 * decision cache; the fallback alarm stops a run whose model answers are mostly invalid (`--allow-fallbacks` lets it
 * go on); `--prefetch` asks the next decision time's questions while the last answers are out. Progress: a bar on a
 * terminal, a line every 10 s in a log.
 *
 * Exit codes: 0 done (or a dry run); 1 the run failed, was stopped by the cost cap or the fallback alarm (the message
 * says which), or the look-ahead check found a leak; 2 bad usage, config, data, decision log or an output folder in
 * use.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import type * as Engine from '../../backtest/engine';
import type { RequestPreview } from '../../backtest/engine';
import type { LlmProgress, LlmRun } from '../../backtest/llm-run';
import type { BacktestResult } from '../../backtest/result';
import { ConfigSchema, formatPath, type Config } from '../../core/config';
import { parseTimeOption } from '../../core/dates';
import { closedCount, timeframeMs } from '../../core/timeframe';
import type { Candle } from '../../core/types';
import { formatQuality, plural } from '../../core/data-quality';
import { Redactor } from '../../core/redact';
import { LOCAL_LOG_BLOCK, LineWriter } from './decision-log-writer';
import { writeFileAtomic } from '../../store/atomic-file';
import { openRecordedSource } from '../../store/recorded-source';
import { RunFolder } from '../../store/run-folder';
import { PROBLEM_KIND_LABELS, type ProblemKind } from '../../core/validate';
import { InputError, OperatorError } from '../../worker/errors';
import { ProgressReporter, humanCount, previewLines } from './backtest-progress';
import { checkPairs, collectOldGenerationAtDouble, formatTable, readConfig } from './shared';
import type { BacktestCliOptions } from './backtest-command';

function usage(command: Command, message: string): never {
  return command.error(`backtest: ${message}`, { exitCode: 2, code: 'llm-trader.backtest-usage' });
}

/** A number option, or exit 2 saying what was expected. */
function numberOption(command: Command, name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) usage(command, `${name} must be a number, got "${text}"`);
  return n;
}

/** The effective config: the file's, with the command's overrides, validated again. */
function effectiveConfig(command: Command, base: Config, opts: BacktestCliOptions, pairs: string[]): Config {
  const concurrency = numberOption(command, '--concurrency', opts.concurrency);
  const maxCost = numberOption(command, '--max-cost', opts.maxCost);
  const raw = {
    ...base,
    pairs,
    llm: {
      ...base.llm,
      ...(opts.llmBaseUrl !== undefined ? { api_base: opts.llmBaseUrl } : {}),
      ...(maxCost !== undefined ? { max_cost_usd: maxCost } : {}),
    },
    backtest: {
      ...base.backtest,
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(opts.prefetch ? { prefetch: true } : {}),
    },
  };
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${formatPath(i.path)} ${i.message}`).join('; ');
    const hints = [
      ...(opts.llmBaseUrl !== undefined ? ['--llm-base-url'] : []),
      ...(concurrency !== undefined ? ['--concurrency'] : []),
      ...(maxCost !== undefined ? ['--max-cost'] : []),
    ];
    usage(command, `invalid settings: ${problems}${hints.length > 0 ? ` (check ${hints.join(', ')})` : ''}`);
  }
  return parsed.data;
}

type PolicySpec = { kind: 'baseline' } | { kind: 'openai' } | { kind: 'replay'; file: string };

function parsePolicy(command: Command, text: string, config: Config): PolicySpec {
  if (text === 'baseline' || text === 'openai') return { kind: text };
  if (text === 'replay') {
    if (!config.llm.replay_file) {
      usage(command, '--policy replay needs a file: use replay:<llm_decisions.jsonl> or set llm.replay_file');
    }
    return { kind: 'replay', file: config.llm.replay_file };
  }
  if (text.startsWith('replay:') && text.length > 'replay:'.length) return { kind: 'replay', file: text.slice(7) };
  return usage(command, `--policy must be baseline, openai or replay:<llm_decisions.jsonl>, got "${text}"`);
}

function pct(v: number | null, digits = 2): string {
  return v === null ? '-' : v.toFixed(digits);
}

/** `llm-trader backtest` (options: ./backtest-command.ts). */
export async function backtest(opts: BacktestCliOptions, command: Command): Promise<void> {
  collectOldGenerationAtDouble();
  const base = await readConfig(opts);
  const pairs = checkPairs(command, opts.pairs ?? base.pairs);
  const config = effectiveConfig(command, base, opts, pairs);
  const policySpec = parsePolicy(command, opts.policy ?? config.llm.provider, config);
  const from = opts.from === undefined ? null : parseTimeOption(opts.from);
  const to = opts.to === undefined ? null : parseTimeOption(opts.to);
  if (opts.from !== undefined && from === null)
    usage(command, `--from "${opts.from}" is not an existing UTC date (2025-06-01), ISO time or Unix ms`);
  if (opts.to !== undefined && to === null)
    usage(command, `--to "${opts.to}" is not an existing UTC date (2025-06-01), ISO time or Unix ms`);
  const samples = Number(opts.lookaheadSamples);
  if (!Number.isInteger(samples) || samples < 1) {
    usage(command, `--lookahead-samples must be a positive integer, got "${opts.lookaheadSamples}"`);
  }
  const redactor = Redactor.fromConfig(config);

  const [engine, policies, { renderReport }, journal, replayLog, { backtestLogLines }] = await Promise.all([
    import('../../backtest/engine'),
    import('../../backtest/policy'),
    import('../../backtest/report'),
    import('../../store/journal'),
    import('../../backtest/replay-log'),
    import('../../backtest/log-line'),
  ]);
  const source = await openRecordedSource(config, { data: opts.data ?? null, db: opts.db ?? null });
  const market = source.market;
  const closers: (() => void)[] = [() => source.close()];
  let llmRun: LlmRun | null = null;
  if (policySpec.kind === 'openai') {
    const [{ RequestScheduler }, { LlmRun }] = await Promise.all([
      import('../../llm/request-scheduler'),
      import('../../backtest/llm-run'),
    ]);
    try {
      llmRun = new LlmRun({
        config,
        scheduler: new RequestScheduler({ concurrency: config.backtest.concurrency }),
        allowFallbacks: opts.allowFallbacks === true,
      });
    } catch (err) {
      source.close();
      usage(command, err instanceof Error ? err.message : String(err));
    }
  }
  try {
    let policy;
    let replay: Awaited<ReturnType<typeof policies.replayPolicy>> | null = null;
    try {
      if (policySpec.kind === 'baseline') policy = policies.baselinePolicy();
      else if (policySpec.kind === 'replay') policy = replay = await policies.replayPolicy(policySpec.file);
      else {
        let cache = null;
        const { DecisionCache } = await import('../../llm/decision-cache');
        if (config.llm.cache) {
          cache = DecisionCache.open(join(config.data_dir, 'decision-cache.sqlite'));
          const opened = cache;
          closers.push(() => opened.close());
        } else if (config.backtest.prefetch) {
          // prefetched answers are joined through a cache: without llm.cache, one that lasts for this run
          cache = DecisionCache.inMemory();
        }
        const run = llmRun!;
        policy = await policies.openaiPolicy(config.llm, {
          cache,
          cacheMode: opts.cache ? 'read-write' : 'refresh',
          scheduler: run.scheduler,
          wrap: run.meter,
          deferKeyCheck: opts.dryRun === true,
        });
      }
    } catch (err) {
      if (err instanceof OperatorError) throw err;
      throw new OperatorError(`backtest: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }

    const options = { config, market, pairs, from, to, policy };
    let plan;
    try {
      plan = await engine.planBacktest(options);
    } catch (err) {
      // a pair without data or a range outside it: the command line asks for something the data cannot give
      const message = err instanceof Error ? err.message : String(err);
      throw new InputError(
        `${message.startsWith('backtest:') ? message : `backtest: ${message}`} (${source.description})`,
        {
          cause: err,
        },
      );
    }

    let replayCheck: { missing: number; asked: number } | null = null;
    if (replay) {
      const cycles = askedCycles(engine, plan);
      const asked = [...cycles.values()].reduce((n, t) => n + t.length, 0);
      const missing = replayLog.missingDecisions(replay.log.records, cycles, timeframeMs(config.timeframes.main));
      replayLog.assertReplayable(
        policySpec.kind === 'replay' ? policySpec.file : '',
        replay.log,
        missing,
        asked,
        opts.allowMissing === true,
      );
      replayCheck = { missing: missing.reduce((n, m) => n + m.count, 0), asked };
      if (replayCheck.missing > 0) {
        console.error(
          `warning: the decision log has no decision for ${replayCheck.missing} of ${asked} pair-cycles; they are ` +
            'replayed as hold/wait (--allow-missing) and counted in result.json replayLog',
        );
      }
    }

    const out = resolve(opts.out ?? join(config.data_dir, 'backtests', plan.runId));
    const reportTarget = resolve(opts.report ?? join(out, 'report.html'));
    const reportInside = relative(out, reportTarget) === 'report.html';
    if (!reportInside && existsSync(reportTarget) && !opts.force) {
      throw new InputError(
        `backtest: the report ${reportTarget} already exists; choose another --report, or pass --force to replace it ` +
          'once this run has succeeded',
      );
    }
    // a dry run writes nothing: no run folder, not even the decisions replayed from the cache before its first request
    const folder = opts.dryRun ? null : RunFolder.prepare(out, opts.force === true);
    try {
      const log = folder
        ? new LineWriter(
            folder.file(journal.DECISIONS_LOG_FILE),
            join(out, journal.DECISIONS_LOG_FILE),
            redactor,
            policy.remote ? 0 : LOCAL_LOG_BLOCK,
          )
        : null;
      const logLine = backtestLogLines();
      const progress = new ProgressReporter(process.stderr, llmRun, plan.times.length);
      const started = performance.now();
      let run;
      try {
        // a model's run starts its bar after the preview (or at its first decision time, when everything is cached)
        if (!llmRun) progress.start();
        run = await engine.runBacktest(
          {
            ...options,
            lookaheadSamples: opts.checkLookahead ? samples : 0,
            prefetch: config.backtest.prefetch,
            skippedRows: (pair, tf) => source.skippedRows(pair, tf),
            onProgress: progress.update,
            onDecision: (pair, event, runId) => {
              llmRun?.observe(pair, event);
              log?.write(logLine(runId, pair, event));
            },
            ...(llmRun
              ? {
                  beforeFirstRequest: (preview: RequestPreview) => {
                    const figures = llmRun.estimate(preview);
                    progress.pause();
                    console.error(previewLines(preview, figures, config).join('\n'));
                    if (opts.dryRun) {
                      throw new engine.BacktestStop('dry-run', 'dry run: stopped before the first request');
                    }
                    progress.start();
                  },
                }
              : {}),
          },
          plan,
        );
        llmRun?.finish();
      } catch (err) {
        progress.stop();
        if (err instanceof engine.BacktestStop && err.kind === 'dry-run') {
          console.error('dry run (--dry-run): nothing was sent to the model and nothing was written');
          return;
        }
        if (err instanceof engine.BacktestStop && err.kind === 'cost-cap' && llmRun) {
          throw new OperatorError(`backtest: ${llmRun.capMessage()}`, { cause: err });
        }
        if (err instanceof InputError) throw err;
        throw new OperatorError(err instanceof Error ? err.message : String(err), { cause: err });
      } finally {
        log?.close();
      }
      progress.stop();
      if (!folder) {
        // a dry run in which every decision came from the decision cache: there was no first request to stop before
        console.error('dry run (--dry-run): every decision is in the decision cache; the run would send no request');
        return;
      }
      const seconds = (performance.now() - started) / 1000;
      const { result, cacheHits } = run;
      if (replay && replayCheck) {
        const stats = replay.runStats();
        result.replayLog = {
          lines: replay.log.lines,
          decisions: new Set(replay.log.records.map((r) => `${r.pair} ${r.time}`)).size,
          corrupt: replay.log.corrupt.length,
          incomplete_last_line: replay.log.incompleteLastLine !== null,
          asked: replayCheck.asked,
          replayed: stats?.replayed ?? 0,
          missing: stats?.missing ?? 0,
          not_replayable: (stats?.noDecision ?? 0) + (stats?.invalid ?? 0),
          allow_missing: opts.allowMissing === true,
        };
      }

      writeFileAtomic(folder.file('result.json'), redactor.redact(engine.resultJson(result)));
      const candles: Record<string, readonly Candle[]> = {};
      for (const pair of plan.pairs) {
        const main = plan.runtimes.get(pair)!.cache.timeframes[0]!;
        const first = closedCount(main.candles, main.timeframeMs, result.range.from) - 1;
        const last = closedCount(main.candles, main.timeframeMs, result.range.to);
        candles[pair] = main.candles.slice(Math.max(0, first), last);
      }
      const report = redactor.redact(renderReport(result, candles));
      if (reportInside) writeFileAtomic(folder.file('report.html'), report);
      folder.commit();
      if (!reportInside) {
        mkdirSync(dirname(reportTarget), { recursive: true });
        writeFileAtomic(reportTarget, report);
      }

      printSummary(result, {
        seconds,
        cacheHits,
        out,
        reportFile: reportTarget,
        source: source.description,
        llm: llmRun?.progress(0) ?? null,
        prefetched: policy.prefetchStats?.() ?? null,
      });
      const la = result.lookahead;
      if (la && !la.passed) {
        for (const m of la.mismatches) {
          console.error(
            `look-ahead: ${m.pair} ${new Date(m.time).toISOString()}: ${m.kind} changed at ${m.path}: ${m.original} -> ${m.rerun}`,
          );
        }
        throw new OperatorError(
          `backtest: the look-ahead check failed: ${la.mismatches.length} of ${la.samples} pair-cycles changed when the ` +
            'candles after their decision time were corrupted (details above and in result.json "lookahead"); the ' +
            'policy or the data path reads data from after the decision time',
        );
      }
    } finally {
      folder?.abandon();
    }
  } finally {
    for (let c = closers.pop(); c; c = closers.pop()) c();
  }
}

/**
 * Per pair, the decision times at which the run asks the policy: every one but the last (positions are closed there
 * without a decision) at which the pair's latest candles are recorded.
 */
function askedCycles(engine: typeof Engine, plan: Engine.BacktestPlan): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const pair of plan.pairs) {
    const rt = plan.runtimes.get(pair)!;
    out.set(
      pair,
      plan.times.slice(0, -1).filter((t) => engine.latestCandleMissing(rt, t) === null),
    );
  }
  return out;
}

function printSummary(
  result: BacktestResult,
  run: {
    seconds: number;
    cacheHits: number;
    out: string;
    reportFile: string;
    source: string;
    llm: LlmProgress | null;
    prefetched: { answered: number; used: number } | null;
  },
): void {
  console.log(`data quality (${run.source}):`);
  for (const line of formatQuality(result.dataQuality.series)) console.log(`  ${line}`);
  for (const s of result.dataQuality.skipped_cycles) {
    const when =
      s.cycles === 1
        ? new Date(s.from).toISOString()
        : `${new Date(s.from).toISOString()} to ${new Date(s.to).toISOString()}`;
    console.log(
      `  skipped ${s.pair} at ${when} (${plural(s.cycles, 'decision time')}): its latest ${s.timeframe} candle is missing`,
    );
  }
  if (result.replayLog) {
    const r = result.replayLog;
    console.log(
      `replayed decision log: ${r.replayed} of ${r.asked} decisions replayed, ${r.missing} missing (hold/wait), ` +
        `${r.not_replayable} not replayable, ${r.corrupt} corrupt lines${r.incomplete_last_line ? ', a cut-off last line ignored' : ''}`,
    );
  }
  console.log('');
  const m = result.metrics;
  const p = result.period;
  console.log(
    `measured from ${new Date(p.from).toISOString()} to ${new Date(p.to).toISOString()} (${p.steps} decision times): ` +
      (p.reason === 'warmup_end' || p.reason === 'range_start'
        ? `after the indicator warm-up (${p.warmup_indicators.join(', ')})`
        : p.reason === 'first_entry'
          ? "from the policy's first entry, before the indicator warm-up ended"
          : 'the whole range (the indicator warm-up does not end within it)'),
  );
  const b = result.benchmark;
  const benchmarkRow = [
    `equal-weight buy-and-hold (${b.pairs.length} pairs)`,
    pct(b.total_return_pct),
    pct(b.max_drawdown_pct),
    pct(b.sharpe),
    pct(b.sortino),
    '-',
    '-',
    '-',
    b.final_equity.toFixed(2),
  ];
  const rows = result.comparison.map((r) => [
    r.label,
    pct(r.total_return_pct),
    pct(r.max_drawdown_pct),
    pct(r.sharpe),
    pct(r.sortino),
    String(r.trades),
    pct(r.win_rate_pct, 1),
    pct(r.profit_factor),
    r.final_equity.toFixed(2),
  ]);
  // the benchmark after the policy and the baseline, before the buy-and-hold of each pair
  rows.splice(result.comparison.filter((r) => r.kind !== 'buy_and_hold').length, 0, benchmarkRow);
  console.log(
    formatTable(
      ['run', 'return %', 'max DD %', 'Sharpe', 'Sortino', 'trades', 'win %', 'PF', 'final equity'],
      rows,
      [1, 2, 3, 4, 5, 6, 7, 8],
    ),
  );
  console.log(
    `\npolicy ${result.policy.name}: ${m.trades} trades, average ${pct(m.average_trade_pnl)} USDT, exposure ` +
      `${m.exposure_pct.toFixed(1)} %, fees ${m.fees.toFixed(2)} USDT, funding ${m.funding.toFixed(2)} USDT, ` +
      `${m.liquidations} liquidations, ${m.protective_exits} protective exits`,
  );
  console.log(
    `decisions ${m.decisions} (${m.fallbacks} fallbacks, ${m.rejections} rejected by the risk gate, ${run.cacheHits} ` +
      `from the decision cache); model tokens ${m.model_tokens_in} in / ${m.model_tokens_out} out, estimated cost ` +
      `${m.estimated_cost_usd === null ? '- (no price for the model: set llm.pricing)' : `${m.estimated_cost_usd.toFixed(4)} USD`}`,
  );
  const llm = result.llm;
  if (llm) {
    const cost = (v: number | null) => (v === null ? 'no price' : `${v.toFixed(4)} USD`);
    const kinds = Object.entries(llm.fallbacks.by_reason)
      .map(([k, v]) => `${PROBLEM_KIND_LABELS[k as ProblemKind]} ${v}`)
      .join(', ');
    const fields = Object.entries(llm.extra_fields.fields)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    console.log(
      `model ${llm.model}: ${llm.decisions} decisions in ${llm.requests} requests; tokens ${humanCount(llm.tokens.input)} ` +
        `in (${humanCount(llm.tokens.cached_input)} cached) / ${humanCount(llm.tokens.output)} out, ${cost(llm.cost_usd)} ` +
        `(entry ${cost(llm.by_kind.entry.cost_usd)}, position ${cost(llm.by_kind.position.cost_usd)}); fallbacks ` +
        `${llm.fallbacks.decisions}${kinds ? ` (${kinds})` : ''}; tool calls with extra fields dropped ` +
        `${llm.extra_fields.decisions}${fields ? ` (${fields})` : ''}`,
    );
    if (run.llm) {
      console.log(
        `this run: ${run.llm.requests} requests to the model, ${run.llm.spentUsd === null ? 'no price' : `${run.llm.spentUsd.toFixed(4)} USD`}, ` +
          `tokens ${humanCount(run.llm.tokens.input)} in / ${humanCount(run.llm.tokens.output)} out` +
          `${run.llm.scheduler.rateLimited > 0 ? `; ${run.llm.scheduler.rateLimited} answers were HTTP 429 (rate limited) and asked again` : ''}` +
          `${run.prefetched && run.prefetched.answered > 0 ? `; ${run.prefetched.answered} decisions asked ahead (--prefetch), ${run.prefetched.used} of them used` : ''}`,
      );
    }
  }
  if (result.lookahead) {
    console.log(
      `look-ahead check: ${result.lookahead.passed ? 'passed' : 'FAILED'} (${result.lookahead.samples} pair-cycles rerun ` +
        `with ${result.lookahead.corruption})`,
    );
  }
  const runs = [
    `the ${result.policy.name} run`,
    ...(result.comparison.some((r) => r.kind === 'baseline') ? ['the baseline run'] : []),
    ...(result.lookahead ? ['the look-ahead check'] : []),
  ];
  console.log(
    `${result.range.candle_steps} pair-cycles (${result.range.steps} decision times x ${result.range.pairs.length} ` +
      `pairs); the backtest took ${run.seconds.toFixed(2)} s (${runs.join(', ')})`,
  );
  const sized = (file: string) => `${file} (${fileSize(statSync(file).size)})`;
  console.log(
    `wrote ${sized(join(run.out, 'result.json'))}, ${sized(join(run.out, 'llm_decisions.jsonl'))} and ` +
      `${sized(run.reportFile)}`,
  );
}

/** A file size for people: kB below 1 MB, else MB (1 kB = 1000 bytes), one decimal under 100. */
export function fileSize(bytes: number): string {
  const [v, unit] = bytes < 1e6 ? [bytes / 1e3, 'kB'] : [bytes / 1e6, 'MB'];
  return `${v < 100 ? v.toFixed(1) : v.toFixed(0)} ${unit}`;
}
