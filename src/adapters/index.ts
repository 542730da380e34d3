import type { Authenticator, Mount } from '../http/surface.js';
import type { Runtime } from '../runtime.js';
import { startConsole } from './console/index.js';
import { startDiscord } from './discord/index.js';
import { ProgressHub, type ChatAdapter } from './hub.js';
import { startSlack } from './slack/index.js';

/**
 * A chat adapter as `runbook start` runs it: its progress delivery (fed by the hub here, unless
 * the adapter runs its own, as Slack does in its work process), its HTTP routes (each saying who
 * may call it), the sign-in they share when it owns one (the console), its shutdown.
 */
export interface StartedAdapter {
  name: string;
  adapter?: ChatAdapter;
  mounts: Mount[];
  auth?: Authenticator;
  stop(): Promise<void>;
}

/** Each adapter's starter decides from the environment whether it runs (e.g. SLACK_* set). */
export type AdapterStarter = (rt: Runtime) => Promise<StartedAdapter | undefined>;

const starters: AdapterStarter[] = [startConsole, (rt) => startSlack(rt), (rt) => startDiscord(rt)];

/** Starts every configured adapter and the hub that feeds them progress. */
export async function startAdapters(rt: Runtime, list: AdapterStarter[] = starters): Promise<{ names: string[]; mounts: Mount[]; auth?: Authenticator; stop(): Promise<void> }> {
  const hub = new ProgressHub(rt.store, rt.log);
  const started: StartedAdapter[] = [];
  const names: string[] = [];
  for (const start of list) {
    const a = await start(rt);
    if (!a) continue;
    started.push(a);
    names.push(a.name);
    if (a.adapter) await hub.start(a.adapter);
  }
  const auth = started.find((a) => a.auth)?.auth;
  return {
    names,
    mounts: started.flatMap((a) => a.mounts),
    ...(auth ? { auth } : {}),
    async stop() {
      await hub.stop();
      await Promise.all(started.map((a) => a.stop()));
    },
  };
}
