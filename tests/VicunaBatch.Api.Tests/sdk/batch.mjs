// Plain OpenAI SDK batch flow; only baseURL and apiKey point at vicuna-batch.
// Usage: OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=... node batch.mjs input.jsonl
// Prints one JSON line: {"batch_id", "status", "request_counts", "custom_ids"}.
import fs from 'node:fs';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY });

const file = await client.files.create({ file: fs.createReadStream(process.argv[2]), purpose: 'batch' });
let batch = await client.batches.create({
  input_file_id: file.id,
  endpoint: '/v1/chat/completions',
  completion_window: '24h',
  metadata: { source: 'sdk-acceptance' },
});
const deadline = Date.now() + 60_000;
while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
  if (Date.now() > deadline) throw new Error(`batch ${batch.id} still ${batch.status} after 60 s`);
  await new Promise((resolve) => setTimeout(resolve, 250));
  batch = await client.batches.retrieve(batch.id);
}
const content = await client.files.content(batch.output_file_id);
const lines = (await content.text()).split('\n').filter((line) => line.trim() !== '');
console.log(JSON.stringify({
  batch_id: batch.id,
  status: batch.status,
  request_counts: batch.request_counts,
  custom_ids: lines.map((line) => JSON.parse(line).custom_id),
}));
