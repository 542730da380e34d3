import { LogLevel, type Logger as BoltLogger } from '@slack/bolt';
import type { Logger } from 'pino';

/** Bolt's and the Web API client's logger interface, onto pino. */
export function boltLogger(log: Logger): BoltLogger {
  const child = log.child({ adapter: 'slack' });
  // Bolt logs at debug on every request: build nothing unless the level is on.
  const say = (level: 'debug' | 'info' | 'warn' | 'error') => (...msg: unknown[]) => {
    if (child.isLevelEnabled(level)) child[level](msg.map(String).join(' '));
  };
  return { debug: say('debug'), info: say('info'), warn: say('warn'), error: say('error'), setLevel: () => undefined, getLevel: () => LogLevel.INFO, setName: () => undefined };
}
