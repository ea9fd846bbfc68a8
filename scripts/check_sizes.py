#!/usr/bin/python3
"""
check_sizes.py - files under ~800 lines, functions under ~80 (`make lint`)

The project keeps each file to one concept and under about 800 lines, and
each function under about 80 (the brief's standards).  This walks the C and
Python sources (client/, server/, include/, python/, tests/, bench/), prints
every file and every function over its limit, and fails when one of them is
in a file that scripts/size_allowlist.txt does not name.  That list holds
the files over a limit when the check was written, each with a comment: the
way to shrink it is to split the file or the function and drop its line.

C functions (in .c and .h files) are found with a brace-depth scan
(comments, strings and preprocessor lines skipped): a brace at depth 0 whose
header ends in ")" opens a function, and its length counts the lines from
its name's line to its closing brace.  Python functions and methods come from the ast module,
decorators excluded.  No tool beyond python3.

Usage: scripts/check_sizes.py [--root DIR] [--file-limit N] [--function-limit N]
"""

import argparse
import ast
import os
import re
import sys

DIRS = ("client", "server", "include", "python", "tests", "bench")
SKIP_DIRS = {"results", "corpus", "__pycache__"}
ALLOWLIST = os.path.join("scripts", "size_allowlist.txt")


def strip_c(text):
    """text with comments, string and character literals and preprocessor
    lines blanked out (newlines kept, so line numbers still hold)."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c in " \t":
            out.append(c)
            i += 1
            continue
        if line_start and c == "#":
            # A directive, with its backslash-continued lines.
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append("\n")
                    i += 2
                    continue
                i += 1
            continue
        line_start = False
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:end]))
            i = end
            continue
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * max(0, min(j, n) - i - 1) + c)
            i = j + 1
            continue
        if c == "\n":
            line_start = True
        out.append(c)
        i += 1
    return "".join(out)


NAME_BEFORE_PAREN = re.compile(r"([A-Za-z_]\w*)\s*\($")


def c_functions(text):
    """(name, first line, last line) of every function defined in text."""
    s = strip_c(text)
    funcs = []
    depth = 0
    header_start = 0   # offset just past the last ';', '}' or '{' at depth 0
    open_at = None
    name = first = None
    line = 1
    for i, c in enumerate(s):
        if c == "\n":
            line += 1
        elif c == "{":
            if depth == 0:
                header = s[header_start:i]
                h = header.rstrip()
                if h.endswith(")") and "=" not in h.split("(")[0]:
                    paren = h.find("(")
                    m = NAME_BEFORE_PAREN.search(h[:paren + 1])
                    if m:
                        name = m.group(1)
                        first = s.count("\n", 0, header_start + m.start(1)) + 1
                        open_at = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                if open_at is not None:
                    funcs.append((name, first, line))
                    open_at = None
                header_start = i + 1
        elif c == ";" and depth == 0:
            header_start = i + 1
    return funcs


def py_functions(text, path):
    try:
        tree = ast.parse(text, path)
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append((node.name, node.lineno, node.end_lineno))
    return out


def sources(root):
    for d in DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, d)):
            dirnames[:] = sorted(x for x in dirnames if x not in SKIP_DIRS)
            for f in sorted(filenames):
                if f.endswith((".c", ".h", ".py", ".inc")):
                    yield os.path.relpath(os.path.join(dirpath, f), root)


def read_allowlist(root):
    allowed = set()
    try:
        with open(os.path.join(root, ALLOWLIST)) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    allowed.add(line)
    except FileNotFoundError:
        pass
    return allowed


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=here)
    ap.add_argument("--file-limit", type=int, default=800)
    ap.add_argument("--function-limit", type=int, default=80)
    a = ap.parse_args()
    allowed = read_allowlist(a.root)
    over, failing, seen = [], set(), set()
    for path in sources(a.root):
        seen.add(path)
        with open(os.path.join(a.root, path), errors="replace") as f:
            text = f.read()
        nlines = text.count("\n")
        problems = []
        if nlines > a.file_limit and not path.endswith(".inc"):
            problems.append("%d lines (limit %d)" % (nlines, a.file_limit))
        if path.endswith((".c", ".h")):
            funcs = c_functions(text)
        elif path.endswith(".py"):
            funcs = py_functions(text, path)
        else:
            funcs = []
        for name, first, last in funcs:
            if last - first + 1 > a.function_limit:
                problems.append("%s() at line %d is %d lines (limit %d)" %
                                (name, first, last - first + 1, a.function_limit))
        for p in problems:
            over.append((path, p))
        if problems and path not in allowed:
            failing.add(path)
    for path, p in over:
        print("%s: %s%s" % (path, p, "" if path in failing else " [allow-listed]"))
    for path in sorted(allowed - seen):
        print("%s: in %s but not in the tree; drop its line" % (path, ALLOWLIST))
    for path in sorted(allowed & seen):
        if not any(o[0] == path for o in over):
            print("%s: in %s but within every limit now; drop its line" %
                  (path, ALLOWLIST))
    if failing:
        print("check_sizes: %d file(s) over a limit and not in %s: %s" %
              (len(failing), ALLOWLIST, " ".join(sorted(failing))), file=sys.stderr)
        return 1
    print("check_sizes: %d over a limit, all in allow-listed files" % len(over)
          if over else "check_sizes: every file and function within its limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
