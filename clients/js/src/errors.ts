/**
 * CGError is every failure the library reports: a problem+json reply of the HTTP API, an `error`
 * frame of the socket, or content refused before it was sent. Clients act on `status` and `code`;
 * `detail` is for people and may change.
 */
export class CGError extends Error {
  /** The HTTP status (400 for content refused locally or by a socket's `error` frame of that kind, 0 for a network failure). */
  readonly status: number;
  /** The machine-readable code (`invalid_content`, `rate_limited`, `not_enrolled`, ...). */
  readonly code: string;
  /** A sentence for people. */
  readonly detail: string;
  /** Milliseconds to wait before trying again, when the server said (`Retry-After`, `retry_after_ms`); otherwise null. */
  readonly retryAfter: number | null;

  constructor(status: number, code: string, detail: string, retryAfter: number | null = null) {
    super(detail || code);
    this.name = "CGError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

/** The HTTP status a code of a socket's `error` frame has on the HTTP side. */
export function statusOfCode(code: string): number {
  switch (code) {
    case "not_enrolled":
    case "forbidden":
      return 403;
    case "not_found":
    case "class_not_found":
      return 404;
    case "rate_limited":
      return 429;
    case "unavailable":
      return 503;
    case "internal":
      return 500;
    case "unauthorized":
      return 401;
    default:
      return 400;
  }
}
