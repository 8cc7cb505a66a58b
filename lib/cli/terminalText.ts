/**
 * Text from outside (a flag's value, a file name, a server's answer) made safe to print: control
 * characters become visible escapes, so a value holding a newline or an escape sequence cannot forge
 * a line of output, move the cursor or recolour the terminal.
 *
 * Invariant guarded here: the result holds no C0 control character (U+0000..U+001F), no DEL and no C1
 * control character (U+0080..U+009F); every other character is kept as it was.
 */

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\x1b': '\\e' };

/**
 * `text` with each control character written as an escape: `\n`, `\r`, `\t`, `\e` (ESC), the rest
 * as `\xHH` (`\x07` for BEL, `\x9b` for CSI); a backslash is left alone.
 *
 * @example escapeControl('a\nb\x1b[31m') // 'a\\nb\\e[31m'
 */
export function escapeControl(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (char) => NAMED[char] ?? `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
