/**
 * The Slack app's manifest with one slash command per pack of the catalog, the operator's packs
 * included: Slack learns slash commands only from the app's configuration, so adding a pack means
 * pasting this into the app (api.slack.com/apps → the app → App Manifest). Same settings as
 * slack-app-manifest.yaml, which holds the bot's own packs.
 */
import { stringify } from 'yaml';
import type { Catalog } from '../../procedures/catalog.js';

/** Slack's limits on a slash command's description and usage hint (characters). */
const DESCRIPTION_MAX = 100;

export interface ManifestOptions {
  /** The bot's public URL (HTTP mode); absent: Socket Mode, no URL. */
  url?: string | undefined;
}

export function slackManifest(catalog: Catalog, o: ManifestOptions = {}): string {
  const events = o.url ? `${o.url.replace(/\/+$/, '')}/slack/events` : undefined;
  const clip = (t: string) => (t.length <= DESCRIPTION_MAX ? t : `${t.slice(0, DESCRIPTION_MAX - 1)}…`);
  const manifest = {
    _metadata: { major_version: 1, minor_version: 1 },
    display_information: { name: 'runbook', description: 'Runs incident runbooks step by step, with approvals, from the channel.', background_color: '#2c2d30' },
    features: {
      bot_user: { display_name: 'runbook', always_online: true },
      slash_commands: catalog.packs().map((pack) => ({
        command: `/${pack}`,
        ...(events ? { url: events } : {}),
        description: clip(`Runbooks: ${catalog.inPack(pack).map((p) => p.name).join(', ')}`),
        usage_hint: 'help | <procedure> <args> | status <run-id> | cancel <run-id>',
        should_escape: false,
      })),
    },
    oauth_config: { scopes: { bot: ['commands', 'chat:write', 'chat:write.public', 'files:write'] } },
    settings: {
      interactivity: { is_enabled: true, ...(events ? { request_url: events } : {}) },
      org_deploy_enabled: false,
      socket_mode_enabled: !events,
      token_rotation_enabled: false,
    },
  };
  return `# The runbook bot's Slack app, with a slash command per loaded pack (runbook slack manifest).\n${stringify(manifest)}`;
}
