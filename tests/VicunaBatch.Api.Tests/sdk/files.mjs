// The Files surface through the OpenAI Node SDK unchanged (only baseURL and apiKey point at vicuna-batch):
// upload with expires_after, files.list with its auto-pagination (for await), a batch with output_expires_after,
// files.delete, and an expires_after out of range. Usage: OPENAI_BASE_URL=... OPENAI_API_KEY=... node files.mjs input.jsonl
// Prints one JSON line of what each call returned; the test judges it.
import fs from 'node:fs';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY, maxRetries: 0 });
const upload = (expires_after) =>
  client.files.create({ file: fs.createReadStream(process.argv[2]), purpose: 'batch', ...(expires_after ? { expires_after } : {}) });
const listIds = async (params) => {
  const ids = [];
  for await (const file of client.files.list(params)) ids.push(file.id);
  return ids;
};
const status = async (call) => {
  try { await call(); return 200; } catch (e) { return { status: e.status, param: e.param ?? e.error?.param ?? null }; }
};

const uploaded = [];
for (let i = 0; i < 3; i++) uploaded.push(await upload({ anchor: 'created_at', seconds: 3600 * (i + 1) }));
const firstPage = await client.files.list({ limit: 2 });
const listed = await listIds({ limit: 2 });
const ascending = await listIds({ limit: 1, order: 'asc', purpose: 'batch' });

let batch = await client.batches.create({
  input_file_id: uploaded[0].id, endpoint: '/v1/chat/completions', completion_window: '24h',
  output_expires_after: { anchor: 'created_at', seconds: 7200 },
});
const deadline = Date.now() + 60_000;
while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
  if (Date.now() > deadline) throw new Error(`batch ${batch.id} still ${batch.status} after 60 s`);
  await new Promise((resolve) => setTimeout(resolve, 250));
  batch = await client.batches.retrieve(batch.id);
}
const output = await client.files.retrieve(batch.output_file_id);

const deleted = await client.files.delete(uploaded[1].id);
const retrieveDeleted = await status(() => client.files.retrieve(uploaded[1].id));
const deleteAgain = await status(() => client.files.delete(uploaded[1].id));
const afterDelete = await listIds({});
const tooShort = await status(() => upload({ anchor: 'created_at', seconds: 60 }));

console.log(JSON.stringify({
  uploaded: uploaded.map((f) => ({ id: f.id, created_at: f.created_at, expires_at: f.expires_at })),
  first_page: { ids: firstPage.data.map((f) => f.id), has_more: firstPage.has_more },
  listed, ascending,
  batch: { status: batch.status, output_file_id: batch.output_file_id, error_file_id: batch.error_file_id },
  output: { purpose: output.purpose, created_at: output.created_at, expires_at: output.expires_at },
  deleted, retrieve_deleted: retrieveDeleted, delete_again: deleteAgain, after_delete: afterDelete, too_short: tooShort,
}));
