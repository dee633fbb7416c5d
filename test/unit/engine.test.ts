import { MemoryStore } from "../../durable/core/memory-store";
import { engineSuite } from "../suites/engine-suite";
import { makeHarness, type WithHarness } from "../suites/harness";
import { propertySuite } from "../suites/property-suite";

const withMemory: WithHarness = async (body, options) => body(makeHarness(new MemoryStore(), options?.seed, options?.settings));

engineSuite("memory", withMemory);
propertySuite("memory", withMemory, 200);
