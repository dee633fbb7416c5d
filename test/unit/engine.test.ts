import { MemoryStore } from "../../durable/core/memory-store";
import { engineSuite } from "../suites/engine-suite";
import { makeHarness } from "../suites/harness";

engineSuite("memory", async (body, options) => body(makeHarness(new MemoryStore(), options?.seed, options?.settings)));
