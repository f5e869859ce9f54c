export { isZohoToken, newZohoToken, tokenFromZohoArgument, tokenFromZohoStored, writeIntoZohoToken, zohoTokenToRow } from './convert.js';
export type { FromZohoOptions } from './from-zoho.js';
export { fromZohoTokenStore } from './from-zoho.js';
export { TO_ZOHO_STORE_NAME, toZohoTokenStore } from './to-zoho.js';
export type { BridgedZohoTokenStore, ZohoOAuthToken, ZohoSdk, ZohoTokenStore, ZohoUserSignature } from './zoho-sdk.js';
