/**
 * Reading a chat-completion message that did not (only) use the native tool-calling interface.
 *
 * - Reasoning models put their thinking in a `reasoning_content` or `reasoning` field, or in `<think>...</think>`
 *   blocks inside the content (Qwen3 and DeepSeek-R1 chat templates; some templates drop the opening tag, and an
 *   answer cut off at the token limit has no closing tag). `splitThinking` separates thinking from the answer.
 * - Servers without native tool calling put the call in the text: a bare JSON object `{"name": ..., "arguments": ...}`,
 *   the same inside a ```json code fence, `<tool_call>{...}</tool_call>` tags (Hermes / Qwen templates), an array of
 *   calls (Mistral's `[TOOL_CALLS] [...]`), or OpenAI's own `{"tool_calls": [...]}` shape.
 *   `extractTextToolCalls` finds them.
 */

/** A call found in the message text; `arguments` as written (object, or string for validation to decode). */
export interface TextToolCall {
  name: string;
  arguments: unknown;
}

const THINK_BLOCK_RE = /<(think|thinking|reasoning)>([\s\S]*?)<\/\1>/gi;
const THINK_CLOSE_RE = /<\/(?:think|thinking|reasoning)>/gi;
const THINK_OPEN_RE = /<(?:think|thinking|reasoning)>/i;

/**
 * Split a message into its answer and its thinking.
 * `reasoningFields` are the message's `reasoning_content` / `reasoning` values (non-strings are ignored; a value equal
 * to one already kept is not repeated). Thinking is joined with blank lines; null when there is none.
 * Edge cases: a closing tag without an opening one makes everything before it thinking; an opening tag without a
 * closing one makes everything after it thinking (the answer was cut off while thinking).
 */
export function splitThinking(
  content: string | null,
  reasoningFields: readonly unknown[],
): { answer: string; thinking: string | null } {
  const parts: string[] = [];
  const keep = (text: string) => {
    const t = text.trim();
    if (t !== '' && !parts.includes(t)) parts.push(t);
  };
  for (const field of reasoningFields) if (typeof field === 'string') keep(field);

  let answer = content ?? '';
  answer = answer.replace(THINK_BLOCK_RE, (_m, _tag: string, body: string) => {
    keep(body);
    return '';
  });
  // a closing tag left over: the opening tag was part of the prompt template, so the text before it is thinking
  let lastClose = -1;
  let lastCloseLength = 0;
  for (const m of answer.matchAll(THINK_CLOSE_RE)) {
    lastClose = m.index;
    lastCloseLength = m[0].length;
  }
  if (lastClose >= 0) {
    keep(answer.slice(0, lastClose).replace(THINK_CLOSE_RE, ''));
    answer = answer.slice(lastClose + lastCloseLength);
  }
  const open = THINK_OPEN_RE.exec(answer);
  if (open) {
    keep(answer.slice(open.index + open[0].length));
    answer = answer.slice(0, open.index);
  }
  return { answer: answer.trim(), thinking: parts.length > 0 ? parts.join('\n\n') : null };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const ARGUMENT_KEYS = ['arguments', 'parameters', 'args', 'input'] as const;
const NAME_KEYS = ['name', 'function', 'tool', 'tool_name'] as const;

/** The tool calls a parsed JSON value describes (empty when it describes none). */
function callsFromValue(value: unknown, knownTools: ReadonlySet<string>): TextToolCall[] {
  if (Array.isArray(value)) return value.flatMap((v) => callsFromValue(v, knownTools));
  if (!isRecord(value)) return [];
  if (Array.isArray(value.tool_calls)) return callsFromValue(value.tool_calls, knownTools);
  // OpenAI's shape: {"type": "function", "function": {"name": ..., "arguments": ...}}
  if (isRecord(value.function)) return callsFromValue(value.function, knownTools);
  for (const nameKey of NAME_KEYS) {
    const name = value[nameKey];
    if (typeof name !== 'string' || name === '') continue;
    for (const argKey of ARGUMENT_KEYS) {
      if (argKey in value) return [{ name, arguments: value[argKey] }];
    }
    // flat form {"name": "signal_wait", "pair": ..., ...}: only for a known tool name, so that unrelated JSON is not
    // taken for a call
    if (knownTools.has(name)) {
      const args: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) if (k !== nameKey) args[k] = v;
      return [{ name, arguments: args }];
    }
  }
  return [];
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/**
 * The end index (exclusive) of the balanced JSON object or array starting at `start`, honouring strings and escapes;
 * -1 when it is not closed.
 */
function balancedEnd(text: string, start: number): number {
  const stack: string[] = [];
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') stack.push('}');
    else if (c === '[') stack.push(']');
    else if (c === '}' || c === ']') {
      if (stack.pop() !== c) return -1;
      if (stack.length === 0) return i + 1;
    }
  }
  return -1;
}

/** Every top-level JSON object or array embedded in `text` that parses and describes tool calls, in order. */
function scanJson(text: string, knownTools: ReadonlySet<string>): TextToolCall[] {
  const calls: TextToolCall[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c !== '{' && c !== '[') {
      i++;
      continue;
    }
    const end = balancedEnd(text, i);
    if (end > 0) {
      const parsed = parseJson(text.slice(i, end));
      const found = parsed.ok ? callsFromValue(parsed.value, knownTools) : [];
      if (found.length > 0) {
        calls.push(...found);
        i = end;
        continue;
      }
    }
    i++;
  }
  return calls;
}

const TOOL_CALL_TAG_RE = /<tool_call>([\s\S]*?)(?:<\/tool_call>|$)/gi;
const FENCE_RE = /```[A-Za-z0-9_-]*[ \t]*\r?\n([\s\S]*?)```/g;

/**
 * The tool calls written in a message's answer text (thinking already removed), in order. Looks, in this order of
 * preference, at `<tool_call>` tags (an unclosed last tag runs to the end), code fences, then any JSON embedded in
 * the text; the first kind that yields a call wins. `knownTools` are the tool names: a flat object such as
 * `{"name": "signal_wait", "pair": ...}` counts as a call only when its name is one of them. Empty when the text
 * holds no call.
 */
export function extractTextToolCalls(answer: string, knownTools: ReadonlySet<string>): TextToolCall[] {
  const tagged = [...answer.matchAll(TOOL_CALL_TAG_RE)].flatMap((m) => scanJson(m[1] ?? '', knownTools));
  if (tagged.length > 0) return tagged;
  const fenced = [...answer.matchAll(FENCE_RE)].flatMap((m) => scanJson(m[1] ?? '', knownTools));
  if (fenced.length > 0) return fenced;
  return scanJson(answer, knownTools);
}
