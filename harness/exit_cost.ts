/**
 * What one exit round trip costs, from `bench-exits`' reports: `deno task
 * bench exits` prints it, and the scenario holds it to its goal (a count of
 * emulated instructions repeats, so the guard cannot flake).
 */
import type { SvEvent } from "./events.ts";

/** The round-trip costs one `bench-exits` run measured (`payloads/bench-exits.asm`). */
export interface ExitCost {
  cpuid: number;
  hypercall: number;
}

/**
 * The cost of one exit round trip from the guest's reports: tags 1-4 are the
 * TSC deltas of N1 and N2 CPUID and hypercall exits, 5 and 6 are N1 and N2;
 * the slope (t2 - t1) / (N2 - N1) leaves the fixed costs out.
 */
export function exitCosts(events: SvEvent[]): ExitCost | string {
  const reports = new Map<number, number>();
  for (const e of events) {
    if (e.ev === "vmexit" && e.call === "report") {
      reports.set(Number(BigInt(String(e.tag))), Number(BigInt(String(e.value))));
    }
  }
  const [t1, t2, h1, h2, n1, n2] = [1, 2, 3, 4, 5, 6].map((t) => reports.get(t));
  if (t1 === undefined || t2 === undefined || h1 === undefined || h2 === undefined) {
    return "the guest did not report its four loops";
  }
  if (n1 === undefined || n2 === undefined || n2 <= n1) return "the guest did not report N1 < N2";
  return { cpuid: (t2 - t1) / (n2 - n1), hypercall: (h2 - h1) / (n2 - n1) };
}

/**
 * The most emulated instructions a CPUID round trip may cost on `plan`'s
 * target: 300 on Bochs, 400 on QEMU (whose EPYC has no nRIP: each exit
 * decodes its instruction's length).
 */
export function exitGoal(plan: { backend: string }): number {
  return plan.backend === "qemu" ? 400 : 300;
}
