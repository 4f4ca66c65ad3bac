// Apart from connection.ts, so that the config loader (public) can name it without its declarations naming nats.js types.

/** How converge authenticates to NATS: at most one of user and password, a token or a creds file; TLS when a CA or certificate is given. */
export interface NatsAuth {
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  readonly credsFile?: string;
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
}
