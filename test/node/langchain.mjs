// Drives paygate with LangChain.js (`@langchain/openai`'s ChatOpenAI on Chat
// Completions), the way a bot written with it does.
// Usage: PAYGATE_URL=http://host:port/v1 PAYGATE_KEY=… node langchain.mjs <mode>
// Prints one JSON object on stdout for the Go test to check; its members are
// those of aisdk.mjs, so that the Go tests read both alike.
//
// ChatOpenAI retries on its own (LangChain's AsyncCaller: any error but a
// 400, 401, 402, 403, 404, 405, 406, 407, 409 or 413, x-should-retry or not;
// PAYGATE_RETRIES: its maxRetries, 0 unless set; its default is 6), and
// asks for usage when streaming (streamUsage).
import { ChatOpenAI } from "@langchain/openai";
import { HumanMessage, ToolMessage } from "@langchain/core/messages";

const [kind, ...flags] = (process.argv[2] ?? "").split(":");
const stream = flags.includes("stream");
// opts: a strict tool schema, parallel_tool_calls and a token cap.
const opts = flags.includes("opts");
const model = new ChatOpenAI({
  ...(opts ? { maxTokens: 500 } : {}),
  model: process.env.PAYGATE_MODEL,
  apiKey: process.env.PAYGATE_KEY,
  maxRetries: Number(process.env.PAYGATE_RETRIES ?? 0),
  streamUsage: true,
  // The raw answer (each chunk's, streaming) in additional_kwargs, where a
  // bot finds the paygate member, which the message does not carry.
  __includeRawResponse: true,
  configuration: {
    baseURL: process.env.PAYGATE_URL,
    defaultHeaders: process.env.PAYGATE_OPENID ? { "X-WeChat-OpenID": process.env.PAYGATE_OPENID } : {},
  },
});
const weather = {
  type: "function",
  function: { name: "get_weather", description: "The weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
};
const bound = kind === "mixed" ? model.bindTools([weather], opts ? { strict: true, parallel_tool_calls: false } : {}) : model;

let paygate = null;
function seeRaw(raw) {
  if (raw?.paygate) paygate = raw.paygate;
}

// call sends messages once, streamed or not, and returns the AIMessage (the
// chunks concatenated, streaming).
async function call(messages) {
  if (!stream) {
    const m = await bound.invoke(messages);
    seeRaw(m.additional_kwargs?.__raw_response);
    return m;
  }
  let acc;
  for await (const c of await bound.stream(messages)) {
    seeRaw(c.additional_kwargs?.__raw_response);
    acc = acc ? acc.concat(c) : c;
  }
  return acc;
}

async function main() {
  const messages = [new HumanMessage("Say hello")];
  const called = [], steps = [];
  const total = { input: 0, output: 0, total: 0 };
  try {
    // The bot's tool loop: runs each get_weather call it gets, at most 4 steps.
    for (let i = 0; i < 4; i++) {
      const m = await call(messages);
      const u = m.usage_metadata;
      if (u) { total.input += u.input_tokens; total.output += u.output_tokens; total.total += u.total_tokens; }
      steps.push({
        finish: m.response_metadata?.finish_reason ?? null, text: m.content,
        toolCalls: (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.name, input: c.args })),
        errors: (m.invalid_tool_calls ?? []).map((c) => `${c.name}: ${c.error}`),
      });
      messages.push(m);
      if (!m.tool_calls?.length) {
        return { text: m.content, finish: m.response_metadata?.finish_reason ?? null, called, usage: total, steps, paygate };
      }
      for (const c of m.tool_calls) {
        if (c.name !== "get_weather") throw new Error("a call of a tool the bot does not have: " + c.name);
        called.push(c.args.city);
        messages.push(new ToolMessage({ tool_call_id: c.id, content: JSON.stringify({ celsius: 21 }) }));
      }
    }
    throw new Error("no answer after 4 steps");
  } catch (err) {
    return {
      error: String(err), name: err?.constructor?.name ?? null, status: err.status ?? null, message: err.message ?? null,
      code: err.code ?? null, paygate: err.error?.paygate ?? null, paygatePart: paygate, called, steps,
    };
  }
}

main().then(
  (out) => { process.stdout.write(JSON.stringify(out) + "\n"); },
  (err) => { process.stdout.write(JSON.stringify({ error: String(err), uncaught: true }) + "\n"); process.exitCode = 1; },
);
