#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
#
# conditions.py FILE... - reports every assignment (=, +=, <<=, ...) inside the
# condition of an if (STYLE.md, errors rule 2: "No assignment inside if", as curl's
# checksrc ASSIGNWITHINCONDITION). Comments, string and character literals and
# preprocessor lines are blanked first; the condition is the whole
# parenthesised expression, over as many lines as it takes. Loop conditions
# (while) keep the iterator idiom `while ((e = readdir(d)) != NULL)`.
# Exit status 1 when one is found.
import re, sys

def strip(src):
    # blank out comments, string and character literals, keep newlines and length
    out = []; i = 0; n = len(src)
    while i < n:
        c = src[i]
        if src.startswith('//', i):
            j = src.find('\n', i); j = n if j < 0 else j
            out.append(' ' * (j - i)); i = j
        elif src.startswith('/*', i):
            j = src.find('*/', i + 2); j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', src[i:j])); i = j
        elif c in '"\'':
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == '\\' else 1
            j = min(j + 1, n)
            out.append(c + ' ' * (j - i - 2) + c if j - i >= 2 else ' '); i = j
        else:
            out.append(c); i += 1
    return ''.join(out)

def is_assign(s, k):
    # s[k] == '=': an assignment unless part of ==, !=, <=, >=
    nxt = s[k + 1] if k + 1 < len(s) else ''
    prv = s[k - 1] if k > 0 else ''
    if nxt == '=' or prv == '=' or prv == '!':
        return False
    if prv in '<>':
        return k > 1 and s[k - 2] == prv  # <<= and >>= assign
    return True

bad = 0
for path in sys.argv[1:]:
    src = strip(open(path, encoding='utf-8', errors='replace').read())
    # preprocessor lines are not code
    src = re.sub(r'(?m)^[ \t]*#.*(\\\n.*)*$', lambda m: re.sub(r'[^\n]', ' ', m.group(0)), src)
    for m in re.finditer(r'\bif\s*\(', src):
        depth = 0; k = m.end() - 1
        while k < len(src):
            if src[k] == '(':
                depth += 1
            elif src[k] == ')':
                depth -= 1
                if depth == 0:
                    break
            k += 1
        cond = src[m.end():k]
        for j, ch in enumerate(cond):
            if ch == '=' and is_assign(cond, j):
                line = src.count('\n', 0, m.start()) + 1
                print('%s:%d: assignment in an if condition: %s' % (path, line, ' '.join(cond.split())[:100]))
                bad = 1
                break
sys.exit(bad)
