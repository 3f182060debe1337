/**
 * Whether an OpenAI-compatible endpoint is a local server (which may be used without an API key) or a remote API
 * (which needs one: without it the request would go out unauthenticated and be refused, or worse, billed to nobody
 * knows whom through a proxy).
 *
 * Local: `localhost` and `*.localhost`; loopback, private, link-local and unspecified addresses (127/8, 10/8,
 * 172.16/12, 192.168/16, 169.254/16, 0.0.0.0, ::1, fc00::/7, fe80::/10); a single-label host name (a Docker Compose
 * service such as `http://vllm:8000/v1`); names under `.local`, `.internal`, `.lan` or `.home.arpa`. Everything else
 * is remote.
 */
import { isIP } from 'node:net';

const LOCAL_SUFFIXES = ['.localhost', '.local', '.internal', '.lan', '.home.arpa'];

function isLocalIPv4(host: string): boolean {
  const [a, b] = host.split('.').map(Number) as [number, number];
  return (
    a === 127 ||
    a === 10 ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 169 && b === 254) ||
    host === '0.0.0.0'
  );
}

function isLocalIPv6(host: string): boolean {
  const h = host.toLowerCase();
  if (h === '::1' || h === '::') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (mapped) return isLocalIPv4(mapped[1]!);
  return /^f[cd][0-9a-f]{0,2}:/.test(h) || /^fe[89ab][0-9a-f]?:/.test(h);
}

/** True when `url` points at a local server (see the module comment); false for remote or unreadable URLs. */
export function isLocalEndpoint(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '') return false;
  const ip = isIP(host);
  if (ip === 4) return isLocalIPv4(host);
  if (ip === 6) return isLocalIPv6(host);
  if (host === 'localhost' || !host.includes('.')) return true;
  return LOCAL_SUFFIXES.some((s) => host.endsWith(s));
}
