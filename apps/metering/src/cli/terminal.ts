/** Escaping for terminal output of the ops CLI (no commander import: unit-testable). */
/**
 * Terminal output never carries raw control characters from stored data (a message key, a reason,
 * a dead letter's bytes): C0 and C1 controls, DEL, bidi overrides and line separators become
 * visible escapes. `keep` lists the characters the CLI itself writes (newline, carriage return).
 */
export function escapeForTerminal(s: string, keep: ReadonlySet<string> = new Set()): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g, (c) =>
    keep.has(c) ? c : c.charCodeAt(0) < 0x100 ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
/** JSON for a terminal: JSON.stringify leaves C1 controls, bidi overrides and U+2028/9 raw; escape them as \uXXXX. */
export function terminalJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

