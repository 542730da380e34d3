import pino, { type Logger } from 'pino';

/** Keys whose values never reach a log line, wherever they sit. */
export const REDACT = [
  'password', '*.password', 'token', '*.token', 'secret', '*.secret', 'privateKey', '*.privateKey',
  'url', '*.url', 'authorization', '*.authorization', 'headers.authorization', 'headers.cookie', '*.headers.authorization',
  'SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN', 'DISCORD_TOKEN', 'DISCORD_PUBLIC_KEY',
];

/** JSON lines on stderr; pretty when stderr is a terminal. Every run and step log line carries runId and stepId. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', bindings: Record<string, unknown> = {}): Logger {
  const pretty = process.stderr.isTTY && !process.env.CI;
  return pino(
    { level, base: { pid: process.pid, ...bindings }, redact: { paths: REDACT, censor: '[redacted]' } },
    pretty ? pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname' } }) : pino.destination(2),
  );
}

export type { Logger };

/** A URL as it may be shown: the password of its user part replaced (redis://:***@host:6379). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(an unreadable URL)';
  }
}
