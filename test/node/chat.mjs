// Drives paygate with the official Node `openai` SDK, the way a bot does.
// Usage: PAYGATE_URL=http://host:port/v1 PAYGATE_KEY=… node chat.mjs <mode>
// Prints one JSON object on stdout for the Go test to check.
import OpenAI from "openai";
import { zodFunction, zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";

// PAYGATE_RETRIES: the SDK's own retries of a 408/409/429/5xx or a lost
// connection (0 unless set; the SDK's default is 2).
// PAYGATE_TIMEOUT_MS: the SDK's timeout of each try (its default, 10
// minutes, unless set); a try that times out is retried as a lost
// connection is.
const client = new OpenAI({ baseURL: process.env.PAYGATE_URL, apiKey: process.env.PAYGATE_KEY, maxRetries: Number(process.env.PAYGATE_RETRIES ?? 0),
  ...(process.env.PAYGATE_TIMEOUT_MS ? { timeout: Number(process.env.PAYGATE_TIMEOUT_MS) } : {}) });
const mode = process.argv[2];
const messages = [{ role: "user", content: "Say hello" }];
const headers = process.env.PAYGATE_OPENID ? { "X-WeChat-OpenID": process.env.PAYGATE_OPENID } : {};

async function main(mode = process.argv[2]) {
  if (mode === "models") {
    // The models as a bot reads them: models.list(), models.retrieve() of
    // each listed id (the SDK escapes it into the path: a "/" as %2F), of
    // PAYGATE_MODEL_UNKNOWN, and models.delete() of the first id, which
    // must be refused: each error as the bot's catch sees it.
    const caught = async (p) => {
      try { return { ok: await p }; } catch (err) { return { status: err.status ?? null, code: err.code ?? null, param: err.param ?? null, error: String(err) }; }
    };
    const listed = [];
    for await (const m of client.models.list()) listed.push(m);
    const retrieved = [];
    for (const m of listed) retrieved.push(await caught(client.models.retrieve(m.id)));
    return { listed, retrieved, unknown: await caught(client.models.retrieve(process.env.PAYGATE_MODEL_UNKNOWN)),
      deleted: await caught(client.models.delete(listed[0].id)) };
  }
  if (mode === "nonstream") {
    const r = await client.chat.completions.create({ model: process.env.PAYGATE_MODEL, messages }, { headers });
    return { id: r.id, model: r.model, content: r.choices[0].message.content, finish: r.choices[0].finish_reason, paygate: r.paygate ?? null, extra: r.system_fingerprint ?? null };
  }
  if (mode === "nonstream-error") {
    // A non-stream turn that fails: what the bot's catch sees of it, the
    // SDK's error and the error object it keeps (err.error).
    try {
      const r = await client.chat.completions.create({ model: process.env.PAYGATE_MODEL, messages }, { headers });
      return { answered: r.id };
    } catch (err) {
      return { error: String(err), status: err.status ?? null, code: err.code ?? null, paygate: err.error?.paygate ?? null };
    }
  }
  if (mode === "stream-error") {
    // A streamed turn that fails after its first bytes: the chunks the
    // bot's loop got before the SDK raised the error event (their paygate),
    // and that error.
    let paygate = null;
    try {
      const stream = await client.chat.completions.create({ model: process.env.PAYGATE_MODEL, messages, stream: true }, { headers });
      for await (const chunk of stream) {
        if (chunk.paygate) paygate = chunk.paygate;
      }
      return { finished: true, paygate };
    } catch (err) {
      return { error: String(err), status: err.status ?? null, code: err.code ?? null, paygate };
    }
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
  if (mode === "stream-resend") {
    // A bot that sends its request again, once, when the stream it read
    // ended in an error (an error event, a cut connection): the SDK's own
    // retries stop once the response's headers arrived.
    let firstError = null;
    try {
      return { ...(await main("stream")), firstError };
    } catch (err) {
      firstError = String(err);
    }
    return { ...(await main("stream")), firstError };
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
  if (mode === "stream-events" || mode === "stream-events-usage") {
    // The stream helper's events, as a bot that shows text as it comes
    // reads them, and the completion it assembles.
    const params = { model: process.env.PAYGATE_MODEL, messages };
    if (mode === "stream-events-usage") params.stream_options = { include_usage: true };
    const stream = client.chat.completions.stream(params, { headers });
    const deltas = [], ids = new Set();
    let done = null;
    stream.on("content.delta", (e) => deltas.push(e.delta));
    stream.on("content.done", (e) => { done = e.content; });
    stream.on("chunk", (c) => ids.add(c.id));
    const r = await stream.finalChatCompletion();
    return { deltas, done, chunkIds: [...ids], id: r.id, content: r.choices[0].message.content, finish: r.choices[0].finish_reason,
      usage: r.usage ?? null, paygate: r.paygate ?? null };
  }
  if (mode === "parse" || mode === "parse-stream") {
    // Structured outputs as a bot asks for them: a strict json_schema made
    // with zodResponseFormat, read with the SDK's parse() or its stream
    // helper, which both parse the content against the schema (and raise
    // when it does not fit) unless the answer is a refusal.
    const params = { model: process.env.PAYGATE_MODEL, messages, response_format: zodResponseFormat(z.object({ reply: z.string() }), "reply") };
    if (process.env.PAYGATE_PARSE_TOKENS) params.max_completion_tokens = Number(process.env.PAYGATE_PARSE_TOKENS);
    if (process.env.PAYGATE_PARSE_CHOICE) {
      // A strict tool of the bot's own (parse() takes no other), one call
      // a round, and the tool_choice given (JSON).
      params.tools = [zodFunction({ name: "get_weather", parameters: z.object({ city: z.string() }) })];
      params.parallel_tool_calls = false;
      params.tool_choice = JSON.parse(process.env.PAYGATE_PARSE_CHOICE);
    }
    let r;
    try {
      r = mode === "parse" ? await client.chat.completions.parse(params, { headers })
        : await client.chat.completions.stream({ ...params, stream_options: { include_usage: true } }, { headers }).finalChatCompletion();
    } catch (err) {
      return { error: String(err), status: err.status ?? null };
    }
    const m = r.choices[0].message;
    return { content: m.content ?? null, parsed: m.parsed ?? null, refusal: m.refusal ?? null, finish: r.choices[0].finish_reason,
      usage: r.usage ?? null, paygate: r.paygate ?? null };
  }
  if (mode === "parse-history" || mode === "parse-stream-history") {
    // A bot on structured outputs that keeps each answer's message in its
    // history as the SDK gave it (completion.choices[0].message, parsed and
    // refusal included) and sends the user's next words after it.
    const format = zodResponseFormat(z.object({ reply: z.string() }), "reply");
    const ask = (msgs) => mode === "parse-history" ? client.chat.completions.parse({ model: process.env.PAYGATE_MODEL, messages: msgs, response_format: format }, { headers })
      : client.chat.completions.stream({ model: process.env.PAYGATE_MODEL, messages: msgs, response_format: format }, { headers }).finalChatCompletion();
    const history = [...messages];
    let first, r;
    try {
      first = await ask(history);
      history.push(first.choices[0].message);
      history.push({ role: "user", content: "Premium monthly, one." });
      r = await ask(history);
    } catch (err) {
      return { kept: first?.choices[0].message ?? null, error: String(err), status: err.status ?? null };
    }
    const m = r.choices[0].message;
    return { kept: first.choices[0].message, content: m.content ?? null, parsed: m.parsed ?? null, refusal: m.refusal ?? null, finish: r.choices[0].finish_reason };
  }
  if (mode === "run-tools" || mode === "run-tools-stream") {
    // The SDK's tool loop with a function tool of the bot's own: the SDK
    // runs every tool call it gets, so a payment call that reached it would
    // fail the loop ("not a function tool" of its list).
    const called = [];
    const runner = client.chat.completions.runTools({
      model: process.env.PAYGATE_MODEL, messages, stream: mode === "run-tools-stream",
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } },
        parse: JSON.parse, function: (args) => { called.push(args); return { celsius: 21 }; } } }],
    }, { headers });
    const content = await runner.finalContent();
    const calls = runner.messages.flatMap((m) => (m.tool_calls ?? []).map((c) => c.function.name));
    return { content, called, calls };
  }
  if (mode === "abort") {
    // A bot that stops reading: the AbortController cancels the request
    // after the first text.
    const ac = new AbortController();
    const stream = await client.chat.completions.create({ model: process.env.PAYGATE_MODEL, messages, stream: true }, { headers, signal: ac.signal });
    let content = "", error = null;
    try {
      for await (const c of stream) {
        content += c.choices[0]?.delta?.content ?? "";
        if (content) ac.abort(); // the SDK's iterator then ends, or throws
      }
    } catch (err) {
      error = String(err);
    }
    return { content, aborted: ac.signal.aborted, error };
  }
  if (mode === "batch-create") {
    // A forwarded call that creates something (a batch), with the SDK's
    // own retries (PAYGATE_RETRIES) of a 5xx.
    try {
      const b = await client.batches.create({ input_file_id: "file-abc", endpoint: "/v1/chat/completions", completion_window: "24h" });
      return { id: b.id, status: 200 };
    } catch (err) {
      return { error: String(err), status: err.status ?? null };
    }
  }
  if (mode === "with-response") {
    const { data: r, response } = await client.chat.completions.create({ model: process.env.PAYGATE_MODEL, messages }, { headers }).withResponse();
    return { headers: Object.fromEntries(response.headers), content: r.choices[0].message.content, paygate: r.paygate ?? null };
  }
  if (mode === "files-create") {
    // A file upload (multipart) named after the end user, as a bot may name
    // it; PAYGATE_FILE_BYTES: the file's size (3 bytes unless set). An error
    // is the output, with its status and, for a lost connection, its cause.
    const name = (process.env.PAYGATE_OPENID ?? "orders") + ".jsonl";
    const size = Number(process.env.PAYGATE_FILE_BYTES ?? 0);
    const content = size > 0 ? new Uint8Array(size).fill(0x61) : "{}\n";
    try {
      const f = await client.files.create({ file: new File([content], name), purpose: "batch" }, { headers });
      return { id: f.id, filename: f.filename };
    } catch (err) {
      return { error: String(err), status: err.status ?? null, code: err.code ?? null, cause: err.cause ? String(err.cause.cause ?? err.cause) : null };
    }
  }
  throw new Error("unknown mode " + mode);
}

main().then(
  (out) => { process.stdout.write(JSON.stringify(out) + "\n"); },
  (err) => { process.stdout.write(JSON.stringify({ error: String(err), status: err.status ?? null }) + "\n"); process.exitCode = 1; },
);
