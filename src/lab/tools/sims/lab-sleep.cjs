'use strict';
/**
 * `lab-sleep <seconds>`: prints nothing and sleeps, for cancellation and timeout tests. Unlike a
 * shell's sleep it is a lab tool, so its calls are logged and faults apply; SIGTERM, SIGHUP and
 * SIGINT end it at once (labtool.cjs's handlers), SIGKILL too.
 */
const { setTimeout: sleep } = require('node:timers/promises');
const { ToolError } = require('../runtime.cjs');

module.exports = {
  async 'lab-sleep'(_ctx, args) {
    const seconds = Number(args[0]);
    if (args.length !== 1 || !Number.isFinite(seconds) || seconds < 0) throw new ToolError('usage: lab-sleep <seconds>', 2);
    await sleep(seconds * 1000);
    return 0;
  },
};
