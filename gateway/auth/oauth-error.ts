/** An RFC 6749 section 5.2 error of the token endpoint, sent as `{ error, error_description }`. */
export class OAuthError extends Error {
  constructor(
    readonly status: 400 | 401,
    readonly error: 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unsupported_grant_type' | 'invalid_scope',
    description: string,
    /** For invalid_client after HTTP Basic: the client is told to authenticate that way again. */
    readonly challenge?: string,
  ) {
    super(description);
    this.name = 'OAuthError';
  }
}

export const invalidRequest = (description: string): OAuthError => new OAuthError(400, 'invalid_request', description);
export const invalidClient = (description: string, challenge?: string): OAuthError => new OAuthError(401, 'invalid_client', description, challenge);
