/** Text that may quote command line arguments (commander's usage errors), with every URL's password hidden. */
import { redactUrl } from '@crm/core';

const URL_IN_TEXT = /[A-Za-z][A-Za-z0-9+.-]*:\/\/\S+/g;

/**
 * `text` with every `scheme://...` in it passed through `redactUrl`. The arguments the command was given are
 * replaced whole first: a password holding a space or a quote would otherwise end the match early.
 */
export function redactText(text: string, argv: readonly string[] = []): string {
  let redacted = text;
  const urls = argv
    .map((argument) => {
      const start = argument.search(/[A-Za-z][A-Za-z0-9+.-]*:\/\//);
      return start === -1 ? '' : argument.slice(start);
    })
    .filter((url) => url !== '')
    .sort((a, b) => b.length - a.length);
  for (const url of urls) {
    const shown = redactUrl(url);
    if (shown !== url) redacted = redacted.split(url).join(shown);
  }
  return redacted.replace(URL_IN_TEXT, (url) => redactUrl(url));
}
