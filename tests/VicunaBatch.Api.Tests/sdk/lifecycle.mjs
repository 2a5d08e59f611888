// The batch lifecycle and line shapes through the plain OpenAI SDK (issue 23); only baseURL and apiKey point at vicuna-batch.
// Usage: OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=... node lifecycle.mjs invalid.jsonl valid.jsonl
// Prints one JSON line per step: "invalid" (a file with no valid line), "run" (what polling a running batch saw, and its
// files' lines), "cancel_completed" (the 409 with the SDK's default retries: how many requests, how long).
import fs from 'node:fs';
import OpenAI from 'openai';

let numRequests = 0;
const counting = (url, init) => { numRequests++; return fetch(url, init); };
const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY, fetch: counting });
const terminal = ['completed', 'failed', 'expired', 'cancelled'];

async function create(path) {
  const file = await client.files.create({ file: fs.createReadStream(path), purpose: 'batch' });
  return client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
}

/** Polls every 50 ms until the batch ends; returns it and what was seen on the way. */
async function poll(batch) {
  const statuses = [batch.status];
  const counts = [];
  const deadline = Date.now() + 120_000;
  while (!terminal.includes(batch.status)) {
    if (Date.now() > deadline) throw new Error(`batch ${batch.id} still ${batch.status} after 120 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    batch = await client.batches.retrieve(batch.id);
    if (statuses.at(-1) !== batch.status) statuses.push(batch.status);
    if (batch.status === 'in_progress') counts.push([batch.request_counts.completed + batch.request_counts.failed, batch.usage?.total_tokens ?? 0]);
  }
  return { batch, statuses, counts };
}

async function lines(fileId) {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line));
}

const invalid = await poll(await create(process.argv[2]));
console.log(JSON.stringify({ step: 'invalid', status: invalid.batch.status, failed_at: invalid.batch.failed_at, errors: invalid.batch.errors }));

const run = await poll(await create(process.argv[3]));
const total = run.batch.request_counts.total;
console.log(JSON.stringify({
  step: 'run',
  statuses: run.statuses,
  request_id: run.batch._request_id,
  // counts seen while running that were neither 0 nor the total, with the usage then
  partial: run.counts.filter(([done]) => done > 0 && done < total),
  request_counts: run.batch.request_counts,
  usage: run.batch.usage,
  finalizing_at: run.batch.finalizing_at,
  output: await lines(run.batch.output_file_id),
  errors: await lines(run.batch.error_file_id),
}));

numRequests = 0;
const started = Date.now();
try {
  await client.batches.cancel(run.batch.id);
  console.log(JSON.stringify({ step: 'cancel_completed', status: 200 }));
} catch (e) {
  if (!(e instanceof OpenAI.APIError)) throw e;
  console.log(JSON.stringify({ step: 'cancel_completed', status: e.status, code: e.code, request_id: e.requestID, num_requests: numRequests, ms: Date.now() - started }));
}
