/** Which tokens `--expired` means: the ones nothing can use any more. */
import type { OAuthToken } from '@crm/core';

/**
 * True when nothing can get an access token from this token any more: it has no refresh token and no grant
 * token, and its access token is missing, expired or of unknown expiry (`OAuthToken.isExpired`). A token with
 * an expired access token but a refresh token is fine: `TokenManager` refreshes it on next use.
 */
export function cannotBeUsed(token: OAuthToken, now: number): boolean {
  return token.refreshToken === null && token.grantToken === null && (token.accessToken === null || token.isExpired(now));
}
