import { TokenStoreError } from '../errors.js';

/** Zoho's data centers: where a user's account lives decides both the accounts server and the API domain. */
export type DataCenter = 'US' | 'EU' | 'IN' | 'CN' | 'JP' | 'AU' | 'CA' | 'SA' | 'UK';

export interface DataCenterUrls {
  /** The accounts server (`/oauth/v2/token` lives there). */
  readonly accountsUrl: string;
  /** The CRM API domain Zoho hands out for this data center. */
  readonly apiDomain: string;
}

export const DATA_CENTERS: Readonly<Record<DataCenter, DataCenterUrls>> = Object.freeze({
  US: Object.freeze({ accountsUrl: 'https://accounts.zoho.com', apiDomain: 'https://www.zohoapis.com' }),
  EU: Object.freeze({ accountsUrl: 'https://accounts.zoho.eu', apiDomain: 'https://www.zohoapis.eu' }),
  IN: Object.freeze({ accountsUrl: 'https://accounts.zoho.in', apiDomain: 'https://www.zohoapis.in' }),
  CN: Object.freeze({ accountsUrl: 'https://accounts.zoho.com.cn', apiDomain: 'https://www.zohoapis.com.cn' }),
  JP: Object.freeze({ accountsUrl: 'https://accounts.zoho.jp', apiDomain: 'https://www.zohoapis.jp' }),
  AU: Object.freeze({ accountsUrl: 'https://accounts.zoho.com.au', apiDomain: 'https://www.zohoapis.com.au' }),
  CA: Object.freeze({ accountsUrl: 'https://accounts.zohocloud.ca', apiDomain: 'https://www.zohoapis.ca' }),
  SA: Object.freeze({ accountsUrl: 'https://accounts.zoho.sa', apiDomain: 'https://www.zohoapis.sa' }),
  UK: Object.freeze({ accountsUrl: 'https://accounts.zoho.uk', apiDomain: 'https://www.zohoapis.uk' }),
});

export const DATA_CENTER_NAMES = Object.freeze(Object.keys(DATA_CENTERS)) as readonly DataCenter[];

export function isDataCenter(value: unknown): value is DataCenter {
  return typeof value === 'string' && Object.hasOwn(DATA_CENTERS, value);
}

/** The accounts server of a data center, e.g. `accountsUrlFor('EU')` is `https://accounts.zoho.eu`. */
export function accountsUrlFor(dataCenter: DataCenter): string {
  if (!isDataCenter(dataCenter)) {
    throw TokenStoreError.invalidArgument(
      { store: 'TokenManager', operation: 'open' },
      `dataCenter must be one of ${DATA_CENTER_NAMES.join(', ')}`,
    );
  }
  return DATA_CENTERS[dataCenter].accountsUrl;
}
