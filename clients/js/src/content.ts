import { CGError } from "./errors.js";

/** The most characters a message may have after trimming, as the server counts them (code points). */
export const MAX_CONTENT_CHARS = 4000;

/** The longest client_msg_id the server takes, in bytes. */
export const MAX_CLIENT_MSG_ID_LEN = 128;

// isSpace is Go's unicode.IsSpace, which the server trims with (JavaScript's trim differs: it
// trims U+FEFF and keeps U+0085).
function isSpace(c: number): boolean {
  if (c <= 0xff) return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0x85 || c === 0xa0;
  return c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 ||
    c === 0x202f || c === 0x205f || c === 0x3000;
}

// isControl is Go's unicode.IsControl (C0, DEL and C1).
function isControl(c: number): boolean {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/**
 * normalizeContent returns the content as the server stores it, or throws the CGError the server
 * would answer (`invalid_content`): CRLF folded to LF, surrounding white space trimmed, 1 to 4000
 * characters, no control characters but newline and tab, no lone surrogates (not valid UTF-8).
 */
export function normalizeContent(content: string): string {
  const points: number[] = [];
  const s = content.replace(/\r\n/g, "\n");
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d < 0xdc00 || d > 0xdfff) throw invalid("content must be valid UTF-8.");
      points.push(0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00));
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      throw invalid("content must be valid UTF-8.");
    } else {
      points.push(c);
    }
  }
  let start = 0;
  let end = points.length;
  while (start < end && isSpace(points[start]!)) start++;
  while (end > start && isSpace(points[end - 1]!)) end--;
  const n = end - start;
  if (n === 0) throw invalid("content must not be empty.");
  if (n > MAX_CONTENT_CHARS) {
    throw invalid(`content has ${n} characters; at most ${MAX_CONTENT_CHARS} are allowed.`);
  }
  for (let i = start; i < end; i++) {
    const c = points[i]!;
    if ((isControl(c) && c !== 0x0a && c !== 0x09) || c === 0x2028 || c === 0x2029) {
      throw invalid(`content must not contain control characters (U+${c.toString(16).toUpperCase().padStart(4, "0")}).`);
    }
  }
  return String.fromCodePoint(...points.slice(start, end));
}

/** validClientMsgId reports whether id is 1 to 128 printable ASCII characters. */
export function validClientMsgId(id: string): boolean {
  return id.length > 0 && id.length <= MAX_CLIENT_MSG_ID_LEN && /^[\x21-\x7e]+$/.test(id);
}

function invalid(detail: string): CGError {
  return new CGError(400, "invalid_content", detail);
}

/** newClientMsgId returns a random UUID v4, from the platform's cryptographic source when it has one. */
export function newClientMsgId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string; getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  const b = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256); // React Native without a crypto polyfill
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
