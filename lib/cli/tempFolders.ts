/**
 * Temporary folders of a command (the sink's spool): named after the process that made them, removed
 * on every way out of the process but SIGKILL, and, when a run was killed, removed by the next run.
 *
 * Invariant guarded here: a folder is removed by the process that made it, or by a later run only
 * once the process named in it is gone; folders of a live process (this one or another) and folders
 * not named by this module are never touched.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A folder made by `createTempFolder`. */
export interface TempFolder {
  readonly path: string;
  /** Removes the folder and everything in it; never rejects. */
  remove(): Promise<void>;
}

export interface TempFolderOptions {
  /** Where the folder is made; default `os.tmpdir()`. */
  root?: string;
}

/** Folders of this process not removed yet: removed synchronously when the process exits. */
const live = new Set<string>();
let exitHooked = false;

function removeLiveFolders(): void {
  for (const path of live) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // The process is ending: nothing can report it; the next run's cleanup will find the folder.
    }
  }
  live.clear();
}

/** `sluice-<label>-pid<pid>-`: the start of this label's folder names, with the pid of their maker. */
function prefixOf(label: string, pid: number): string {
  return `sluice-${label}-pid${pid}-`;
}

/**
 * Makes a fresh folder `sluice-<label>-pid<pid>-XXXXXX` under the temp root, after removing the ones a
 * dead process left under the same label (see `removeLeftovers`). It is removed by `remove()`, or when
 * the process exits (`process.exit`, the end of the event loop, an uncaught error).
 *
 * @example const spool = await createTempFolder('sink'); ...; await spool.remove();
 */
export async function createTempFolder(label: string, options: TempFolderOptions = {}): Promise<TempFolder> {
  if (!/^[a-z0-9-]+$/.test(label)) throw new RangeError(`createTempFolder: label must be lower-case letters, digits and '-', got ${JSON.stringify(label)}`);
  const root = options.root ?? tmpdir();
  await removeLeftovers(label, { root });
  const path = await mkdtemp(join(root, prefixOf(label, process.pid)));
  live.add(path);
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', removeLiveFolders);
  }
  return {
    path,
    remove: async () => {
      live.delete(path);
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

/**
 * Removes the folders `sluice-<label>-pid<N>-XXXXXX` under the temp root whose process N is gone (a
 * run killed by SIGKILL or a crash of the machine leaves them); returns their paths. A pid reused by
 * a live process keeps its folder until that process ends: left over, never wrongly removed. Our own
 * pid counts as gone for folders this process did not make: a container restarted after a kill runs
 * the tool as pid 1 again, and its last run's spool must not stay forever.
 */
export async function removeLeftovers(label: string, options: TempFolderOptions = {}): Promise<string[]> {
  const root = options.root ?? tmpdir();
  const pattern = new RegExp(`^sluice-${label}-pid(\\d+)-[A-Za-z0-9]{6}$`);
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(pattern.exec(name)?.[1]);
    const path = join(root, name);
    if (!Number.isSafeInteger(pid) || pid <= 0 || (pid === process.pid ? live.has(path) : processIsAlive(pid))) continue;
    await rm(path, { recursive: true, force: true }).then(() => removed.push(path), () => undefined);
  }
  return removed;
}

/** True when a process `pid` exists (ours or another user's). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
