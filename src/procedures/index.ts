import { afsPack } from './afs.js';
import { Catalog } from './catalog.js';
import { cloudPack } from './cloud.js';
import { novaPack } from './nova.js';
import { opsPack } from './ops.js';
import { ovsPack } from './ovs.js';
import { swiftPack } from './swift.js';

/** Every procedure the bot runs. */
export function defaultCatalog(): Catalog {
  return new Catalog([...ovsPack, ...novaPack, ...afsPack, ...swiftPack, ...cloudPack, ...opsPack]);
}

export { Catalog } from './catalog.js';
