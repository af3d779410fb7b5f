#!/usr/bin/env python3
"""Writes short.jsonl: about 20 MB of short model replies (182 shapes, about
62 bytes each), one JSON string per line, for timing `rummy parse --jsonl`.
Usage: python3 benches/short_jsonl.py > short.jsonl"""
import json, random, sys

random.seed(14)
paths = ["src/app.js", "src/config.rs", "README.md", "known://plan", "known://port",
         "unknown://why", "tests/a.rs", "lib/x.py"]
words = ["Reading the file now to check it", "Checking what the tests expect",
         "Next step is the config", "Looking at the configuration file",
         "Done with this part", "Writing a note for later"]
short = []
for i in range(182):
    p, w = random.choice(paths), random.choice(words)
    short.append([
        f'{w}.\n<get path="{p}"/>',
        f'<update status="102">{w}.</update>',
        f'{w}.\n<get path="{p}"/>',
        f'<set path="known://n{i}">fact {i}: {w}</set>',
        f'<rm path="{p}"/><update>{w}</update>',
        f'<sh>ls src</sh>\n<update status="102">{w}</update>',
        f'<update status="200">{w}.</update>',
    ][i % 7])
lines = [json.dumps(r) for r in short]
size = 0
out = sys.stdout
while size < 20_000_000:
    for line in lines:
        out.write(line + "\n")
        size += len(line) + 1
