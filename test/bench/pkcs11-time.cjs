// Preloaded (node -r) into one extra run of each side by backup-restore.mjs: times every pkcs11js
// C_* call, so the benchmark can say how much of a command's time was the HSM's and how much its
// own. Prints one line on stderr at exit: BENCH-PKCS11 {"ms": total, "calls": {C_X: [count, ms]}}.
const P = require('pkcs11js');
const calls = {};
let ms = 0;
const Native = P.PKCS11;
P.PKCS11 = function PKCS11() {
  const lib = new Native();
  return new Proxy(lib, {
    get(target, prop) {
      const v = target[prop];
      if (typeof v !== 'function') return v;
      if (typeof prop !== 'string' || !prop.startsWith('C_')) return v.bind(target);
      return (...args) => {
        const t = performance.now();
        try {
          return v.apply(target, args);
        } finally {
          const d = performance.now() - t;
          ms += d;
          const c = (calls[prop] ??= [0, 0]);
          c[0]++;
          c[1] += d;
        }
      };
    },
  });
};
process.on('exit', () => process.stderr.write(`BENCH-PKCS11 ${JSON.stringify({ ms, calls })}\n`));
