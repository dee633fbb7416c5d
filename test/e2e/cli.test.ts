import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EdgeqClient } from "../../client/index";
import { childCoverage, LocalStack, fresh, sleep, until } from "./stack";

// The built bin (`npm test` builds dist/ first), run as a user runs it.
const stack = new LocalStack();
const dir = mkdtempSync(join(tmpdir(), "edgeq-cli-"));
const bin = resolve("dist/cli.js");
let edgeq: EdgeqClient;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `edgeq ...`; `done` settles when it exits. */
function start(args: string[], env: Record<string, string | undefined> = {}) {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: dir, // no ./.edgeq/config.json here, and HOME is the same empty folder
    env: { PATH: process.env.PATH, HOME: dir, EDGEQ_URL: stack.url, EDGEQ_TOKEN: stack.token, ...childCoverage(), ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d));
  child.stderr.on("data", (d: Buffer) => (stderr += d));
  const done = new Promise<Run>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return { child, done, stdout: () => stdout };
}

const cli = (args: string[], env?: Record<string, string | undefined>) => start(args, env).done;

beforeAll(async () => {
  await stack.start();
  edgeq = new EdgeqClient({ url: stack.url, token: stack.token });
}, 120_000);
afterAll(async () => {
  await stack.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("the edgeq CLI against the local stack", { timeout: 60_000 }, () => {
  it("--help lists every command; bad usage exits 2, no server exits 3", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    for (const command of [
      "enqueue",
      "get",
      "list",
      "search",
      "events",
      "cancel",
      "retry",
      "queues",
      "stats",
      "workers",
      "work",
      "tail",
      "keys create",
      "limits",
      "groups",
      "schedule add",
    ])
      expect(help.stdout).toContain(command);
    expect(await cli(["frobnicate"])).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "frobnicate"') });
    expect(await cli(["queues"], { EDGEQ_TOKEN: undefined })).toMatchObject({ code: 2, stderr: expect.stringContaining("no token") });
    expect(await cli(["enqueue", "q", "n", "--priority", "high"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--priority"),
    });
    expect(await cli(["enqueue", "q", "n", "--payload", "{nope"])).toMatchObject({ code: 2, stderr: expect.stringContaining("--payload") });
    const unreachable = await cli(["queues"], { EDGEQ_URL: "http://127.0.0.1:47" });
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain("cannot reach the API");
  });

  it("reads url and token from a config file when flags and env are absent", async () => {
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ url: stack.url, token: stack.token }));
    const run = await cli(["queues", "--json", "--config", config], { EDGEQ_URL: undefined, EDGEQ_TOKEN: undefined });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toHaveProperty("items");
    expect(await cli(["queues", "--config", join(dir, "missing.json")])).toMatchObject({ code: 2 });
  });

  it("enqueue, get, list, cancel and retry print what the API answered", async () => {
    const queue = fresh("cli");
    const made = await cli(["enqueue", queue, "send", "--payload", '{"to":"ada"}', "--priority", "9", "--tag", "a", "--tag", "b"]);
    expect(made.code).toBe(0);
    const id = made.stdout.trim();
    expect(id).toMatch(new RegExp(`^[0-9A-Z]{26}\\.\\d+\\.${queue}$`));

    const got = await cli(["get", id]);
    expect(got.stdout).toMatch(/^status\s+pending$/m);
    expect(got.stdout).toMatch(/^priority\s+9$/m);
    expect(got.stdout).toMatch(/^payload\s+\{"to":"ada"\}$/m);
    expect(JSON.parse((await cli(["get", id, "--json"])).stdout)).toMatchObject({ id, tags: ["a", "b"], payload: { to: "ada" } });

    await cli(["enqueue", queue, "other"]);
    const list = await cli(["list", queue, "--limit", "1"]);
    const lines = list.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAME\s+STATUS\s+PRIORITY\s+ATTEMPTS\s+CREATEDAT$/);
    expect(lines[1]).toMatch(new RegExp(`^${id.replace(/\./g, "\\.")}\\s+send\\s+pending\\s+9\\s+0\\s`));
    expect(list.stdout).toContain(`more: --cursor ${id}`);

    expect(await cli(["cancel", id])).toMatchObject({ code: 0, stdout: `${id} cancelled\n` });
    const cancelled = JSON.parse((await cli(["list", queue, "--status", "cancelled", "--json"])).stdout);
    expect(cancelled.items.map((t: { id: string }) => t.id)).toEqual([id]);
    expect(await cli(["retry", id])).toMatchObject({ code: 0, stdout: `${id} pending\n` });
  });

  it("search goes to history (text, status, since) and events prints a timeline", async () => {
    const queue = fresh("hist");
    const id = (await cli(["enqueue", queue, "send-welcome", "--payload", '{"to":"grace@example.com","plan":"gold"}'])).stdout.trim();
    await cli(["enqueue", queue, "send-welcome", "--payload", '{"to":"alan@example.com"}']);
    expect(await cli(["cancel", id])).toMatchObject({ code: 0 });
    // History lags the live queue by about a second (the shard's flush interval).
    let found: { items: { id: string; status: string }[] } = { items: [] };
    for (let i = 0; i < 50 && found.items.length === 0; i++) {
      found = JSON.parse((await cli(["search", "--q", '"grace@example.com"', "--status", "cancelled", "--since", "10m", "--json"])).stdout);
      if (found.items.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(found.items.map((t) => [t.id, t.status])).toEqual([[id, "cancelled"]]);
    const table = await cli(["search", queue, "--q", "gold OR alan"]);
    expect(table.stdout.trim().split("\n")[0]).toMatch(/^ID\s+NAME\s+QUEUE\s+STATUS\s+PRIORITY\s+ATTEMPTS\s+CREATEDAT\s+FINISHEDAT$/);
    expect(table.stdout.trim().split("\n")).toHaveLength(3);
    expect((await cli(["search", "--q", '"grace@example.com"', "--since", "2030-01-01T00:00:00Z", "--json"])).stdout).toContain(
      '"items": []',
    );
    expect(await cli(["search", "--since", "yesterday"])).toMatchObject({ code: 2, stderr: expect.stringContaining("--since") });
    expect(await cli(["search", "--q", '"open'])).toMatchObject({ code: 1, stderr: expect.stringContaining("?q") });

    const events = await cli(["events", id]);
    expect(events.code).toBe(0);
    const rows = events.stdout.trim().split("\n");
    expect(rows[0]).toMatch(/^AT\s+TYPE\s+STATUS\s+DETAIL$/);
    expect(rows.slice(1).map((r) => r.split(/\s+/)[1])).toEqual(["enqueued", "cancelled"]);
    expect(JSON.parse((await cli(["events", id, "--json"])).stdout).items).toHaveLength(2);
  });

  it("dependencies and children from the command line: --depends-on, --parent, --wait-for-children, children, seal", async () => {
    const queue = fresh("dag");
    const first = (await cli(["enqueue", queue, "upload"])).stdout.trim();
    const after = (await cli(["enqueue", queue, "resize", "--depends-on", first])).stdout.trim();
    expect((await cli(["get", after])).stdout).toMatch(/^status\s+blocked$/m);
    const parent = (await cli(["enqueue", queue, "digest", "--wait-for-children"])).stdout.trim();
    const child = (await cli(["enqueue", queue, "page", "--parent", parent])).stdout.trim();
    const children = await cli(["children", parent]);
    expect(children.stdout).toMatch(new RegExp(`^${child.replace(/\./g, "\\.")}\\s+page\\s+pending`, "m"));
    expect(await cli(["seal", parent])).toMatchObject({ code: 0, stdout: `${parent} blocked (sealed)\n` });
    const bad = await cli(["enqueue", queue, "x", "--depends-on", "01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.nowhere"]);
    expect(bad).toMatchObject({
      code: 1,
      stderr: expect.stringContaining("/dependsOn/0: task 01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.nowhere does not exist"),
    });
  });

  it("limits, groups and schedules from the command line", async () => {
    const queue = fresh("flow");
    const set = await cli([
      "limits",
      queue,
      "--concurrency",
      "4",
      "--start-limit",
      "20/1000",
      "--group-concurrency",
      "2",
      "--group-override",
      "vip=3",
    ]);
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^concurrency\s+4$/m);
    expect(set.stdout).toMatch(/^startLimit\s+20\/1000ms$/m);
    expect(set.stdout).toMatch(/^groupOverrides\s+\{"vip":\{"concurrency":3\}\}$/m);
    const off = await cli(["limits", queue, "--concurrency", "off", "--group-override", "vip=off", "--json"]);
    expect(JSON.parse(off.stdout).settings).toMatchObject({ concurrency: null, groupLimits: { overrides: {} } });
    expect(await cli(["limits", queue, "--start-limit", "fast"])).toMatchObject({ code: 2 });

    await cli(["enqueue", queue, "t", "--group", "acme"]);
    await cli(["enqueue", queue, "t", "--group", "acme"]);
    expect((await cli(["groups", queue])).stdout).toMatch(/^acme\s+2\s+0$/m);

    const added = await cli([
      "schedule",
      "add",
      queue,
      "nightly",
      "--cron",
      "0 3 * * *",
      "--timezone",
      "Europe/Berlin",
      "--name",
      "report",
      "--overlap",
      "skip",
    ]);
    expect(added.code).toBe(0);
    expect(added.stdout.split("\n")[0]).toBe("nightly: next runs");
    expect(added.stdout.trim().split("\n")).toHaveLength(6);
    expect((await cli(["schedules", queue])).stdout).toMatch(/^nightly\s+0 3 \* \* \*\s+Europe\/Berlin\s+report\s+skip\s+false\s/m);
    const ran = (await cli(["schedule", "run", queue, "nightly"])).stdout.trim();
    expect((await cli(["get", ran])).stdout).toMatch(/^name\s+report$/m);
    expect((await cli(["schedule", "pause", queue, "nightly"])).stdout).toBe("nightly paused\n");
    expect(await cli(["schedule", "rm", queue, "nightly"])).toMatchObject({ code: 0, stdout: "removed nightly\n" });
    const bad = await cli(["schedule", "add", queue, "x", "--cron", "whenever", "--name", "t"]);
    expect(bad).toMatchObject({ code: 1, stderr: expect.stringContaining("/cron") });
  });

  it("an API error exits 1 with the problem's title, detail and pointers", async () => {
    const run = await cli(["enqueue", fresh("cli"), "x", "--priority", "11"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^edgeq: .*\(400\): /);
    expect(run.stderr).toContain("/priority");
    const missing = await cli(["get", "01M8JJMGYR397F017DPK9H43YG.0.nowhere"]);
    expect(missing).toMatchObject({ code: 1, stderr: expect.stringContaining("(404)") });
  });

  it("enqueue --file sends a JSON lines file in chunks; a bad line enqueues nothing", async () => {
    const queue = fresh("bulk");
    const file = join(dir, "tasks.jsonl");
    writeFileSync(
      file,
      Array.from({ length: 250 }, (_, i) => JSON.stringify({ name: "row", payload: { i }, priority: 1 + (i % 10) })).join("\n") + "\n",
    );
    const run = await cli(["enqueue", queue, "--file", file, "--chunk", "100"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`enqueued 250 tasks on ${queue}\n`);
    expect(run.stderr).toContain("250/250");
    expect((await edgeq.queue(queue).stats()).counts.pending).toBe(250);

    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, `{"name":"ok"}\n{"name":\n`);
    const refused = await cli(["enqueue", fresh("bulk"), "--file", bad]);
    expect(refused).toMatchObject({ code: 2, stderr: expect.stringContaining("line 2") });
    const stats = JSON.parse((await cli(["stats", queue, "--json"])).stdout);
    expect(stats.counts.pending).toBe(250);
  });

  it("queues, stats, pause and resume", async () => {
    const queue = fresh("ops");
    await cli(["enqueue", queue, "a"]);
    await cli(["enqueue", queue, "b"]);
    const queues = await cli(["queues"]);
    expect(queues.stdout.split("\n")[0]).toMatch(/^NAME\s+SHARDS\s+PAUSED\s+PENDING\s+RUNNING\s+SCHEDULED\s+COMPLETED\s+FAILED$/);
    expect(queues.stdout).toMatch(new RegExp(`^${queue}\\s+\\d+\\s+false\\s+2\\s+0\\s+0\\s+0\\s+0$`, "m"));
    expect((await cli(["stats", queue])).stdout).toMatch(/^pending\s+2$/m);
    expect(await cli(["pause", queue])).toMatchObject({ code: 0, stdout: `${queue} paused\n` });
    expect(await cli(["resume", queue])).toMatchObject({ code: 0, stdout: `${queue} running\n` });
  });

  it("work runs a shell command per task: stdout is the result, a failing exit fails the attempt", async () => {
    const queue = fresh("work");
    const ok = await edgeq.queue(queue).add("double", { n: 21 });
    const bad = await edgeq.queue(queue).add("boom", null, { maxAttempts: 1 });
    const script =
      `input=$(cat); if [ "$EDGEQ_TASK_NAME" = boom ]; then echo "it broke" >&2; exit 3; fi; ` +
      `echo "{\\"got\\":$input,\\"id\\":\\"$EDGEQ_TASK_ID\\",\\"attempt\\":$EDGEQ_TASK_ATTEMPT}"`;
    const worker = start(["work", queue, "--concurrency", "2", "--", "sh", "-c", script]);
    const done = await until(async () => {
      const [a, b] = await Promise.all([edgeq.get(ok.id), edgeq.get(bad.id)]);
      return a.status === "completed" && b.status === "failed" && [a, b];
    });
    expect(done[0].result).toEqual({ got: { n: 21 }, id: ok.id, attempt: 1 });
    expect(done[1].error?.message).toMatch(/exited with code 3: it broke/);
    const workers = await cli(["workers"]);
    expect(workers.stdout).toMatch(new RegExp(`edgeq-cli ${queue}\\s+(active|idle)\\s+\\["${queue}"\\]\\s+2\\s`));
    worker.child.kill("SIGTERM");
    const exit = await worker.done;
    expect(exit.code).toBe(0);
    expect(exit.stderr).toContain(`completed ${ok.id}`);
    expect(exit.stderr).toContain(`failed    ${bad.id}`);
  });

  it("work --module runs a module's default export, and SIGTERM lets the running task finish", async () => {
    const queue = fresh("module");
    const handler = join(dir, "handler.mjs");
    const started = join(dir, "module-started");
    writeFileSync(
      handler,
      `import { writeFileSync } from "node:fs";\nexport default async (task) => { writeFileSync(${JSON.stringify(started)}, task.id); await new Promise((r) => setTimeout(r, 1500)); return { upper: task.payload.toUpperCase() }; };\n`,
    );
    const task = await edgeq.queue(queue).add("shout", "hello");
    const worker = start(["work", queue, "--module", handler]);
    // The handler has the task in hand (not merely leased on the server: the answer may still be on its way).
    await until(async () => existsSync(started));
    worker.child.kill("SIGTERM");
    const exit = await worker.done;
    expect(exit.code).toBe(0);
    expect(await edgeq.get(task.id), exit.stderr).toMatchObject({ status: "completed", result: { upper: "HELLO" } });
  });

  it("tail --task prints each change of a task until it finishes", async () => {
    const queue = fresh("tail");
    const task = await edgeq.queue(queue).add("watched");
    const tail = start(["tail", "--task", task.id, "--interval", "100"]);
    await until(async () => tail.stdout().includes("pending"));
    const [lease] = (await edgeq.call<{ leases: { leaseToken: string }[] }>("POST", `/queues/${queue}/leases`, { workerId: "w", max: 1 }))
      .leases;
    await sleep(300);
    await edgeq.call("POST", `/tasks/${task.id}/complete`, { leaseToken: lease.leaseToken, result: 1 });
    const exit = await tail.done;
    expect(exit.code).toBe(0);
    const states = exit.stdout
      .trim()
      .split("\n")
      .map((l) => l.split(" ").slice(2).join(" "));
    expect(states).toEqual(["pending attempts=0", "running attempts=1", "completed attempts=1"]);
  });

  it("report --fields … --format csv streams history to stdout with a progress line on stderr; an unknown field is refused", async () => {
    const queue = fresh("report");
    const made = await edgeq
      .queue(queue)
      .addBulk(Array.from({ length: 30 }, (_, i) => ({ name: i % 3 === 0 ? "=cmd" : "plain", payload: { n: i } })));
    // History lags the live queue by about a second.
    await until(async () => (await cli(["search", "--queue", queue, "--limit", "50", "--json"])).stdout.includes(made[29].id));
    const res = await cli(["report", "--fields", "id,name,status", "--queue", queue, "--format", "csv"]);
    expect(res.code).toBe(0);
    const lines = res.stdout.split("\r\n").filter((l) => l !== "");
    expect(lines[0]).toBe("id,name,status");
    expect(
      lines
        .slice(1)
        .map((l) => l.split(",")[0])
        .sort(),
    ).toEqual(made.map((t) => t.id).sort());
    expect(lines.filter((l) => l.includes(",'=cmd,"))).toHaveLength(10);
    expect(res.stderr).toMatch(/^30 rows, \d+\.\d s$/m);
    const grouped = await cli(["report", "--group-by", "name", "--queue", queue, "--format", "jsonl"]);
    expect(
      grouped.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .map((g) => [g.name, g.count]),
    ).toEqual([
      ["plain", 20],
      ["=cmd", 10],
    ]);
    const bad = await cli(["report", "--fields", "id,secret"]);
    expect(bad).toMatchObject({ code: 1, stderr: expect.stringContaining('unknown field "secret"') });
  });

  it("keys create / list / revoke, and the created key works until revoked", async () => {
    const created = await cli([
      "keys",
      "create",
      "--role",
      "producer",
      "--name",
      "cli-test",
      "--per-minute",
      "50",
      "--per-hour",
      "500",
      "--json",
    ]);
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout) as { id: string; key: string };
    expect(key.key).toMatch(/^eq_/);
    const human = await cli(["keys", "create", "--role", "read-only", "--name", "shown-once"]);
    expect(human.stdout).toMatch(/^key \(shown once\): eq_/m);

    const list = await cli(["keys", "list"]);
    expect(list.stdout).toMatch(new RegExp(`^${key.id}\\s+default\\s+producer\\s+cli-test\\s+\\{"perMinute":50,"perHour":500\\}`, "m"));
    expect(list.stdout).not.toContain(key.key);

    const asProducer = await cli(["enqueue", fresh("keyed"), "x"], { EDGEQ_TOKEN: key.key });
    expect(asProducer.code).toBe(0);
    expect(await cli(["keys", "revoke", key.id])).toMatchObject({ code: 0, stdout: `revoked ${key.id}\n` });
    const afterRevoke = await cli(["enqueue", fresh("keyed"), "x"], { EDGEQ_TOKEN: key.key });
    expect(afterRevoke).toMatchObject({ code: 1, stderr: expect.stringContaining("(401)") });
    expect(await cli(["keys", "create", "--role", "producer", "--name", "x", "--per-minute", "5"])).toMatchObject({ code: 2 });
  });
});

describe("examples/ against the local stack", { timeout: 60_000 }, () => {
  const node = (file: string) =>
    spawn(process.execPath, [file], {
      env: { PATH: process.env.PATH, EDGEQ_URL: stack.url, EDGEQ_TOKEN: stack.token, ...childCoverage() },
    });

  it("the producer enqueues, the consumer runs every task and stops cleanly on SIGTERM", async () => {
    const producer = node("examples/producer.mjs");
    let printed = "";
    producer.stdout.on("data", (d: Buffer) => (printed += d));
    expect(await new Promise((r) => producer.on("close", r))).toBe(0);
    expect(printed).toContain("batch      20/20");

    const consumer = node("examples/consumer.mjs");
    let log = "";
    consumer.stdout.on("data", (d: Buffer) => (log += d));
    const images = edgeq.queue("images");
    await until(async () => (await images.stats()).counts.completed === 21);
    consumer.kill("SIGTERM");
    expect(await new Promise((r) => consumer.on("close", r))).toBe(0);
    expect(log.match(/^done /gm)).toHaveLength(21);
    expect(log).toMatch(/stopped\n$/);
    expect((await images.stats()).counts).toMatchObject({ completed: 21, scheduled: 1 });
  });
});
