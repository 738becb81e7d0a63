/** A one-line "saved" note carried from a form to the page it returns to. */
let pending: string | undefined;

export function setFlash(text: string): void {
  pending = text;
}

export function takeFlash(): string | undefined {
  const text = pending;
  pending = undefined;
  return text;
}
