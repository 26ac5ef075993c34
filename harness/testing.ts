/** Fixtures shared by the harness's unit tests. */
import type { RunInfo, RunPlan, Scenario } from "./scenario.ts";

/** A run on QEMU's EPYC, -kernel, SeaBIOS; `over` changes what a test needs. */
export function runInfo(over: Partial<RunInfo> = {}): RunInfo {
  return {
    backend: "qemu",
    cpu: "EPYC",
    boot: "kernel",
    firmware: "bios",
    timeoutS: 10,
    vendor: "amd",
    features: new Set(["svm", "npt"]),
    cmdline: "",
    memoryMiB: 256,
    smp: 1,
    ...over,
  };
}

/** A run of `scenario` on QEMU's EPYC, -kernel, SeaBIOS; `over` changes what a test needs. */
export function runPlan(scenario: Scenario, over: Partial<RunPlan> = {}): RunPlan {
  return {
    scenario,
    backend: "qemu",
    cpu: "EPYC",
    boot: "kernel",
    firmware: "bios",
    timeoutS: 10,
    cmdline: "",
    ...over,
  };
}
