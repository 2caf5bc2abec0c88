// Lint rules: the recommended sets, a line length a reader can follow, and the layers of src/.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * What a folder of src/ may not import: each layer uses only those below it (README.md, "The
 * code"), and only src/hsm/ talks to a PKCS#11 module.
 */
const layers = {
  core: ['crypto', 'hsm', 'io', 'ops', 'cli'],
  crypto: ['hsm', 'io', 'ops', 'cli'],
  hsm: ['io', 'ops', 'cli'],
  io: ['hsm', 'ops', 'cli'],
  ops: ['cli'],
};
const noOuterNode = ['node:fs', 'node:fs/promises', 'node:child_process', 'node:readline'];
const layerRules = Object.entries(layers).map(([folder, above]) => ({
  files: [`src/${folder}/**`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        paths: [
          { name: 'pkcs11js', message: 'only src/hsm/ talks to a PKCS#11 module' },
          ...(folder === 'core'
            ? noOuterNode.map((name) => ({ name, message: 'src/core/ is pure' }))
            : []),
        ].filter((p) => !(folder === 'hsm' && p.name === 'pkcs11js')),
        patterns: above.map((layer) => ({
          group: [`**/${layer}/*`],
          message: `src/${folder}/ may not import from src/${layer}/ (README.md, "The code")`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'spec/vectors/', 'test/fixtures/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        URL: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        AbortController: 'readonly',
        queueMicrotask: 'readonly',
        setImmediate: 'readonly',
        performance: 'readonly',
        structuredClone: 'readonly',
      },
    },
    rules: {
      'max-len': [
        'error',
        {
          code: 100,
          ignoreStrings: true,
          ignoreTemplateLiterals: true,
          ignoreRegExpLiterals: true,
          ignoreUrls: true,
        },
      ],
      // Escaping untrusted text means matching control characters on purpose.
      'no-control-regex': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  ...layerRules,
  {
    files: ['src/cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'pkcs11js', message: 'only src/hsm/ talks to a PKCS#11 module' }] },
      ],
    },
  },
  {
    // Tests read parsed JSON from the tool's output; typing every field would only restate it.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
