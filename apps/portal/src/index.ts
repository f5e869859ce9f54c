export { main } from './main.js';
export {
  DEFAULT_SCOPE,
  DEFAULT_STORE_URL,
  type Portal,
  PortalConfigError,
  type PortalOptions,
  startPortal,
  type ZohoClient,
} from './portal.js';
