/** A receipt for a confirmed cart. `key` is the same each time the same confirmation is handled. */
export interface Receipt {
  readonly key: string;
  readonly cartId: string;
  readonly clientId: string;
  readonly totalAmount: number;
}

/** Where receipts go: a mail service, in a real shop. */
export interface Receipts {
  send(receipt: Receipt): Promise<void>;
}

/** What the receipts reactor needs. */
export interface ReceiptServices {
  readonly receipts: Receipts;
}

/**
 * Receipts written to the log, once per key: the reactor runs at least once, so a service it
 * calls takes the key to do its work once (a mail service would send it as its own
 * idempotency key). `sent` is what went out, for tests.
 */
export function loggedReceipts(write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Receipts & { readonly sent: Receipt[] } {
  const sent: Receipt[] = [];
  const keys = new Set<string>();
  return {
    sent,
    async send(receipt) {
      if (keys.has(receipt.key)) return;
      keys.add(receipt.key);
      sent.push(receipt);
      write(`receipt ${receipt.key}: cart ${receipt.cartId} of ${receipt.clientId}, ${receipt.totalAmount} KRW`);
    },
  };
}
