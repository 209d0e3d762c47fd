/**
 * The one error type the core throws for bad input. Its message is a single line that names the
 * file (and the tensor, when there is one) and the problem, so the CLI and the extension can show
 * it to a user as is, with no stack trace.
 */
export class WeightlensError extends Error {
  constructor(
    message: string,
    readonly file?: string,
    readonly tensor?: string,
  ) {
    super(formatMessage(message, file, tensor));
    this.name = 'WeightlensError';
  }
}

/** Thrown when the user (or a caller) cancels a run; never a failure of the input. */
export class CancelledError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

function formatMessage(message: string, file?: string, tensor?: string): string {
  const where = [file, tensor === undefined ? undefined : `tensor "${tensor}"`].filter(Boolean).join(': ');
  const text = where ? `${where}: ${message}` : message;
  return text.replace(/\s*\n\s*/g, ' ');
}

/** A one-line description of any thrown value, for CLI output and notifications. */
export function oneLine(err: unknown): string {
  if (err instanceof Error) return err.message.replace(/\s*\n\s*/g, ' ');
  return String(err).replace(/\s*\n\s*/g, ' ');
}
