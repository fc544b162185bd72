import 'reflect-metadata';
import { parseArgs, setUp } from './setup';
async function main() {
  const ctx = await setUp(parseArgs(process.argv.slice(2), process.cwd()));
  await ctx.close();
}
main().catch((e) => { console.error(e); process.exit(1); });
