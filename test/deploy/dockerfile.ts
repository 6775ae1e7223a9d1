/** A small reader of docker/Dockerfile: instructions (continuations joined, comments dropped) by build stage. */
export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
export interface Stage {
  from: string;
  name: string | null;
  instructions: Instruction[];
}

export function dockerStages(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let l = lines[i];
    if (/^\s*(#|$)/.test(l)) continue;
    while (/\\\s*$/.test(l) && i + 1 < lines.length) l = l.replace(/\\\s*$/, ' ') + lines[++i].replace(/^\s*#.*$/, '');
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(l);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: cannot read "${l}"`);
    const ins = { keyword: m[1].toUpperCase(), args: m[2].trim().replace(/\s+/g, ' '), line: start + 1 };
    if (ins.keyword === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!f) throw new Error(`Dockerfile line ${start + 1}: cannot read FROM ${ins.args}`);
      stages.push({ from: f[1], name: f[2] ?? null, instructions: [] });
    } else {
      if (!stages.length) throw new Error(`Dockerfile line ${start + 1}: ${ins.keyword} before FROM`);
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return stages;
}

/** `ENV a=1 b="x y"` -> {a: '1', b: 'x y'} (the key=value form only). */
export function envPairs(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)) out[m[1]] = m[3] ?? m[2];
  return out;
}
