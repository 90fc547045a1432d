// The SDK's wire types match the server's route schemas: compiles wire-contract.types.ts (the
// type-level assertions) with the project's compiler options and fails with the compiler's messages
// when a field was added, removed, made optional or retyped on one side only. The responses
// themselves are checked against the same schemas by test/http/response-contract.test.ts.

import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import ts from 'typescript';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

function compile(files: string[]): string[] {
  const configFile = ts.readConfigFile(path.join(root, 'tsconfig.json'), (f) => ts.sys.readFile(f));
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, root);
  const program = ts.createProgram(files, { ...parsed.options, noEmit: true });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
    const where = d.file ? `${path.relative(root, d.file.fileName)}:${line}` : '';
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

describe('SDK wire types', () => {
  // The file's Drifts assertions show the check catches each kind of drift; this compiles them all.
  it('match the route schemas field for field', () => {
    const problems = compile([path.join(here, 'wire-contract.types.ts')]);
    assert.deepEqual(problems, [], `src/client/types.ts and src/http/schemas/records.ts drifted:\n${problems.join('\n')}`);
  });
});
