// Quoting for the few SQL texts afc must build around a user-given name (a schema, a channel, a test
// database). Everything else is a parameter ($1) or a template in migrations/.

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
