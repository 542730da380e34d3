import type { ButtonAction } from '../messages.js';

/**
 * What the process that acks hands to the process that works, once Slack has its ack: the few
 * fields of a slash command, a button click or a submitted reject modal that the work needs. Plain
 * data, so that it crosses the IPC channel between them.
 */
export type SlackRequest = SlackCommand | SlackAction | SlackReason;

interface Base {
  /**
   * What identifies the request across Slack's retries and a person's double submit (the
   * trigger_id, else a hash of the payload): the second request with the same key does nothing.
   */
  key: string;
  /** The Slack user who typed or clicked. */
  user: string;
  channel?: string;
  /** Where to answer when the bot cannot post in the channel (a DM, a channel it is not in). */
  responseUrl?: string;
}

/** `/ovs flush node-3`: pack `ovs`, text `flush node-3`. */
export interface SlackCommand extends Base {
  kind: 'command';
  pack: string;
  text: string;
  team?: string;
}

/** A click on one of our buttons. */
export interface SlackAction extends Base {
  kind: 'action';
  choice: ButtonAction;
  runId: string;
  gateId: string;
  /** Valid for 3 s after the click: it opens the reject modal. */
  triggerId: string;
}

/** The reject modal, submitted with its reason. */
export interface SlackReason extends Base {
  kind: 'reason';
  runId: string;
  gateId: string;
  reason?: string;
}
