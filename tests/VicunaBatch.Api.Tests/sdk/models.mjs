// The OpenAI SDK's Models methods, and a batch per model, against a serve of two models; only baseURL and apiKey
// point at vicuna-batch.
// Usage: OPENAI_BASE_URL=... OPENAI_API_KEY=... node models.mjs input-second-model.jsonl input-unknown-model.jsonl
// Prints one JSON line: {"listed", "retrieved", "missing", "delete", "batch", "unknown", "batches"}: batches being
// what batches.list's auto-pagination (one a page) gives, newest first.
import fs from 'node:fs';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY, maxRetries: 0 });

const listed = [];
for await (const model of client.models.list()) listed.push({ id: model.id, object: model.object, owned_by: model.owned_by });
const retrieved = [];
for (const { id } of listed) retrieved.push((await client.models.retrieve(id)).id);
const failure = async (call) => {
  try { await call(); return null; } catch (e) { return { status: e.status, code: e.code, name: e.constructor.name }; }
};
const missing = await failure(() => client.models.retrieve('gpt-4o-mini'));
const del = await failure(() => client.models.delete(listed[1].id));

async function run(path) {
  const file = await client.files.create({ file: fs.createReadStream(path), purpose: 'batch' });
  let batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  const deadline = Date.now() + 60_000;
  while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
    if (Date.now() > deadline) throw new Error(`batch ${batch.id} still ${batch.status} after 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
    batch = await client.batches.retrieve(batch.id);
  }
  const result = { id: batch.id, status: batch.status, model: batch.model, errors: batch.errors?.data ?? [] };
  if (batch.output_file_id) {
    const lines = (await (await client.files.content(batch.output_file_id)).text()).split('\n').filter((l) => l.trim() !== '');
    result.output_models = lines.map((line) => JSON.parse(line).response.body.model);
  }
  return result;
}

const batch = await run(process.argv[2]);
const unknown = await run(process.argv[3]);
const batches = [];
for await (const b of client.batches.list({ limit: 1 })) batches.push(b.id);
console.log(JSON.stringify({ listed, retrieved, missing, delete: del, batch, unknown, batches }));
