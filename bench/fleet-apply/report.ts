import { table } from '../../src/cli/output.js';
import type { SizeResult, Step } from './run-size.js';

/** The figures as a table on stdout, then the ratios against the goals of issue 4. */
const f = (x: number | undefined, d = 2) => (x === undefined ? '-' : x.toFixed(d));

export function ratios(r: SizeResult) {
  const tuned = r.ansible.find((a) => a.forks === 50) ?? r.ansible[0];
  const e = r.edgectl;
  // Ansible stopped at its limit: its time, and so the ratio, is a lower bound.
  const div = (a?: Step, b?: Step) => ((a?.ok || a?.timedOut) && b?.ok && b.wallS > 0 ? a.wallS / b.wallS : undefined);
  return {
    ansibleForks: tuned?.forks,
    firstApply: div(tuned?.first, e.apply),
    firstApplyLowerBound: !!tuned?.first?.timedOut,
    noopApply: div(tuned?.noop, e.noopApply),
    noopApplyLowerBound: !!tuned?.noop?.timedOut,
    firstVsBaseline: e.apply?.ok && r.baseline?.first?.ok ? e.apply.wallS / r.baseline.first.wallS : undefined,
    noopVsBaseline: e.noopApply?.ok && r.baseline?.noop?.ok ? e.noopApply.wallS / r.baseline.noop.wallS : undefined,
    edgectlPeakRssMb: Math.max(e.plan?.maxRssMb ?? 0, e.apply?.maxRssMb ?? 0, e.noopPlan?.maxRssMb ?? 0, e.noopApply?.maxRssMb ?? 0) || undefined,
  };
}

export function printReport(results: SizeResult[]): void {
  const t: (string | number)[][] = [];
  for (const r of results) {
    const row = (tool: string, name: string, s: Step | undefined, check = '') => {
      if (s) t.push([r.nodes, tool, name, `${s.timedOut ? '≥ ' : ''}${f(s.wallS)}`, f(s.cpuS, 1), s.nodeCpuS === undefined ? '-' : `${f(s.nodeCpuS, 1)} (${f((s.nodeCpuS * 1000) / r.nodes, 0)} ms/node)`, f(s.maxRssMb, 0), f(s.treeRssMb, 0), String(s.exitCode), [s.ok ? 'ok' : 'FAILED', s.note, check].filter(Boolean).join('; ')]);
    };
    const served = (s?: { nodesServingSite: number; appInstances: number }) => (s ? `${s.nodesServingSite}/${r.nodes} nodes serve, ${s.appInstances} app instances` : '');
    row('edgectl', 'render (for Ansible)', r.render);
    row('edgectl', 'plan', r.edgectl.plan);
    row('edgectl', 'apply (first)', r.edgectl.apply, served(r.edgectl.served));
    row('edgectl', 'plan (no changes)', r.edgectl.noopPlan);
    row('edgectl', 'apply (no-op)', r.edgectl.noopApply);
    row('baseline', 'render (for the baseline)', r.baseline?.render);
    row(`baseline c=${r.baseline?.concurrency ?? '-'}`, 'apply (first)', r.baseline?.first);
    row(`baseline c=${r.baseline?.concurrency ?? '-'}`, 'apply (no-op)', r.baseline?.noop);
    for (const a of r.ansible) {
      row(`ansible f=${a.forks}`, 'first run', a.first, [served(a.served), a.first ? `changed=${a.first.changed}` : ''].filter(Boolean).join(', '));
      row(`ansible f=${a.forks}`, 'no-change run', a.noop, a.noop ? `changed=${a.noop.changed}` : '');
    }
  }
  // Colour and borders only on a TTY (NO_COLOR respected), as edgectl's own tables.
  console.log(table(['nodes', 'tool', 'step', 'wall s', 'CPU s', 'node CPU s', 'peak RSS MB', 'tree RSS MB', 'exit', 'check'], t));
  for (const r of results) {
    const q = ratios(r);
    const line = (name: string, v: number | undefined, goal: number, lower: boolean) =>
      `  ${name}: ${v === undefined ? 'not measured' : `${lower ? '≥ ' : ''}${v.toFixed(1)}× (goal ≥ ${goal}×: ${v >= goal ? 'met' : lower ? 'not shown (Ansible stopped at its limit)' : 'NOT met'})`}`;
    console.log(`${r.nodes} nodes (Ansible forks ${q.ansibleForks ?? '-'}):`);
    console.log(line('first apply, Ansible / edgectl', q.firstApply, 5, q.firstApplyLowerBound));
    console.log(line('no-op apply, Ansible / edgectl', q.noopApply, 10, q.noopApplyLowerBound));
    const vs = (name: string, v: number | undefined) => `  ${name}: ${v === undefined ? 'not measured' : `${v.toFixed(2)}× (goal ≤ 1.5×: ${v <= 1.5 ? 'met' : 'NOT met'})`}`;
    console.log(vs('first apply, edgectl / minimal apply', q.firstVsBaseline));
    console.log(vs('no-op apply, edgectl / minimal no-op', q.noopVsBaseline));
    const rss = q.edgectlPeakRssMb;
    console.log(`  edgectl peak RSS: ${rss === undefined ? 'not measured' : `${rss.toFixed(0)} MB${r.nodes >= 200 ? ` (goal < 300 MB: ${rss < 300 ? 'met' : 'NOT met'})` : ''}`}`);
    for (const p of r.pending) console.log(`  pending: ${p}`);
  }
}
