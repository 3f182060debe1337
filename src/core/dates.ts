/**
 * Reading the times a user types: Unix ms, a UTC date (`2025-06-01`), or an ISO date-time (`2025-06-01T12:00`, UTC
 * unless it names a zone: `Z`, `+02:00`). Strict: a date that does not exist (`2025-02-30`, which `Date.parse` reads
 * as 2025-03-02) or a time out of range (`25:00`) is refused. Pure.
 */

const DATE_TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

/** Days in `month` (1-12) of `year` (proleptic Gregorian). */
function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * A date or date-time as Unix ms (see the module comment), or null when the text is not one, or names a day or time
 * that does not exist.
 */
export function parseDateTime(text: string): number | null {
  const m = DATE_TIME_RE.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', ms = '0', zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  let offset = 0;
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const [, sign, zh, zmin] = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
    if (Number(zh) > 23 || Number(zmin) > 59) return null;
    offset = (sign === '+' ? 1 : -1) * (Number(zh) * 60 + Number(zmin)) * 60_000;
  }
  const t = Date.UTC(year, month - 1, day, hour, minute, second, Number(ms.padEnd(3, '0'))) - offset;
  return t;
}

/**
 * A time option: Unix ms (10 or more digits), or a date / date-time as {@link parseDateTime} reads it. Null when the
 * text is none of these.
 */
export function parseTimeOption(text: string): number | null {
  const t = text.trim();
  if (/^\d{10,}$/.test(t)) return Number(t);
  return parseDateTime(t);
}
