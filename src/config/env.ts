import { z } from 'zod';
import { ConfigError } from '../errors.js';

const optional = z.string().min(1).optional();

/** The environment the bot reads (see .env.example). */
export const envSchema = z.object({
  /** Default redis://127.0.0.1:6379. */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Key prefix of queues, runs and locks in Redis. Default `runbook`. */
  RUNBOOK_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('runbook'),
  RUNBOOK_CONFIG: optional,
  /** Packs of procedures to load besides runbook.yaml's `packs`: paths separated by ":", relative to the working directory. */
  RUNBOOK_PACKS: optional,
  /** HTTP port. Default 3000. */
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** HTTP bind address. Default 127.0.0.1. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /**
   * A shared sign-in to the console and the queue board that may look, never act (a wall screen).
   * People act only with their own sign-in: a personal token, or a trusted proxy.
   */
  CONSOLE_TOKEN: optional,
  /**
   * Addresses or networks of a sign-in proxy (oauth2-proxy): its X-Forwarded-Email (or
   * X-Forwarded-User) names the person (people.<id>.email). Unset: those headers are ignored.
   */
  CONSOLE_TRUSTED_PROXIES: optional,
  SLACK_BOT_TOKEN: optional,
  SLACK_SIGNING_SECRET: optional,
  SLACK_APP_TOKEN: optional,
  SLACK_API_URL: z.string().url().optional(),
  DISCORD_TOKEN: optional,
  DISCORD_APPLICATION_ID: optional,
  DISCORD_PUBLIC_KEY: optional,
  /** Register the slash commands in this guild (at once) instead of globally (Discord takes up to an hour). */
  DISCORD_GUILD_ID: optional,
  DISCORD_API_URL: z.string().url().optional(),
  /** fatal, error, warn, info, debug, trace, silent. Default info. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** The lab's MariaDB. Default mysql://root@127.0.0.1:3306. */
  MYSQL_URL: z.string().default('mysql://root@127.0.0.1:3306'),
  /** How long a worker's hold on a run lasts unrenewed: a killed worker's run is taken over after it. Default 30000 ms. */
  RUNBOOK_LEASE_MS: z.coerce.number().int().min(500).default(30_000),
  /** `runbook worker` serves GET /metrics and GET /healthz on HOST at this port. Unset: no HTTP server in a worker. */
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** Runs a worker advances at once. Default 16. */
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(16),
});
export type Env = z.infer<typeof envSchema>;

export function loadEnv(env: NodeJS.ProcessEnv = process.env): Env {
  // An empty value (NAME= in an env file) means unset, as in .env.example.
  const r = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!r.success) {
    throw new ConfigError('environment', r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  }
  return r.data;
}
