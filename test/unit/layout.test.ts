import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const root = join(import.meta.dirname, '../..');
/** The folders of src/, each importing only from itself and the ones before it (docs/architecture.md, "Layout"). */
const order = ['core', 'observe', 'nats', 'store', 'write', 'read', 'integration', 'react', 'lifecycle', 'http', 'host', 'testing'];

function files(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every relative import of a file (static, re-export or dynamic), as a path from the repository root without the `.js`. */
function imports(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/(?:from |import\()'(\.[^']+)\.js'/g)].map((m) => normalize(join(dirname(file), m[1]!)));
}

t.test('each folder of src/ imports only from itself and the folders before it, and nothing outside src/', async (t) => {
  const wrong: string[] = [];
  for (const file of files('src')) {
    const folder = file.split('/')[1]!;
    for (const target of imports(file)) {
      const [top, sub] = target.split('/');
      if (top !== 'src') wrong.push(`${file} → ${target}`);
      else if (order.includes(folder) && (!order.includes(sub!) || order.indexOf(sub!) > order.indexOf(folder))) wrong.push(`${file} → ${target}`);
    }
  }
  t.same(wrong, []);
});

t.test('the reference app and the examples import the runtime only by its package name, never by a path into src/', async (t) => {
  const wrong: string[] = [];
  for (const file of [...files('actors'), ...files('projections'), ...files('reactions'), ...files('examples'), 'app.ts', 'main.ts']) {
    for (const target of imports(file)) if (target === 'src' || target.startsWith('src/')) wrong.push(`${relative('.', file)} → ${target}`);
  }
  t.same(wrong, []);
});
