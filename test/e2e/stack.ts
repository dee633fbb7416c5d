import { execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { launchChromium as launch } from "../../scripts/chromium.mjs";
import { spawnApi, stackProcesses } from "../../scripts/api-process.mjs";
import { serveDashboard } from "../../scripts/dashboard.mjs";

/**
 * Where `npm test` collects the V8 coverage of processes and pages the tests start (unset: not
 * collected); scripts/coverage.mjs merges it with vitest's own.
 */
export const COVERAGE_DIR = process.env.EDGEQ_COVERAGE_DIR;

/** NODE_V8_COVERAGE for a child process the tests start, when coverage is collected. */
export const childCoverage = (): Record<string, string> => (COVERAGE_DIR ? { NODE_V8_COVERAGE: join(COVERAGE_DIR, "node") } : {});

/**
 * Debian's Chromium. When coverage is collected, every page records which of the dashboard's
 * scripts ran, written out when the page or the browser closes.
 */
export async function launchChromium(): Promise<Browser> {
  const browser = await launch();
  if (!COVERAGE_DIR) return browser;
  const dir = join(COVERAGE_DIR, "browser");
  mkdirSync(dir, { recursive: true });
  const open = new Set<Page>();
  const save = async (page: Page) => {
    if (!open.delete(page)) return;
    const entries = await page.coverage.stopJSCoverage().catch(() => []);
    const ran = entries.filter((e) => e.url.includes("/_app/immutable/")).map(({ url, functions }) => ({ url, functions }));
    if (ran.length > 0)
      writeFileSync(join(dir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.json`), JSON.stringify(ran));
  };
  const newPage = browser.newPage.bind(browser);
  browser.newPage = async (...args) => {
    const page = await newPage(...args);
    await page.coverage.startJSCoverage({ resetOnNavigation: false });
    open.add(page);
    const close = page.close.bind(page);
    page.close = async (...a) => {
      await save(page);
      return close(...a);
    };
    return page;
  };
  const closeBrowser = browser.close.bind(browser);
  browser.close = async (...a) => {
    await Promise.all([...open].map(save));
    return closeBrowser(...a);
  };
  return browser;
}

/** A port nothing listens on now (the OS picks it), so parallel test files never collide. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The local stack (the deployable bundle on workerd, local D1 in a workerd of its own, as `npm start` runs it, state on disk), on a port and state folder of its own. */
export class LocalStack {
  private port = 0;
  readonly token = `e2e-${Math.random().toString(36).slice(2)}`;
  private readonly state = mkdtempSync(join(tmpdir(), "edgeq-e2e-"));
  private child: ChildProcess | null = null;

  /** `vars`: more Worker variables (`--var`), e.g. EDGEQ_CORS_ORIGINS for a page on another port. */
  constructor(private readonly vars: Record<string, string> = {}) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * Starts the API (unless it runs); a restart keeps the port and the state. The first start
   * moves to another port when the one picked was taken before workerd bound it.
   */
  async start(): Promise<void> {
    if (this.child) return; // running already: a second process would be left behind when this one stops
    const first = !this.port;
    for (let attempt = 1; ; attempt++) {
      this.port ||= await freePort();
      try {
        return await this.launch();
      } catch (e) {
        if (!(e instanceof PortTaken) || !first || attempt === 3) throw e;
        this.port = 0;
      }
    }
  }

  private async launch(): Promise<void> {
    execFileSync("node", ["scripts/migrate-d1.mjs", this.state]); // as npm start does
    const child = tracked(
      spawnApi({
        direct: true,
        port: this.port,
        persistTo: this.state,
        vars: { EDGEQ_ADMIN_TOKEN: this.token, EDGEQ_LOG_REQUESTS: "false", ...this.vars },
      }),
    );
    this.child = child;
    await answers(child, `${this.url}/health`, "the API");
  }

  /** The command names of the stack's running processes (its process group), e.g. ["node", "workerd", "workerd"]. */
  processes(): string[] {
    return this.child
      ? stackProcesses(this.child.pid!, this.port)
          .map((p) => p.comm)
          .sort()
      : [];
  }

  /**
   * SIGKILLs local D1's workerd (the stack's workerd that does not serve its port) and resolves to
   * the API's exit code once the API has stopped with it (null: still running after `ms`).
   */
  async crashLocalD1(ms = 30_000): Promise<number | null> {
    const child = this.child;
    if (!child) return null;
    const all = stackProcesses(child.pid!, this.port);
    const d1 = all.find((p) => p.comm === "workerd" && !p.api);
    if (!d1) throw new Error(`no local D1 process in the stack's group: ${JSON.stringify(all)}`);
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    process.kill(d1.pid, "SIGKILL");
    const code = await Promise.race([exited, sleep(ms).then(() => undefined)]);
    if (code === undefined) return null;
    this.child = null;
    await kill(child); // the rest of its group
    return code;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    await kill(child);
  }

  /** A crash: workerd and the process that started it SIGKILLed at once, nothing flushed or closed. */
  async crash(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    await kill(child, "SIGKILL");
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.state, { recursive: true, force: true });
  }
}

/** A server that could not listen because its port was taken (by then, by someone else). */
class PortTaken extends Error {}

/**
 * Resolves once `url` answers 2xx; throws with the child's stderr if it exits first
 * (PortTaken when its port was in use) or has not answered in 2 minutes. Wrangler
 * bundles before it listens: on a loaded two-core machine (every test project at
 * once) that has taken over 30 s.
 */
async function answers(child: ChildProcess, url: string, what: string): Promise<void> {
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d));
  for (let i = 0; i < 480 && child.exitCode === null && child.signalCode === null; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await sleep(250);
  }
  if (child.exitCode !== null && /address already in use|EADDRINUSE/i.test(stderr)) throw new PortTaken(`${what}: ${url} was taken`);
  throw new Error(`${what} did not answer on ${url}${child.exitCode === null ? "" : ` (exited ${child.exitCode})`}: ${stderr}`);
}

/**
 * The detached children (a stack's API, a dashboard) still running, in this test process. When it
 * ends with some left (vitest ends its workers with SIGTERM), their process groups are killed: a
 * `beforeAll` that timed out while its stack was starting leaves no one to stop it, and a detached
 * group would outlive the run. One set and one pair of handlers per process, however many test
 * files import this module.
 */
const running: Set<ChildProcess> = ((globalThis as { edgeqTestChildren?: Set<ChildProcess> }).edgeqTestChildren ??= (() => {
  const children = new Set<ChildProcess>();
  const killAll = () => {
    for (const child of children) {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {}
    }
  };
  process.once("exit", killAll);
  process.once("SIGTERM", () => {
    killAll();
    process.kill(process.pid, "SIGTERM"); // again, with no listener left: ends as it would have (vitest stubs process.exit mid-run)
  });
  return children;
})());

function tracked(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

/** Ends a detached child and its process group; resolves once the child has exited (at once if it already has). */
async function kill(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once("exit", r));
  try {
    process.kill(-child.pid!, signal);
  } catch {}
  await exited;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A queue name of its own for each test. */
export const fresh = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;

/** Polls `check` every 50 ms until it returns something truthy, which is returned. */
export async function until<T>(check: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await sleep(50);
  }
}

/** The dashboard (the `npm run build:app` build on Pages' local server, as `npm start` serves it) for an API. */
export class Dashboard {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {}

  /** `token`: the local admin token it signs in with; without one it asks for a key. */
  static async start(api: string, port: number, token?: string): Promise<Dashboard> {
    const dir = mkdtempSync(join(tmpdir(), "edgeq-dash-"));
    const child = tracked(serveDashboard({ port, api, token, dir, stdio: ["ignore", "ignore", "pipe"] }));
    const dashboard = new Dashboard(`http://127.0.0.1:${port}`, child, dir);
    try {
      await answers(child, dashboard.url, "the dashboard");
      return dashboard;
    } catch (e) {
      await dashboard.stop();
      throw e;
    }
  }

  async stop(): Promise<void> {
    await kill(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The API's JSON answer to a call with the stack's admin token (throws on an error status, with the problem). */
export async function adminCall(stack: LocalStack, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${stack.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return text === "" ? null : JSON.parse(text);
}

/**
 * What a dashboard test needs: the local stack, its dashboard signed in with
 * the admin token (as `npm start` serves them) and Chromium. `extraPorts`
 * dashboards may be started later on `ports` (the API's CORS origins name them).
 */
export async function dashboardFixture(extraPorts = 0): Promise<{
  stack: LocalStack;
  dashboard: Dashboard;
  browser: Browser;
  ports: number[];
  call: (method: string, path: string, body?: unknown) => Promise<any>;
  close: () => Promise<void>;
}> {
  let ports: number[];
  let stack: LocalStack;
  let dashboard: Dashboard;
  for (let attempt = 1; ; attempt++) {
    ports = [];
    for (let i = 0; i <= extraPorts; i++) ports.push(await freePort());
    stack = new LocalStack({ EDGEQ_CORS_ORIGINS: ports.map((p) => `http://127.0.0.1:${p}`).join(",") });
    try {
      await stack.start();
      dashboard = await Dashboard.start(stack.url, ports[0], stack.token);
      break;
    } catch (e) {
      await stack.dispose();
      if (!(e instanceof PortTaken) || attempt === 3) throw e; // the API's CORS origins name the port: start both again
    }
  }
  const browser = await launchChromium();
  return {
    stack,
    dashboard,
    browser,
    ports: ports.slice(1),
    call: (method, path, body) => adminCall(stack, method, path, body),
    close: async () => {
      await browser.close();
      await dashboard.stop();
      await stack.dispose();
    },
  };
}

/** Where the dashboard tests leave a screenshot of each page they visit (docs/screenshots holds the chosen ones). */
export const SCREENSHOTS = "test-results/screenshots";

/** A full-page screenshot of what the test sees, as `<name>.png` under SCREENSHOTS. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** True when the page is wider than its viewport (a phone must not scroll sideways). */
export const scrollsSideways = (page: Page): Promise<boolean> =>
  page.evaluate(() => {
    const d = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document
      .documentElement;
    return d.scrollWidth > d.clientWidth;
  });

/**
 * A fault test's tally (faults injected, acknowledged work lost, work done twice, of how many
 * tasks checked) as one line on
 * stdout, `edgeq-faults {…}`: `npm run test:faults` sums these lines into its closing line.
 */
export function recordFaults(name: string, tally: { injected: number; lost: number; duplicated: number; checked: number }): void {
  console.log(`edgeq-faults ${JSON.stringify({ name, ...tally })}`);
}
