// Owns the client's error types: an HTTP answer the client will not retry (MeterhookError), a request
// refused before sending (MeterhookValidationError), a server that could not be reached
// (MeterhookConnectionError), and the summary a failed flush rejects with.

/** The server answered with a status the client does not retry (4xx), or kept answering 5xx until retries ran out. */
export class MeterhookError extends Error {
  override readonly name: string = 'MeterhookError';
  /** The server's machine code (`body.code`), when its envelope has one. */
  readonly code: string | undefined;
  /** The server's request id (`body.requestId` or the x-request-id header). */
  readonly requestId: string | undefined;
  /** For one event rejected inside a batch: its position in the batch it was sent in. */
  readonly index: number | undefined;
  /** For one event rejected inside a batch: the server's messages for that event. */
  readonly details: string[] | undefined;
  constructor(
    readonly status: number,
    /** The server's JSON body (or its text when it was not JSON). */
    readonly body: unknown,
    message?: string,
    opts: {
      requestId?: string;
      /** For one event rejected inside a batch: its position in the batch it was sent in. */
      index?: number;
      /** For one event rejected inside a batch: the server's messages for that event. */
      details?: string[];
    } = {},
  ) {
    super(message ?? MeterhookError.describe(status, body));
    const b = body as { code?: unknown; requestId?: unknown } | null;
    this.code = b && typeof b === 'object' && typeof b.code === 'string' ? b.code : undefined;
    this.requestId = b && typeof b === 'object' && typeof b.requestId === 'string' ? b.requestId : opts.requestId;
    this.index = opts.index;
    this.details = opts.details;
  }

  static describe(status: number, body: unknown): string {
    const b = body as { error?: unknown; details?: unknown } | null;
    let text =
      b && typeof b === 'object' && typeof b.error === 'string'
        ? b.error
        : typeof body === 'string' && body
          ? body.slice(0, 200)
          : 'request failed';
    if (b && typeof b === 'object' && Array.isArray(b.details) && b.details.length > 0) text += `: ${b.details.join('; ')}`;
    return `HTTP ${status}: ${text}`;
  }
}

/**
 * The client refused an event or a parameter without sending it, because the server would refuse it
 * too: `status`, `body` and `details` are what the server answers (422 for an event, 400 for a path or
 * query value), so code that handles a server's MeterhookError handles this one alike.
 */
export class MeterhookValidationError extends MeterhookError {
  override readonly name: string = 'MeterhookValidationError';

  static ofEvent(details: string[], index?: number): MeterhookValidationError {
    return new MeterhookValidationError(
      422,
      { error: 'Validation failed', details },
      `HTTP 422: ${details.join('; ')} (refused before sending)`,
      {
        details,
        ...(index === undefined ? {} : { index }),
      },
    );
  }

  static ofParam(message: string): MeterhookValidationError {
    return new MeterhookValidationError(400, { error: message, code: 'invalid_query' }, `HTTP 400: ${message} (refused before sending)`, {
      details: [message],
    });
  }
}

/** The server could not be reached (refused, reset, DNS, timeout) and retries ran out. */
export class MeterhookConnectionError extends Error {
  override readonly name = 'MeterhookConnectionError';
  constructor(
    message: string,
    /** The low-level error code when known, e.g. ECONNREFUSED, ECONNRESET, ENOTFOUND, TIMEOUT. */
    readonly code: string | undefined,
    opts: { cause?: unknown } = {},
  ) {
    super(message, opts);
  }
}

/** The client was closed: events tracked afterwards, or still unsent when it was destroyed. */
export class MeterhookClosedError extends Error {
  override readonly name = 'MeterhookClosedError';
}

/** `flush()` / `close()`: some of the events they waited for failed permanently. */
export class MeterhookFlushError extends Error {
  override readonly name = 'MeterhookFlushError';
  constructor(
    readonly failures: Array<{ event: { eventType: string; customerId: string; id: string }; error: Error }>,
    readonly acknowledged: number,
  ) {
    const first = failures[0]?.error.message ?? '';
    super(`${failures.length} event(s) failed, ${acknowledged} acknowledged; first error: ${first}`);
  }
}
