import type { IncomingMessage, ServerResponse } from 'node:http';
import { HTTPModuleFunctions as http, HTTPResponseAck, type App, type Logger, type Receiver, type ReceiverEvent } from '@slack/bolt';
import type { Route } from '../../http/server.js';

export interface RouteReceiverOptions {
  signingSecret: string;
  logger: Logger;
  /** Default `/slack/events`. */
  path?: string;
}

/**
 * Bolt's HTTP receiving, as a route of our own HTTP server rather than a server of its own:
 * Bolt's request verification (X-Slack-Signature over `v0:<timestamp>:<body>`, 5-minute window),
 * Bolt's ack (the response is written the moment a listener calls `ack()`, and a request nobody
 * acks is answered after 3 s), and `retryNum`/`retryReason` from Slack's retry headers.
 */
export class RouteReceiver implements Receiver {
  private app: App | undefined;
  private readonly path: string;

  constructor(private readonly o: RouteReceiverOptions) {
    this.path = o.path ?? '/slack/events';
  }

  init(app: App): void {
    this.app = app;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  readonly route: Route = async (req, res) => {
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== this.path) return false;
    await this.handle(req, res);
    return true;
  };

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const logger = this.o.logger;
    let buffered;
    try {
      buffered = await http.parseAndVerifyHTTPRequest({ signingSecret: this.o.signingSecret }, req);
    } catch (err) {
      if (http.isRawBodyError(err) && (err.type === 'entity.too.large' || err.statusCode === 413)) {
        http.buildNoBodyResponse(res, 413);
        return;
      }
      logger.warn(`refused a request to ${this.path}: ${(err as Error).message}`);
      http.buildNoBodyResponse(res, 401);
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = http.parseHTTPRequestBody(buffered) as Record<string, unknown>;
    } catch (err) {
      logger.warn(`malformed request body: ${(err as Error).message}`);
      http.buildNoBodyResponse(res, 400);
      return;
    }
    if (body.ssl_check === '1') return http.buildSSLCheckResponse(res);
    if (body.type === 'url_verification') return http.buildUrlVerificationResponse(res, body);
    const ack = new HTTPResponseAck({ logger, processBeforeResponse: false, httpRequest: buffered, httpRequestBody: body, httpResponse: res });
    const retryNum = http.extractRetryNumFromHTTPRequest(req);
    const retryReason = http.extractRetryReasonFromHTTPRequest(req);
    const event: ReceiverEvent = { body, ack: ack.bind(), ...(retryNum !== undefined ? { retryNum } : {}), ...(retryReason !== undefined ? { retryReason } : {}) };
    try {
      await this.app?.processEvent(event);
    } catch (error) {
      const acked = await http.defaultProcessEventErrorHandler({ error: error as Error, logger, request: req, response: res, storedResponse: ack.storedResponse });
      if (acked) ack.ack();
    }
  }
}
