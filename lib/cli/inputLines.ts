/**
 * A command's line-oriented input: `--from <path>` or `-` for stdin, opened up front so a missing file
 * is a usage error (nothing started), then read as numbered, non-blank lines.
 *
 * Invariant guarded here: line numbers count every line of the input, blank ones included, so a
 * message naming line N points at line N of the file; the file is closed by `close()` or when the
 * reader stops early.
 */
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { UsageError } from './commandLine.ts';

export interface CommandInput {
  stream: NodeJS.ReadableStream;
  /** For messages: the path, or `stdin`. */
  name: string;
  /** Closes the file (nothing for stdin); never rejects. */
  close(): Promise<void>;
}

/**
 * Opens `path` for reading, or returns `stdin` for `-`. A file that cannot be opened, or a folder,
 * is a `UsageError` naming `--<flag>` and the path.
 */
export async function openInput(flag: string, path: string, stdin: NodeJS.ReadableStream = process.stdin): Promise<CommandInput> {
  if (path === '-') return { stream: stdin, name: 'stdin', close: async () => {} };
  let file;
  try {
    file = await open(path, 'r');
  } catch (error) {
    throw new UsageError(`--${flag}: cannot read ${path}: ${(error as Error).message}`);
  }
  // A folder opens, and fails only when read: refuse it here, before anything starts.
  if ((await file.stat()).isDirectory()) {
    await file.close();
    throw new UsageError(`--${flag}: ${path} is a folder; give a file of JSON lines, or - for stdin`);
  }
  const opened = file;
  return { stream: opened.createReadStream({ encoding: 'utf8' }), name: path, close: () => opened.close().catch(() => undefined) };
}

export interface NumberedLine {
  text: string;
  /** 1-based, counting blank lines too. */
  lineNumber: number;
}

/** The non-blank lines of `input` (any line ending), with their line numbers; read as consumed. */
export async function* nonBlankLines(input: NodeJS.ReadableStream): AsyncGenerator<NumberedLine> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNumber = 0;
  try {
    for await (const text of lines) {
      lineNumber++;
      if (text.trim() === '') continue;
      yield { text, lineNumber };
    }
  } finally {
    lines.close();
  }
}
