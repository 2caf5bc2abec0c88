#!/usr/bin/env python3
"""Shamir vectors for `shamir-gf256` (SPEC.md), computed from SPEC.md's description alone.

Neither secrets.js-grempe nor spec/vectors/make.mjs is used: the field arithmetic here is
carry-less multiplication followed by long division by x^8 + x^4 + x^3 + x^2 + 1 (0x11d),
inverses are found by search, and shares are checked by Lagrange interpolation.

Writes spec/vectors/shamir/independent-*.json (each in the layout of the other shamir vectors,
so test/unit/spec-vectors.test.ts combines them too) and their entries in spec/vectors/MANIFEST.json
(test/unit/shamir-independent.test.ts reads them). spec/vectors/make.mjs rewrites the shamir
directory and the manifest: run this script again after it.

The first vector also carries multiplication tables for Lagrange weights over the x values 1..5
(the share numbers custos gives), so that the test can interpolate custos's own shares with
lookups and XOR only, without field arithmetic of its own.

Run: python3 spec/shamir-independent.py   (Python 3.8+, standard library only)
"""
import hashlib
import itertools
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, 'vectors')
MODULUS = 0x11D  # x^8 + x^4 + x^3 + x^2 + 1


def clmul(a, b):
    """Carry-less product of two polynomials over GF(2), as integers (up to degree 14)."""
    product = 0
    for i in range(8):
        if (b >> i) & 1:
            product ^= a << i
    return product


def reduce(p):
    """p mod MODULUS by long division."""
    for shift in range(14 - 8, -1, -1):
        if p & (1 << (8 + shift)):
            p ^= MODULUS << shift
    return p


def mul(a, b):
    return reduce(clmul(a, b))


INVERSE = {a: next(b for b in range(1, 256) if mul(a, b) == 1) for a in range(1, 256)}


def div(a, b):
    return mul(a, INVERSE[b])


def evaluate(coefficients, x):
    """coefficients[0] + coefficients[1]·x + ... , term by term."""
    y, power = 0, 1
    for c in coefficients:
        y ^= mul(c, power)
        power = mul(power, x)
    return y


def weight(xs, i, at):
    """The Lagrange basis polynomial for xs[i], evaluated at `at` (subtraction is XOR)."""
    w = 1
    for j, xj in enumerate(xs):
        if j != i:
            w = mul(w, div(at ^ xj, xs[i] ^ xj))
    return w


def interpolate(points, at=0):
    """Each byte position interpolated at `at` from (x, [y_0, y_1, ...]) points."""
    return [_combine([(x, ys[k]) for x, ys in points], at) for k in range(len(points[0][1]))]


def _combine(pairs, at):
    xs = [x for x, _ in pairs]
    out = 0
    for i, (_, y) in enumerate(pairs):
        out ^= mul(weight(xs, i, at), y)
    return out


def padded(secret):
    """SPEC.md: zero bytes || 0x01 || S, of 16·ceil((8n + 1)/128) bytes."""
    size = 16 * -(-(8 * len(secret) + 1) // 128)
    return bytes(size - len(secret) - 1) + b'\x01' + secret


def coefficient(name, k, j):
    """Fixed, never zero: the leading coefficient keeps every polynomial at full degree."""
    return hashlib.sha256(f'{name}/{k}/{j}'.encode()).digest()[0] % 255 + 1


def share_text(x, ys):
    return '8' + format(x, '02x') + bytes(ys).hex()


def parse_share(text):
    assert re.fullmatch(r'8[0-9a-f]{2}([0-9a-f]{2})+', text), text
    return int(text[1:3], 16), list(bytes.fromhex(text[3:]))


def make(name, secret, threshold, xs):
    p = padded(secret)
    coefficients = [[coefficient(name, k, j) for j in range(1, threshold)] for k in range(len(p))]
    shares = []
    for x in xs:
        ys = [evaluate([p[k]] + coefficients[k], x) for k in range(len(p))]
        shares.append({'x': x, 'share': share_text(x, ys)})
    points = [parse_share(s['share']) for s in shares]
    # Checks: every threshold-sized subset gives P back; one share fewer does not.
    for subset in itertools.combinations(points, threshold):
        assert bytes(interpolate(list(subset))) == p, name
    for subset in itertools.combinations(points, threshold - 1):
        if threshold > 1:
            assert bytes(interpolate(list(subset))) != p, name
    return {
        'field': 'GF(2^8) reduced by x^8+x^4+x^3+x^2+1 (0x11d)',
        'generator': 'spec/shamir-independent.py (from SPEC.md alone; not secrets.js-grempe, not make.mjs)',
        'layout': 'share = "8" || x as 2 hex digits || hex of f_k(x) for each padded byte k; coefficients[k] lists a_1 ... a_(t-1) of f_k, whose constant term is padded[k]',
        'secret': secret.hex(),
        'threshold': threshold,
        'padded': p.hex(),
        'coefficients': coefficients,
        'shares': shares,
    }


def seeded(label, n):
    out = b''
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f'custos independent shamir vector: {label} {counter}'.encode()).digest()
        counter += 1
    return out[:n]


VECTORS_TO_MAKE = [
    # name, secret, threshold, x values
    ('independent-32-bytes-3-of-5', seeded('kek', 32), 3, [1, 2, 3, 4, 5]),
    ('independent-16-bytes-2-of-4', seeded('sixteen', 16), 2, [3, 9, 77, 200]),
    ('independent-15-bytes-5-of-5', seeded('fifteen', 15), 5, [1, 17, 34, 128, 255]),
    ('independent-47-bytes-4-of-6', seeded('forty-seven', 47), 4, [250, 251, 252, 253, 254, 255]),
    ('independent-64-bytes-2-of-3', seeded('sixty-four', 64), 2, [1, 2, 3]),
    ('independent-zeros-3-of-4', bytes(32), 3, [4, 3, 2, 1]),
]

# Lagrange weights for custos's share numbers (1..n): interpolate at `at` from shares `xs`.
WEIGHTS = [
    ([1], 0),
    ([1, 2], 0),
    ([2, 3], 0),
    ([1, 2], 3),
    ([1, 2, 3], 0),
    ([2, 4, 5], 0),
    ([1, 3, 5], 2),
    ([1, 2, 3], 4),
    ([1, 2, 3, 4, 5], 0),
]


def weight_tables():
    tables = []
    seen = set()
    for xs, at in WEIGHTS:
        if (tuple(xs), at) in seen:
            continue
        seen.add((tuple(xs), at))
        multiply = [[mul(weight(xs, i, at), y) for y in range(256)] for i in range(len(xs))]
        tables.append({'xs': xs, 'at': at, 'multiply': multiply})
    return tables


def dump(doc):
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    # One line per array of numbers, as make.mjs writes them.
    return re.sub(
        r'\[\n\s*(-?\d+(?:,\n\s*-?\d+)*)\n\s*\]',
        lambda m: '[' + ', '.join(re.split(r',\n\s*', m.group(1))) + ']',
        text,
    ) + '\n'


def cross_check_make_mjs():
    """The vectors make.mjs computed in JavaScript interpolate to their padded secret here too."""
    directory = os.path.join(VECTORS, 'shamir')
    checked = 0
    for name in sorted(os.listdir(directory)):
        if name.startswith('independent-'):
            continue
        with open(os.path.join(directory, name), encoding='utf-8') as f:
            doc = json.load(f)
        points = [parse_share(s['share']) for s in doc['shares']]
        for subset in itertools.combinations(points, doc['threshold']):
            assert bytes(interpolate(list(subset))).hex() == doc['padded'], name
        assert padded(bytes.fromhex(doc['secret'])).hex() == doc['padded'], name
        checked += 1
    return checked


def main():
    # The field: 0x11d is primitive (2 generates all 255 non-zero elements), unlike AES's 0x11b.
    powers, v = set(), 1
    for _ in range(255):
        powers.add(v)
        v = mul(v, 2)
    assert len(powers) == 255 and v == 1
    assert mul(0x80, 2) == 0x1D and mul(0x53, 0xCA) != 1  # 0x53·0xCA = 1 in AES's field only
    written = []
    for i, (name, secret, threshold, xs) in enumerate(VECTORS_TO_MAKE):
        doc = make(name, secret, threshold, xs)
        if i == 0:
            doc['lagrange'] = weight_tables()
        path = os.path.join(VECTORS, 'shamir', f'{name}.json')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(dump(doc))
        written.append(f'shamir/{name}.json')
    manifest_path = os.path.join(VECTORS, 'MANIFEST.json')
    with open(manifest_path, encoding='utf-8') as f:
        manifest = json.load(f)
    vectors = [v for v in manifest['vectors'] if not v['file'].startswith('shamir/independent-')]
    at = max((i for i, v in enumerate(vectors) if v['format'] == 'shamir-gf256'), default=-1) + 1
    entries = [{'file': w, 'format': 'shamir-gf256', 'rule': 'valid', 'expect': 'ok'} for w in written]
    manifest['vectors'] = vectors[:at] + entries + vectors[at:]
    with open(manifest_path, 'w', encoding='utf-8') as f:
        f.write(json.dumps(manifest, indent=1, ensure_ascii=False) + '\n')
    print(f'{len(written)} vectors written; {cross_check_make_mjs()} make.mjs vectors cross-checked')


if __name__ == '__main__':
    main()
