// A webhook receiver's check with the Standard Webhooks reference library (npm standardwebhooks), as a user's receiver
// would do it: our deliveries must verify with it, and fail with the wrong secret.
// Usage: node verify_webhook.mjs SECRET < deliveries.json, where deliveries.json is [{"id", "timestamp", "signature",
// "body"}]. Prints one JSON line per delivery: {"valid": true, "type": "..."} or {"valid": false, "error": "..."}.
import fs from 'node:fs';
import { Webhook } from 'standardwebhooks';

const webhook = new Webhook(process.argv[2]);
for (const d of JSON.parse(fs.readFileSync(0, 'utf8'))) {
  try {
    const event = webhook.verify(d.body, { 'webhook-id': d.id, 'webhook-timestamp': d.timestamp, 'webhook-signature': d.signature });
    console.log(JSON.stringify({ valid: true, type: event.type }));
  } catch (e) {
    console.log(JSON.stringify({ valid: false, error: String(e.message ?? e) }));
  }
}
