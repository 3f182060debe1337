/**
 * o200k_base token counts for the context builder: the library's count (gpt-tokenizer, the reference), an exact
 * count that is several times faster on prompt text, and a cheaper lower bound.
 *
 * Why the fast count is exact. The tokenizer splits a text into pre-tokens with one regex (gpt-tokenizer's
 * `O200K_TOKEN_SPLIT_REGEX`; its alternatives are listed at {@link preTokenEnd}) and byte-pair encodes each pre-token
 * on its own: the count of a text is the sum of the counts of its pre-tokens. {@link countTokensByPiece} finds the same
 * pre-tokens and counts them without the library's per-pre-token work where the count is known:
 * - Splitting. Over ASCII text a hand-written scanner ({@link preTokenEnd}) takes the regex's decisions (no regex
 *   call, no match object); where a non-ASCII character could change a decision, that one pre-token is found with
 *   the library's regex itself. Pre-tokens follow one another without gaps (every character starts a match), so
 *   the two can take turns.
 * - Counting. One ASCII character is one token (each of the 128 is a vocabulary entry); a pre-token of ASCII digits
 *   (1 to 3 of them: `\p{N}{1,3}`) is one token (every 1-3 digit string is an entry); any other pre-token is counted
 *   by the library on its own, once per distinct text (memoised by content in {@link pieceCount}). A pre-token
 *   taken out of its text is still one pre-token: the regex has no look-behind, and its only look-ahead,
 *   `\s+(?!\S)`, can only make the isolated piece match whole.
 * The tests compare the scanner's pre-tokens with the regex's, and the counts with the library's, on random and
 * real text.
 */
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { O200K_TOKEN_SPLIT_REGEX } from 'gpt-tokenizer/encodingParams/constants';

/**
 * Special-token text such as "<|endoftext|>" inside a reason is plain text to the API; count it as such (the
 * library's default would throw on it).
 */
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** Tokens of `text` with the o200k_base encoding, special-token strings counted as plain text (the library's count). */
export function countTextTokens(text: string): number {
  return countTokens(text, PLAIN_TEXT);
}

// ---------------------------------------------------------------------------------------------
// Pre-tokens
// ---------------------------------------------------------------------------------------------

/** The library's pre-token regex, sticky: `test` at `lastIndex` matches the pre-token that starts there. */
const PRE_TOKEN = new RegExp(O200K_TOKEN_SPLIT_REGEX.source, 'uy');

/** Scanner classes of ASCII characters (`\p{L}` and `\p{N}` are [A-Za-z] and [0-9] in ASCII; `\s` is BLANK + BREAK). */
const NON_ASCII = 0;
const UPPER = 1;
const LOWER = 2;
const NUMBER = 3;
/** tab, vertical tab, form feed, space */
const BLANK = 4;
/** \r, \n */
const BREAK = 5;
/** everything else: punctuation, symbols, control characters (`[^\s\p{L}\p{N}]`) */
const SYMBOL = 6;
/** past the end of the text */
const END = 7;

const SCAN_CLASS = (() => {
  const table = new Uint8Array(128).fill(SYMBOL);
  for (let c = 65; c <= 90; c++) table[c] = UPPER;
  for (let c = 97; c <= 122; c++) table[c] = LOWER;
  for (let c = 48; c <= 57; c++) table[c] = NUMBER;
  for (const c of [9, 11, 12, 32]) table[c] = BLANK;
  table[10] = BREAK;
  table[13] = BREAK;
  return table;
})();

/** The UTF-16 code unit at `k`, -1 past the end (`charCodeAt` past the end is slow in optimised code). */
function codeAt(text: string, k: number): number {
  return k < text.length ? text.charCodeAt(k) : -1;
}

function scanClass(text: string, k: number): number {
  if (k >= text.length) return END;
  const code = text.charCodeAt(k);
  return code < 128 ? SCAN_CLASS[code]! : NON_ASCII;
}

/** The first index at or after `k` whose class is not `cls` (NON_ASCII and END are never skipped). */
function skipClass(text: string, k: number, cls: number): number {
  while (scanClass(text, k) === cls) k++;
  return k;
}

function isLetterClass(cls: number): boolean {
  return cls === UPPER || cls === LOWER;
}

/** True for the characters alternative 4 takes after its symbols: `\r`, `\n` and `/`. */
function isBreakOrSlash(code: number): boolean {
  return code === 10 || code === 13 || code === 47;
}

/** Length of a contraction (`'s`, `'d`, `'m`, `'t`, `'ll`, `'ve`, `'re`, any case) at `k`, else 0. */
function contractionLength(text: string, k: number): number {
  if (codeAt(text, k) !== 39) return 0;
  const a = codeAt(text, k + 1) | 32; // the lower case of an ASCII letter (-1 past the end stays -1)
  if (a === 115 || a === 100 || a === 109 || a === 116) return 2;
  const b = codeAt(text, k + 2) | 32;
  return (a === 108 && b === 108) || (a === 118 && b === 101) || (a === 114 && b === 101) ? 3 : 0;
}

/**
 * The end of the o200k pre-token that starts at `start` (`start` < text.length), or -1 when a non-ASCII character
 * takes part in the decision. The regex's alternatives, tried in order at `start`:
 * 1, 2. `[^\r\n\p{L}\p{N}]?[\p{Lu}...]*[\p{Ll}...]+('s...)?` and `[^\r\n\p{L}\p{N}]?[\p{Lu}...]+[\p{Ll}...]*('s...)?`:
 *    letters (a run of upper case, then a run of lower case), after at most one leading character that is not a
 *    letter, a digit or a line break, then an optional contraction;
 * 3. `\p{N}{1,3}`: 1 to 3 digits;
 * 4. ` ?[^\s\p{L}\p{N}]+[\r\n/]*`: an optional space, a run of symbols, then any `\r`, `\n` and `/`;
 * 5. `\s*[\r\n]+`: whitespace up to and including its last line break;
 * 6. `\s+(?!\S)`: whitespace without a line break, all of it at the end of the text, else all but its last character
 *    (which may then lead the next pre-token);
 * 7. `\s+`: a single whitespace character before a non-space.
 * @internal exported for the tests
 */
export function preTokenEnd(text: string, start: number): number {
  const c = scanClass(text, start);
  const next = scanClass(text, start + 1);
  if (c === NON_ASCII || next === NON_ASCII) return -1;
  if (isLetterClass(c) || ((c === BLANK || c === SYMBOL) && isLetterClass(next))) {
    const lettersStart = isLetterClass(c) ? start : start + 1;
    const lower = skipClass(text, skipClass(text, lettersStart, UPPER), LOWER);
    if (scanClass(text, lower) === NON_ASCII) return -1; // it may be a letter or a mark
    return lower + contractionLength(text, lower);
  }
  if (c === NUMBER) {
    let end = start + 1;
    while (end < start + 3 && scanClass(text, end) === NUMBER) end++;
    return end < start + 3 && scanClass(text, end) === NON_ASCII ? -1 : end; // it may be a digit
  }
  if (c === SYMBOL || (text.charCodeAt(start) === 32 && next === SYMBOL)) {
    const symbols = skipClass(text, start + 1, SYMBOL);
    if (scanClass(text, symbols) === NON_ASCII) return -1; // it may be a symbol
    let end = symbols;
    while (isBreakOrSlash(codeAt(text, end))) end++;
    return end;
  }
  // whitespace (c is BLANK or BREAK)
  let end = start;
  let lastBreak = -1;
  for (let cls = c; cls === BLANK || cls === BREAK; cls = scanClass(text, end)) {
    if (cls === BREAK) lastBreak = end;
    end++;
  }
  if (scanClass(text, end) === NON_ASCII) return -1; // it may be whitespace
  if (lastBreak >= 0) return lastBreak + 1;
  if (end === text.length || end - start === 1) return end;
  return end - 1;
}

// ---------------------------------------------------------------------------------------------
// The exact count
// ---------------------------------------------------------------------------------------------

/**
 * Slots of the pre-token memo (a power of 2); it starts over when half of them are taken, so it holds at most 16384
 * pre-tokens of at most {@link MAX_MEMO_PIECE} characters.
 */
const PIECE_SLOTS = 1 << 15;
/** Longer pre-tokens (long words, symbol or whitespace runs) are counted without being memoised. */
const MAX_MEMO_PIECE = 64;
/** The memo: open addressing over the pre-token texts, with their counts. */
const pieceKeys: (string | undefined)[] = new Array<string | undefined>(PIECE_SLOTS).fill(undefined);
const pieceCounts = new Int32Array(PIECE_SLOTS);
let pieceEntries = 0;

function isAsciiDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** True when `key` is `text[start, start + key.length)`. */
function sameText(key: string, text: string, start: number): boolean {
  for (let k = 0; k < key.length; k++) if (key.charCodeAt(k) !== text.charCodeAt(start + k)) return false;
  return true;
}

/**
 * Tokens of the pre-token `text[start, end)`: see the module comment. The memo is looked up by the characters in
 * place (an FNV-1a hash, then a comparison), so a pre-token seen before costs no allocation.
 */
function pieceCount(text: string, start: number, end: number): number {
  const length = end - start;
  const first = text.charCodeAt(start);
  if (length === 1 && first < 128) return 1;
  if (isAsciiDigit(first) && length <= 3) {
    let k = start + 1;
    while (k < end && isAsciiDigit(text.charCodeAt(k))) k++;
    if (k === end) return 1;
  }
  if (length > MAX_MEMO_PIECE) return countTextTokens(text.slice(start, end));
  let hash = 0x811c9dc5;
  for (let k = start; k < end; k++) hash = Math.imul(hash ^ text.charCodeAt(k), 0x01000193);
  const mask = PIECE_SLOTS - 1;
  let slot = hash & mask;
  for (let key = pieceKeys[slot]; key !== undefined; key = pieceKeys[slot]) {
    if (key.length === length && sameText(key, text, start)) return pieceCounts[slot]!;
    slot = (slot + 1) & mask;
  }
  const piece = text.slice(start, end);
  const count = countTextTokens(piece);
  if (pieceEntries >= PIECE_SLOTS / 2) {
    pieceKeys.fill(undefined);
    pieceEntries = 0;
    slot = hash & mask;
  }
  pieceKeys[slot] = piece;
  pieceCounts[slot] = count;
  pieceEntries++;
  return count;
}

/**
 * Exactly {@link countTextTokens}`(text)`, several times faster on prompt text (numbers, CSV, repeated words): the
 * text is split into pre-tokens and each is counted as the module comment says. Allocates nothing for text made of
 * pre-tokens it has seen before.
 */
export function countTokensByPiece(text: string): number {
  let total = 0;
  for (let start = 0; start < text.length;) {
    let end = preTokenEnd(text, start);
    if (end < 0) {
      PRE_TOKEN.lastIndex = start;
      // Every character starts a match, so this always matches; if it ever did not, count the library's way.
      if (!PRE_TOKEN.test(text)) return countTextTokens(text);
      end = PRE_TOKEN.lastIndex;
    }
    total += pieceCount(text, start, end);
    start = end;
  }
  return total;
}

const TEXT_MEMO_LIMIT = 64;
const textTokens = new Map<string, number>();

/** {@link countTokensByPiece} memoised by text, for the few texts that repeat every cycle (system prompts, notes). */
export function memoCount(text: string): number {
  let n = textTokens.get(text);
  if (n === undefined) {
    if (textTokens.size >= TEXT_MEMO_LIMIT) textTokens.clear();
    n = countTokensByPiece(text);
    textTokens.set(text, n);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// A cheap lower bound on the token count
// ---------------------------------------------------------------------------------------------

const DIGIT = 0;
const LETTER = 1;
const SPACE = 2;
const PUNCT = 3;
/** any non-ASCII character: it may be a letter, a digit, punctuation or a space to the tokenizer */
const OTHER = 4;

/** The class of each ASCII code (non-ASCII is OTHER). */
const ASCII_CLASS = (() => {
  const table = new Uint8Array(128).fill(PUNCT);
  for (let c = 48; c <= 57; c++) table[c] = DIGIT;
  for (let c = 65; c <= 90; c++) table[c] = LETTER;
  for (let c = 97; c <= 122; c++) table[c] = LETTER;
  for (const c of [9, 10, 11, 12, 13, 32]) table[c] = SPACE;
  return table;
})();

function charClass(code: number): number {
  return code < 128 ? ASCII_CLASS[code]! : OTHER;
}

/**
 * A lower bound on `countTextTokens(text)` in one pass over the characters: about half the cost of
 * {@link countTokensByPiece}, many times cheaper than the library.
 * Every o200k pre-token yields at least one token, so counting pre-tokens that must exist is a lower bound. Over
 * maximal runs of ASCII characters of one class (the pre-token regex is in gpt-tokenizer's
 * encodingParams/constants.js):
 * - a run of L digits is exactly ceil(L / 3) pre-tokens (`\p{N}{1,3}` is the only alternative that takes digits);
 * - a run of letters starts at least one pre-token, unless an apostrophe precedes it (a contraction such as "'s"
 *   joins the previous word);
 * - a run of punctuation starts at least one pre-token when it has 2+ characters or is not followed by a letter (a
 *   single one before a letter may be that word's prefix); right after a line break its leading "/" characters do
 *   not count (the `[\r\n/]*` tail of a previous punctuation pre-token can take them);
 * - a run of whitespace holding a line break, right after a digit or a letter (or at the start), starts one
 *   (`\s*[\r\n]+`); other whitespace counts 0 (it may be a word's prefix);
 * - a run next to a non-ASCII character counts 0 (that character could join it).
 * The tests check the bound against the tokenizer on random and real text.
 */
export function tokenLowerBound(text: string): number {
  let bound = 0;
  const n = text.length;
  let i = 0;
  let prevClass = -1;
  let prevCode = -1;
  while (i < n) {
    const code = text.charCodeAt(i);
    const cls = charClass(code);
    let j = i + 1;
    let leadingSlashes = code === 47 ? 1 : 0;
    let lineBreak = code === 10 || code === 13;
    let c = -1;
    while (j < n) {
      c = text.charCodeAt(j);
      if (charClass(c) !== cls) break;
      if (c === 47 && leadingSlashes === j - i) leadingSlashes++;
      if (c === 10 || c === 13) lineBreak = true;
      j++;
    }
    const nextClass = j < n ? charClass(c) : -1;
    if (prevClass !== OTHER && nextClass !== OTHER) {
      const length = j - i;
      if (cls === DIGIT) bound += Math.ceil(length / 3);
      else if (cls === LETTER) {
        if (prevCode !== 39) bound += 1;
      } else if (cls === PUNCT) {
        const own = prevCode === 10 || prevCode === 13 ? length - leadingSlashes : length;
        if (own >= 2 || (own === 1 && nextClass !== LETTER)) bound += 1;
      } else if (cls === SPACE && lineBreak && (prevClass === DIGIT || prevClass === LETTER || prevClass === -1)) {
        bound += 1;
      }
    }
    prevClass = cls;
    prevCode = text.charCodeAt(j - 1);
    i = j;
  }
  return bound;
}
