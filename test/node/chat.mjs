// Drives paygate with the official Node `openai` SDK, the way a bot does.
// Usage: PAYGATE_URL=http://host:port/v1 PAYGATE_KEY=… node chat.mjs <mode>
// Prints one JSON object on stdout for the Go test to check.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.PAYGATE_URL, apiKey: process.env.PAYGATE_KEY, maxRetries: 0 });
const mode = process.argv[2];
const messages = [{ role: "user", content: "Say hello" }];
const headers = process.env.PAYGATE_OPENID ? { "X-WeChat-OpenID": process.env.PAYGATE_OPENID } : {};

async function main() {
  if (mode === "nonstream") {
    const r = await client.chat.completions.create({ model: process.env.PAYGATE_MODEL, messages }, { headers });
    return { id: r.id, model: r.model, content: r.choices[0].message.content, finish: r.choices[0].finish_reason, paygate: r.paygate ?? null, extra: r.system_fingerprint ?? null };
  }
  if (mode === "stream") {
    const stream = await client.chat.completions.create({ model: process.env.PAYGATE_MODEL, messages, stream: true }, { headers });
    let content = "", ids = new Set(), finish = null, paygate = null, chunks = 0, roles = 0;
    const toolCalls = [];
    for await (const chunk of stream) {
      chunks++;
      ids.add(chunk.id);
      if (chunk.paygate) paygate = chunk.paygate;
      const c = chunk.choices[0];
      if (!c) continue;
      if (c.delta?.role) roles++;
      if (c.delta?.content) content += c.delta.content;
      for (const tc of c.delta?.tool_calls ?? []) {
        toolCalls[tc.index] ??= { id: "", name: "", arguments: "" };
        if (tc.id) toolCalls[tc.index].id = tc.id;
        if (tc.function?.name) toolCalls[tc.index].name = tc.function.name;
        if (tc.function?.arguments) toolCalls[tc.index].arguments += tc.function.arguments;
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
    return { ids: [...ids], content, finish, paygate, chunks, roles, toolCalls };
  }
  if (mode === "stream-final") {
    // The SDK's stream helper, which assembles the completion from the
    // chunks; it takes a chunk's top-level members only from one with an id.
    const stream = client.chat.completions.stream({ model: process.env.PAYGATE_MODEL, messages, stream: true }, { headers });
    const ids = new Set();
    stream.on("chunk", (c) => ids.add(c.id));
    const r = await stream.finalChatCompletion();
    return { id: r.id, chunkIds: [...ids], content: r.choices[0].message.content, paygate: r.paygate ?? null };
  }
  throw new Error("unknown mode " + mode);
}

main().then(
  (out) => { process.stdout.write(JSON.stringify(out) + "\n"); },
  (err) => { process.stdout.write(JSON.stringify({ error: String(err), status: err.status ?? null }) + "\n"); process.exitCode = 1; },
);
