import { describe, expect, it } from 'vitest';
import { loadEnv } from '../../../src/config/env.js';
import { ConfigError } from '../../../src/errors.js';

describe('environment', () => {
  it('fills documented defaults and treats empty values as unset', () => {
    const env = loadEnv({ SLACK_BOT_TOKEN: '', PORT: '' });
    expect(env).toMatchObject({ REDIS_URL: 'redis://127.0.0.1:6379', PORT: 3000, HOST: '127.0.0.1', RUNBOOK_PREFIX: 'runbook', RUNBOOK_LEASE_MS: 30_000 });
    expect(env.SLACK_BOT_TOKEN).toBeUndefined();
  });

  it('names every bad variable', () => {
    try {
      loadEnv({ PORT: 'http', LOG_LEVEL: 'loud' });
      throw new Error('expected a ConfigError');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems.map((p) => p.path).sort()).toEqual(['LOG_LEVEL', 'PORT']);
    }
  });
});
