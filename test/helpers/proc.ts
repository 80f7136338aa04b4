/** What Linux's /proc says of a running process, for tests that watch a child datafix. */
import { readFileSync } from 'node:fs';

/**
 * CPU process `pid` has used so far, in clock ticks (utime + stime, fields 14 and 15 of
 * /proc/PID/stat; `getconf CLK_TCK` ticks a second). The command name (field 2) is in
 * parentheses and may hold spaces or `)`, so fields are counted after its last `)`.
 * @throws when the process is gone.
 */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}
