import { Catalog } from './catalog.js';
import { novaPack } from './nova.js';
import { ovsPack } from './ovs.js';

/** Every procedure the bot runs. */
export function defaultCatalog(): Catalog {
  return new Catalog([...ovsPack, ...novaPack]);
}

export { Catalog } from './catalog.js';
