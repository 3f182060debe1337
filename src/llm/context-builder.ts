/**
 * The context builder: turns a cycle's ContextRequest (snapshot, account, position, recent decisions) plus the
 * learning context into the DecisionContext every provider consumes: a system prompt, a user message with the
 * market context, the allowed tools, and the exact token count of what is sent.
 *
 * Token budget. `context.max_context_tokens` (flat) and `context.max_position_context_tokens` (in a position) bound
 * system + user + tools, counted with the o200k_base tokenizer
 * (gpt-tokenizer): tokens(system text) + tokens(user text) + tokens(JSON.stringify(tools)). The user message is made of
 * sections with a value order. Price, indicators, account and position are required; the others are kept most
 * valuable first while they fit: warnings, funding, the main timeframe's series, recent trades, the performance
 * summary, patterns, recent decisions (flat only), the informative timeframes' series (the last configured first:
 * 1d, 4h, then 1h), raw candles. A section that does not fit is dropped and a smaller, less valuable one may still go
 * in; a final section names what was left out, and its own tokens count against the budget. If the required sections
 * alone exceed the budget, the context is still returned, with every droppable section dropped, and
 * `layout.overBudget` says so.
 *
 * Counting cost. The system prompt and the tools are tokenized once per distinct text (memoised). Sections are counted
 * with {@link countTokensByPiece} (exact, several times faster than the library on prompt text; see tokens.ts), each at
 * most once, and a droppable section only when it might fit in the room left: a table (series, raw candles) is not even
 * rendered when its size before rendering ({@link tableMinTokens}) exceeds the room, and a text that looks too long for
 * the room is first checked with a cheap lower bound ({@link tokenLowerBound}). The sum of the section counts is
 * EXACTLY the count of the joined message, not an estimate: o200k splits text into pre-tokens with a regex before BPE,
 * BPE never merges across pre-tokens, and a boundary "...\n" + "## ..." is always a pre-token boundary (the pre-token
 * holding the final newline can only extend over further `\r`, `\n` or `/` characters, and `#` is none of them; the
 * regex has no look-behind). Every section ends with "\n" and starts with "## " (checked by `assertSectionShape`), so
 * no final recount is needed. The tests compare the result with an independent count of the whole strings.
 */
import type { Config } from '../core/config';
import type { DecisionContext, ChatMessage } from '../core/context-types';
import type { ContextRequest } from '../core/cycle';
import { allowedTools, toolDefinitions, type OpenAIToolDefinition } from '../core/tools';
import { entrySystemPrompt, positionSystemPrompt } from './prompts';
import { countTextTokens, countTokensByPiece, memoCount, tokenLowerBound } from './tokens';
import {
  assertSectionShape,
  CANDLE_COLUMNS,
  candleRows,
  priceDecimals,
  renderAccount,
  renderCandles,
  renderFunding,
  renderHeader,
  renderIndicators,
  renderOmitted,
  renderPatterns,
  renderPosition,
  renderRecentDecisions,
  renderRecentTrades,
  renderSeries,
  renderSummary,
  renderWarnings,
  seriesColumns,
  seriesRows,
  tableMinTokens,
} from './render';

export type { LearnedTrade } from './render';
// the learning context is built without the tokenizer: the journal and the backtester's light path import it alone
import type { LearningContext } from './learning-context';
export { NO_LEARNING, buildLearningContext, type LearningContext } from './learning-context';

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/** The cycle's request plus the learning context the caller read from the journal. */
export interface ContextBuildRequest extends ContextRequest {
  learning: LearningContext;
}

/** The configuration the builder reads; a whole `Config` fits. Treat as immutable. */
export type ContextBuilderConfig = Pick<Config, 'context' | 'experience' | 'risk' | 'timeframes'>;

// ---------------------------------------------------------------------------------------------
// Token counting
// ---------------------------------------------------------------------------------------------

/**
 * The token count the builder records for a prompt: each message's content plus the tools as JSON
 * (`JSON.stringify(tools)`), o200k_base, counted by the library (an independent check of the builder's per-section
 * sum). Chat-format overhead the API adds (a few tokens per message) is not included.
 */
export function countPromptTokens(messages: readonly ChatMessage[], tools: readonly OpenAIToolDefinition[]): number {
  let total = countTextTokens(JSON.stringify(tools));
  for (const m of messages) total += countTextTokens(m.content);
  return total;
}

interface ToolSet {
  tools: OpenAIToolDefinition[];
  tokens: number;
}
const toolSets = new Map<boolean, ToolSet>();

/** The allowed tools for the state; their definitions are deeply frozen constants, so their JSON is computed once. */
function toolSetFor(hasPosition: boolean): ToolSet {
  let set = toolSets.get(hasPosition);
  if (!set) {
    const tools = toolDefinitions(allowedTools(hasPosition));
    set = { tools, tokens: countTextTokens(JSON.stringify(tools)) };
    toolSets.set(hasPosition, set);
  }
  return set;
}

// ---------------------------------------------------------------------------------------------
// Sections and the budget
// ---------------------------------------------------------------------------------------------

/** One section of the user message, in message order. */
export interface SectionReport {
  /** stable id: header, indicators, account, position, warnings, series:<tf>, candles, funding, decisions, trades, summary, patterns */
  id: string;
  /** how the omitted-note names it */
  label: string;
  /** o200k tokens; null when it was not tokenized because a lower bound already exceeded the room left */
  tokens: number | null;
  /** never dropped (price, indicators, account, position) */
  required: boolean;
  included: boolean;
}

/** How the prompt was assembled: what it holds, what was dropped, and the token figures. */
export interface ContextLayout {
  budget: number;
  systemTokens: number;
  toolsTokens: number;
  /** tokens of the user message as sent (included sections and the omitted-note) */
  userTokens: number;
  /** system + user + tools, as sent; equals DecisionContext.tokens */
  totalTokens: number;
  sections: SectionReport[];
  /** labels of the dropped sections, in message order */
  dropped: string[];
  /** true when the required sections alone do not fit the budget (everything droppable was dropped) */
  overBudget: boolean;
}

interface Section {
  id: string;
  label: string;
  /** null until rendered: a table section is rendered only when its size before rendering may fit (see `render`) */
  text: string | null;
  /** renders `text` on first use; null for a section rendered when it was added */
  render: (() => string | null) | null;
  /** a lower bound on its tokens known before rendering it (0 when none is known) */
  minTokens: number;
  /** null until tokenized */
  tokens: number | null;
  /** {@link tokenLowerBound} of text; null until computed */
  lowerBound: number | null;
  /** value rank (see DROP_RANK; lower = less valuable); null = required */
  dropRank: number | null;
  included: boolean;
}

/** Value order of the droppable sections: the lowest rank is the least valuable. */
const DROP_RANK = {
  candles: 1,
  /** the informative timeframes' series take ranks 2, 3, ... in timeframe order */
  informativeSeries: 2,
  decisions: 20,
  patterns: 21,
  summary: 22,
  trades: 23,
  mainSeries: 24,
  funding: 25,
  warnings: 26,
} as const;

function newSection(
  id: string,
  label: string,
  dropRank: number | null,
  text: string | null,
  render: (() => string | null) | null,
  minTokens: number,
): Section {
  return { id, label, text, render, minTokens, tokens: null, lowerBound: null, dropRank, included: true };
}

/** The section's text, rendered now if it was not yet. */
function textOf(s: Section): string {
  if (s.text === null) {
    const text = s.render?.() ?? null;
    if (text === null) throw new Error(`prompt section "${s.id}" has rows but its renderer returned nothing`);
    assertSectionShape(s.id, text);
    s.text = text;
  }
  return s.text;
}

function tokensOf(s: Section): number {
  if (s.tokens === null) s.tokens = countTokensByPiece(textOf(s));
  return s.tokens;
}

/**
 * Characters per token above which a text is unlikely to fit its room: prompt text runs at about 2.5 (tables) to 4
 * (prose) characters per o200k token.
 */
const LIKELY_CHARS_PER_TOKEN = 4;

/**
 * True when the section is at most `room` tokens. Cheapest test first: its size before rendering; then, for a text
 * that looks too long for the room, the lower bound (less than half the cost of the exact count, and enough to
 * reject it); the exact count last. A text that looks like it fits is counted exactly right away: its count is
 * needed anyway when it goes in.
 */
function fitsIn(s: Section, room: number): boolean {
  if (s.tokens !== null) return s.tokens <= room;
  if (s.minTokens > room) return false;
  const text = textOf(s);
  if (text.length > LIKELY_CHARS_PER_TOKEN * room) {
    if (s.lowerBound === null) s.lowerBound = tokenLowerBound(text);
    if (s.lowerBound > room) return false;
  }
  return tokensOf(s) <= room;
}

/**
 * Decides which droppable sections go in, within `budget` (tokens of the user message), and returns the omitted-note.
 * Greedy by value: the most valuable droppable section first, each included when it fits in what is left after the
 * required sections, the sections already included and a reserve for the worst-case omitted-note (every droppable
 * label). Then, with the real note, the least valuable included sections are dropped while over budget, and skipped
 * sections are put back, most valuable first, while they fit. A section is only rendered (table sections) and
 * tokenized when its lower bounds fit.
 */
function fitBudget(sections: Section[], budget: number): { text: string; tokens: number } | null {
  const droppable = sections.filter((s) => s.dropRank !== null).sort((a, b) => b.dropRank! - a.dropRank!);
  const noteFor = (): { text: string; tokens: number } | null => {
    const labels = sections.filter((s) => !s.included).map((s) => s.label);
    if (labels.length === 0) return null;
    const text = renderOmitted(labels);
    return { text, tokens: memoCount(text) };
  };
  let used = 0;
  for (const s of sections) {
    s.included = s.dropRank === null;
    if (s.included) used += tokensOf(s);
  }
  if (droppable.length === 0) return null;
  const reserve = memoCount(renderOmitted(sections.filter((s) => s.dropRank !== null).map((s) => s.label)));
  for (const s of droppable) {
    if (!fitsIn(s, budget - used - reserve)) continue;
    s.included = true;
    used += tokensOf(s);
  }
  let note = noteFor();
  // The real note is normally shorter than the reserve; if not, give up the least valuable included sections.
  for (let k = droppable.length - 1; k >= 0 && used + (note?.tokens ?? 0) > budget; k--) {
    const s = droppable[k]!;
    if (!s.included) continue;
    s.included = false;
    used -= tokensOf(s);
    note = noteFor();
  }
  for (const s of droppable) {
    if (s.included) continue;
    if (!fitsIn(s, budget - used)) continue;
    s.included = true;
    const withIt = noteFor();
    if (used + tokensOf(s) + (withIt?.tokens ?? 0) <= budget) {
      used += tokensOf(s);
      note = withIt;
    } else {
      s.included = false;
    }
  }
  return note;
}

/**
 * Builds the DecisionContext for one pair at one candle close, within `config.context.max_context_tokens` (see the
 * module comment for the budget rules). Returns the layout too (section sizes, what was dropped).
 *
 * Timeframes: the snapshot's main timeframe (which must equal `config.timeframes.main`), then
 * `config.timeframes.informative` when `context.include_multi_timeframe_data` is true; one indicator row each
 * (`n/a` when the snapshot has no closed candle of it yet). Series tails show at most
 * `context.indicator_history_points` points, raw candles at most `context.raw_kline_history_points` (main timeframe
 * only); 0 turns a section off. Recent trades: the last `experience.max_recent_trades_context`; decisions: the last
 * `experience.max_recent_decisions_context` (since entry when in a position).
 * @throws Error when the snapshot's main timeframe is not the configured one.
 */
export function buildDecisionContextWithLayout(
  req: ContextBuildRequest,
  config: ContextBuilderConfig,
): { context: DecisionContext; layout: ContextLayout } {
  const { snapshot, account, position, recentDecisions, learning } = req;
  const { context: ctxConfig, experience, risk } = config;
  const main = snapshot.mainTimeframe;
  if (main !== config.timeframes.main) {
    throw new Error(
      `${snapshot.pair}: the snapshot's main timeframe is ${main} but config timeframes.main is ${config.timeframes.main}; ` +
        'build the snapshot with the configured main timeframe',
    );
  }
  const informative = ctxConfig.include_multi_timeframe_data
    ? config.timeframes.informative.filter((tf) => tf !== main)
    : [];
  const decimals = priceDecimals(snapshot.price);
  const hasPosition = position !== null;
  const sections: Section[] = [];
  const add = (id: string, label: string, text: string | null, dropRank: number | null) => {
    if (text === null) return;
    assertSectionShape(id, text);
    sections.push(newSection(id, label, dropRank, text, null, 0));
  };
  /** A droppable table of `rows` rows of `columns` cells, rendered only if its size before rendering may fit. */
  const addTable = (
    id: string,
    label: string,
    rows: number,
    columns: number,
    render: () => string | null,
    dropRank: number,
  ) => {
    if (rows > 0) sections.push(newSection(id, label, dropRank, null, render, tableMinTokens(rows, columns)));
  };

  add('header', 'price', renderHeader(snapshot, decimals), null);
  add('indicators', 'indicators', renderIndicators(snapshot, [main, ...informative], decimals), null);
  add('account', 'account', renderAccount(account, risk), null);
  if (position) {
    add(
      'position',
      'position',
      renderPosition(position, snapshot, recentDecisions, risk, experience.max_recent_decisions_context, decimals),
      null,
    );
    add('warnings', 'decision-quality warnings', renderWarnings(learning.warnings), DROP_RANK.warnings);
  }
  const points = ctxConfig.indicator_history_points;
  const mainSnap = snapshot.timeframes[main];
  if (mainSnap) {
    addTable(
      `series:${main}`,
      `${main} series`,
      seriesRows(mainSnap, points),
      seriesColumns(true),
      () => renderSeries(mainSnap, points, decimals, true),
      DROP_RANK.mainSeries,
    );
  }
  informative.forEach((tf, k) => {
    const snap = snapshot.timeframes[tf];
    if (snap) {
      addTable(
        `series:${tf}`,
        `${tf} series`,
        seriesRows(snap, points),
        seriesColumns(false),
        () => renderSeries(snap, points, decimals, false),
        DROP_RANK.informativeSeries + k,
      );
    }
  });
  if (mainSnap) {
    const count = ctxConfig.raw_kline_history_points;
    addTable(
      'candles',
      `raw ${main} candles`,
      candleRows(mainSnap, count),
      CANDLE_COLUMNS,
      () => renderCandles(mainSnap, count, decimals),
      DROP_RANK.candles,
    );
  }
  add('funding', 'funding', renderFunding(snapshot.funding), DROP_RANK.funding);
  if (!position) {
    add(
      'decisions',
      'your recent decisions',
      renderRecentDecisions(recentDecisions, experience.max_recent_decisions_context),
      DROP_RANK.decisions,
    );
  }
  if (experience.max_recent_trades_context > 0) {
    const trades = learning.recentTrades.slice(-experience.max_recent_trades_context);
    add('trades', 'your recent closed trades', renderRecentTrades(snapshot.pair, trades), DROP_RANK.trades);
  }
  add('summary', 'performance summary', renderSummary(learning.summary), DROP_RANK.summary);
  add('patterns', 'patterns', renderPatterns(learning.patterns), DROP_RANK.patterns);

  const system = hasPosition ? positionSystemPrompt(risk, main) : entrySystemPrompt(risk, main);
  const systemTokens = memoCount(system);
  const toolSet = toolSetFor(hasPosition);
  const budget = req.position ? ctxConfig.max_position_context_tokens : ctxConfig.max_context_tokens;
  const note = fitBudget(sections, budget - systemTokens - toolSet.tokens);

  let user = '';
  let userTokens = 0;
  for (const s of sections) {
    if (!s.included) continue;
    user += textOf(s);
    userTokens += tokensOf(s);
  }
  if (note) {
    assertSectionShape('omitted', note.text);
    user += note.text;
    userTokens += note.tokens;
  }
  const totalTokens = systemTokens + toolSet.tokens + userTokens;

  const messages: ChatMessage[] = [
    { role: 'system', content: system },
    { role: 'user', content: user },
  ];
  const context: DecisionContext = {
    pair: snapshot.pair,
    asOf: snapshot.asOf,
    hasPosition,
    allowedTools: allowedTools(hasPosition),
    messages,
    tools: toolSet.tools,
    tokens: totalTokens,
    snapshot,
    position,
  };
  const layout: ContextLayout = {
    budget,
    systemTokens,
    toolsTokens: toolSet.tokens,
    userTokens,
    totalTokens,
    sections: sections.map((s) => ({
      id: s.id,
      label: s.label,
      tokens: s.tokens,
      required: s.dropRank === null,
      included: s.included,
    })),
    dropped: sections.filter((s) => !s.included).map((s) => s.label),
    overBudget: totalTokens > budget,
  };
  return { context, layout };
}

/** {@link buildDecisionContextWithLayout} without the layout: the DecisionContext to pass to `decide`. */
export function buildDecisionContext(req: ContextBuildRequest, config: ContextBuilderConfig): DecisionContext {
  return buildDecisionContextWithLayout(req, config).context;
}
