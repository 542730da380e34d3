'use strict';
/**
 * What the OVS tools read of the host's services, whatever manages them: the state the service
 * managers' simulators keep (`services` = { "<unit>": "running" | "halted" | "failed" }) and the stable
 * fake pid a running unit shows. Not a tool.
 */

function unitState(ctx, name) {
  return ctx.read('services', {})[name];
}

/** A stable fake pid per unit name, so output looks real without being random. */
function unitPid(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 30000;
  return 1000 + h;
}

module.exports = { unitState, unitPid };
